"""Padding layers and functions against torch (float64): forward and backward, every mode,
1-d/2-d/3-d, batched and unbatched; the VJP padding against the lectures' formula."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import nn
from convgrad.functional import conv_output_shape, pad
from convgrad.functional.padding import vjp_padding

torch = pytest.importorskip("torch")
TOL = 1e-10
KINDS = ["ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n_dims", [1, 2, 3])
@pytest.mark.parametrize("batched", [True, False])
def test_padding_layers_match_torch(kind, n_dims, batched):
    rng = np.random.default_rng(n_dims * 10 + KINDS.index(kind))
    size = tuple(int(s) for s in rng.integers(3, 6, size=n_dims))
    padding = tuple(int(p) for p in rng.integers(0, 3, size=2 * n_dims))
    args = (padding, 1.5) if kind == "ConstantPad" else (padding,)
    ours = getattr(nn, f"{kind}{n_dims}d")(*args)
    theirs = getattr(torch.nn, f"{kind}{n_dims}d")(*args)
    x = rng.standard_normal(((2,) if batched else ()) + (3, *size))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    assert rel_err(y, ty.detach().numpy()) < TOL
    assert rel_err(ours.backward(dy), tx.grad.numpy()) < TOL


def test_int_padding_pads_every_side():
    y = nn.ZeroPad2d(1)(np.ones((1, 1, 2, 3)))
    assert y.shape == (1, 1, 4, 5) and y.sum() == 6 and y[0, 0, 0].sum() == 0


def test_bad_padding_is_a_clear_error():
    with pytest.raises(TypeError, match="tuple of 4 ints"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="non-negative"):
        nn.ZeroPad1d((-1, 0))
    with pytest.raises(ValueError, match="at most 2"):
        nn.ReflectionPad1d(3)(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match="rank 4 or 5"):
        nn.ZeroPad3d(1)(np.zeros((2, 3)))


def test_functional_pad_zeros_is_accepted():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    np.testing.assert_array_equal(pad(x, ((1, 0), (0, 2)), "zeros"),
                                  torch.nn.functional.pad(torch.tensor(x), (0, 2, 1, 0)).numpy())


def test_conv_output_shape_matches_torch():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n_sp = int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 4, size=n_sp))
        s = tuple(int(v) for v in rng.integers(1, 4, size=n_sp))
        d = tuple(int(v) for v in rng.integers(1, 3, size=n_sp))
        p = tuple(int(v) for v in rng.integers(0, 3, size=n_sp))
        size = tuple(int(dd * (kk - 1) + 1 + rng.integers(0, 5)) for kk, dd in zip(k, d))
        x = torch.zeros((2, 4, *size))
        w = torch.zeros((6, 2, *k))
        expected = getattr(torch.nn.functional, f"conv{n_sp}d")(x, w, None, s, p, d, 2).shape
        assert conv_output_shape(x.shape, w.shape, s, p, d, 2) == tuple(expected)
    with pytest.raises(ValueError, match="larger than"):
        conv_output_shape((1, 1, 2, 2), (1, 1, 3, 3))


def test_vjp_padding_is_the_lectures_full_padding_at_stride_1():
    # k = 3, d = 1, p = 1: pad dy by k-1-p = 1 per side; d = 2, p = 0: 2*(3-1) = 4
    assert vjp_padding((5,), (3,), (1,), (1,), ((1, 1),), (5,)) == ((1, 1),)
    assert vjp_padding((9,), (3,), (1,), (2,), ((0, 0),), (5,)) == ((4, 4),)
    # stride 2 on 6 inputs, k = 3, no padding: windows at 0, 2 -> rows 5 never reached: one extra on the high side
    assert vjp_padding((6,), (3,), (2,), (1,), ((0, 0),), (2,)) == ((2, 3),)


def test_functional_pad_takes_torch_flat_pads_too():
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    for pads in ((1, 2), (1, 2, 0, 1), (0, 1, 2, 0, 1, 1)):
        np.testing.assert_array_equal(pad(x, pads, "zeros"),
                                      torch.nn.functional.pad(torch.tensor(x), pads).numpy())
    for mode in ("reflect", "replicate", "circular"):
        np.testing.assert_array_equal(pad(x, (1, 2, 0, 1), mode),
                                      torch.nn.functional.pad(torch.tensor(x), (1, 2, 0, 1), mode).numpy())


@pytest.mark.parametrize("pads, error", [(1, TypeError), ((1,), ValueError), ((1, 2, 3), ValueError),
                                         (((1, 2), 3), TypeError), ("ab", TypeError), ((1.5, 2), TypeError),
                                         (((1, 2),) * 5, ValueError), ((True, 1), TypeError)])
def test_functional_pad_bad_pads_is_a_clear_error(pads, error):
    with pytest.raises(error, match=r"pad: expected pads as \(\(lo, hi\), \.\.\.\) pairs"):
        pad(np.zeros((1, 2, 3, 4)), pads)


@pytest.mark.parametrize("mode, torch_mode", [("zeros", "constant"), ("constant", "constant"), ("reflect", "reflect"),
                                              ("replicate", "replicate"), ("circular", "circular")])
def test_functional_pad_records_with_tensors_as_torch(mode, torch_mode):
    import convgrad as cg
    from convgrad import functional as F
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 2, 4, 5))
    x = cg.tensor(x0.copy(), requires_grad=True)
    y = F.pad(x, (2, 0, 1, 3), mode, value=1.5)                 # torch's flat order: last axis first
    g = rng.standard_normal(y.shape)
    y.backward(g)
    tx = torch.from_numpy(x0.copy()).requires_grad_()
    kw = {"value": 1.5} if mode == "constant" else {}
    ty = torch.nn.functional.pad(tx, (2, 0, 1, 3), mode=torch_mode, **kw)
    ty.backward(torch.from_numpy(g))
    assert y.grad_fn is not None and y.grad_fn.op == "pad"
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
