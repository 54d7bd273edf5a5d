"""Up- and down-sampling: torch's nearest up-sampling as oracle, and the lectures' duality
(the backward of down-sampling is up-sampling by zero insertion, and vice versa)."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import nn
from convgrad.functional import resample as R


@pytest.mark.parametrize("shape,factor", [((2, 3, 5), 3), ((2, 3, 4, 5), 2), ((1, 2, 3, 4, 5), (2, 1, 3))])
def test_nearest_matches_torch(shape, factor, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    layer = nn.Upsample(factor)
    y = layer(x)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.Upsample(scale_factor=factor if isinstance(factor, int) else tuple(map(float, factor)),
                           mode="nearest")(tx)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(g))
    assert rel_err(y, ty.detach().numpy()) < 1e-12
    assert rel_err(layer.backward(g), tx.grad.numpy()) < 1e-12


def test_zero_insertion_and_downsampling_are_adjoint(rng):
    """<up(x), g> == <x, down(g)>: each is the other's backward."""
    x = rng.standard_normal((2, 3, 4, 5))
    up = R.upsample_zeros(x, (2, 3))
    assert up.shape == (2, 3, 7, 13) and np.array_equal(up[:, :, ::2, ::3], x)
    assert np.count_nonzero(up) == x.size
    g = rng.standard_normal(up.shape)
    assert np.isclose(np.sum(up * g), np.sum(x * R.downsample(g, (2, 3))))
    down = nn.Downsample(2)
    y = down(g)
    assert y.shape == (2, 3, 4, 7)
    dx = down.backward(y)
    assert dx.shape == g.shape and np.array_equal(dx[:, :, ::2, ::2], y) and np.count_nonzero(dx) == y.size


def test_stride_is_downsampling_of_a_stride_one_conv(rng):
    """The lectures: a stride-s convolution = stride-1 convolution, then dSample."""
    x = rng.standard_normal((1, 2, 9, 8))
    full = nn.Conv2d(2, 3, 3, generator=0).double()
    strided = nn.Conv2d(2, 3, 3, stride=2).double()
    strided.load_state_dict(full.state_dict())
    assert rel_err(strided(x), R.downsample(full(x), 2)) < 1e-12


@pytest.mark.parametrize("op", ["downsample", "upsample_nearest", "upsample_zeros"])
def test_functional_resampling_records_with_tensors_as_torch(op):
    # F.downsample with a Tensor failed (its recorded forward did not take where=/name=)
    import convgrad as cg
    from convgrad import functional as F
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 3, 5, 4))
    x = cg.tensor(x0.copy(), requires_grad=True)
    y = getattr(F, op)(x, 2)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    tx = torch.from_numpy(x0.copy()).requires_grad_()
    if op == "downsample":
        ty = tx[..., ::2, ::2]
    elif op == "upsample_nearest":
        ty = torch.nn.functional.interpolate(tx, scale_factor=2, mode="nearest")
    else:
        ty = torch.zeros(2, 3, 9, 7, dtype=torch.float64)
        ty[..., ::2, ::2] = tx
    ty.backward(torch.from_numpy(g))
    assert y.grad_fn is not None and y.grad_fn.op == op
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
