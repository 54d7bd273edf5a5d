"""Linear, Identity, Flatten, Unflatten, Dropout, Dropout2d: torch oracle, gradcheck, errors."""
import warnings

import numpy as np
import pytest

import convgrad
from convgrad.functional import dense as FL
from convgrad.nn.dropout import Dropout, Dropout2d
from convgrad.nn.linear import Identity, Linear
from convgrad.nn.module import Sequential
from convgrad.nn.shape import Flatten, Unflatten

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# ---- Linear ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(seed, bias):
    rng = np.random.default_rng(seed)
    n_in, n_out = (int(v) for v in rng.integers(1, 9, size=2))
    lead = [(), (int(rng.integers(1, 6)),), tuple(int(v) for v in rng.integers(1, 4, size=2))][seed % 3]
    tl = torch.nn.Linear(n_in, n_out, bias=bias).double()
    ours = Linear(n_in, n_out, bias=bias, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    x = rng.standard_normal((*lead, n_in))
    dy = rng.standard_normal((*lead, n_out))
    xt = torch.tensor(x, requires_grad=True)
    tl(xt).backward(torch.tensor(dy))
    y = ours(x)
    dx = ours.backward(dy)
    assert y.shape == (*lead, n_out) and dx.shape == x.shape
    close(y, tl(torch.tensor(x)).detach().numpy())
    close(dx, xt.grad.numpy())
    close(ours.weight.grad, tl.weight.grad.numpy())
    if bias:
        close(ours.bias.grad, tl.bias.grad.numpy())


def test_linear_state_dict_names_and_shapes_as_torch():
    tl = torch.nn.Linear(5, 3)
    ours = Linear(5, 3)
    assert list(ours.state_dict()) == list(tl.state_dict()) == ["weight", "bias"]
    for k, v in tl.state_dict().items():
        assert ours.state_dict()[k].shape == tuple(v.shape)
    assert list(Linear(5, 3, bias=False).state_dict()) == ["weight"]


def test_linear_init_torch_default_and_reproducible():
    a, b = Linear(400, 50, generator=7), Linear(400, 50, generator=7)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, Linear(400, 50, generator=8).weight.data)
    bound = 1 / np.sqrt(400)
    w = a.weight.data
    assert w.dtype == np.float32 and a.bias.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(a.bias.data).max() <= bound
    # U(-b, b): variance b^2 / 3, like torch's kaiming_uniform_(a=sqrt(5))
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.05
    assert abs(torch.nn.Linear(400, 50).weight.detach().numpy().var() / w.var() - 1) < 0.1
    assert Linear(3, 2, dtype=np.float64).weight.dtype == np.float64
    g = np.random.default_rng(0)
    assert Linear(3, 2, generator=g).weight.shape == (2, 3)


def test_linear_manual_seed_reproducible():
    convgrad.manual_seed(11)
    w1 = Linear(6, 4).weight.data
    convgrad.manual_seed(11)
    np.testing.assert_array_equal(w1, Linear(6, 4).weight.data)


def test_linear_grads_accumulate_and_dtype():
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, generator=0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    dy = rng.standard_normal((5, 3)).astype(np.float32)
    lin(x)
    dx = lin.backward(dy)
    g1 = lin.weight.grad.copy()
    lin(x)
    lin.backward(dy)
    np.testing.assert_allclose(lin.weight.grad, 2 * g1, rtol=1e-6)
    assert dx.dtype == np.float32 and lin(x).dtype == np.float32 and lin.weight.grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(shape, bias):
    x = np.random.default_rng(1).standard_normal(shape)
    report = convgrad.gradcheck(Linear(4, 3, bias=bias, generator=0), x)
    assert report.passed, report


def test_linear_errors():
    lin = Linear(1600, 10, generator=0)
    with pytest.raises(ValueError) as e:
        lin(np.zeros((64, 1000), np.float32))
    assert str(e.value) == "Linear: expected input with last dimension 1600 (in_features), got shape (64, 1000)"
    with pytest.raises(RuntimeError, match="Linear.backward.*before forward"):
        lin.backward(np.zeros((64, 10), np.float32))
    with pytest.raises(TypeError, match="Linear: input has dtype float64 but weight has dtype float32"):
        lin(np.zeros((2, 1600)))
    with pytest.raises(TypeError, match="Linear: expected input of dtype float32 or float64, got int64"):
        lin(np.zeros((2, 1600), np.int64))
    with pytest.raises(ValueError, match="Linear: expected input with last dimension 1600.*got shape \\(\\)"):
        lin(np.ones((), np.float32))
    lin(np.zeros((2, 1600), np.float32))
    with pytest.raises(ValueError, match=r"Linear backward: expected grad_output of shape \(2, 10\), got \(2, 9\)"):
        lin.backward(np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match="Linear: in_features must be >= 0, got -1"):
        Linear(-1, 3)
    for bad in (2.5, True, "3"):             # a wrong type is a TypeError, as in torch
        with pytest.raises(TypeError, match="Linear: in_features must be an int"):
            Linear(bad, 3)


def test_functional_linear():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    close(FL.linear(x, w, b), x @ w.T + b)
    report = convgrad.gradcheck(FL.linear, x, w, b,
                                backward=lambda g, x, w, b: FL.linear_backward(g, FL.linear_forward(x, w, b)[1]))
    assert report.passed, report


def test_identity():
    x = np.arange(6.0).reshape(2, 3)
    m = Identity(54, unused="ignored")
    assert m(x) is x and m.backward(x) is x and list(m.state_dict()) == []


# ---- Flatten / Unflatten --------------------------------------------------------------
FLATTEN_CASES = [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, -1), ((2, 3, 4, 5), 1, 2), ((2, 3, 4, 5), -3, -2),
                 ((2, 3, 4, 5), 2, 2), ((7,), 0, -1), ((3, 1, 2), 1, -1)]


@pytest.mark.parametrize("shape,start,end", FLATTEN_CASES)
def test_flatten_matches_torch(shape, start, end):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    m = Flatten(start, end)
    y = m(x)
    assert y.shape == tuple(torch.nn.Flatten(start, end)(torch.tensor(x)).shape)
    np.testing.assert_array_equal(y, torch.nn.Flatten(start, end)(torch.tensor(x)).numpy())
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(m.backward(dy), dy.reshape(shape))
    assert convgrad.gradcheck(m, x).passed


@pytest.mark.parametrize("shape,dim,sizes", [((2, 12), 1, (3, 4)), ((2, 12), -1, (2, -1, 3)), ((6, 5), 0, (2, 3)),
                                             ((2, 60, 3), 1, (3, 4, 5)), ((4,), 0, (4, 1))])
def test_unflatten_matches_torch(shape, dim, sizes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    m = Unflatten(dim, sizes)
    y = m(x)
    np.testing.assert_array_equal(y, torch.nn.Unflatten(dim, sizes)(torch.tensor(x)).numpy())
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(m.backward(dy), dy.reshape(shape))
    assert convgrad.gradcheck(m, x).passed


def test_flatten_unflatten_roundtrip_in_sequential():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    seq = Sequential(Flatten(), Unflatten(1, (3, 4, 5)))
    np.testing.assert_array_equal(seq(x), x)
    np.testing.assert_array_equal(seq.backward(x), x)


def test_shape_errors():
    with pytest.raises(ValueError, match="Flatten: start_dim=4 is out of range.*rank 4"):
        Flatten(4)(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="Flatten: start_dim=2 comes after end_dim=1"):
        Flatten(2, 1)(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"Unflatten: cannot split dim 1 of size 12.*into \(5, 3\)"):
        Unflatten(1, (5, 3))(np.zeros((2, 12)))
    with pytest.raises(ValueError, match="at most one -1"):
        Unflatten(1, (-1, -1))
    with pytest.raises(TypeError, match="Unflatten: unflattened_size must be a tuple of ints"):
        Unflatten(1, 12)
    with pytest.raises(RuntimeError, match="before forward"):
        Flatten().backward(np.zeros(3))
    m = Flatten()
    m(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Flatten backward: expected grad_output of shape \(2, 12\)"):
        m.backward(np.zeros((2, 3, 4)))


# ---- Dropout --------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    x = np.random.default_rng(0).uniform(1, 2, size=(200, 500))
    m = Dropout(p, generator=0)
    y = m(x)
    kept = y != 0
    n = x.size
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)     # 5 sigma
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    # no structure: rows and columns drop independently
    assert np.std(kept.mean(axis=1)) < 3 * np.sqrt(p * (1 - p) / 500)
    dy = np.random.default_rng(1).standard_normal(x.shape)
    dx = m.backward(dy)
    np.testing.assert_allclose(dx, np.where(kept, dy / (1 - p), 0), rtol=1e-15)


def test_dropout_torch_semantics():
    """torch's output is 0 or x/(1-p) too, with the same keep rate and E[y] = x."""
    x = np.ones((400, 400))
    ty = torch.nn.Dropout(0.3)(torch.tensor(x)).numpy()
    oy = Dropout(0.3, generator=0)(x)
    assert set(np.unique(ty)) == set(np.unique(oy)) == {0.0, 1 / 0.7}
    assert abs(ty.mean() - 1) < 0.02 and abs(oy.mean() - 1) < 0.02


def test_dropout_eval_identity_and_train_switch():
    x = np.random.default_rng(0).standard_normal((4, 5))
    m = Dropout(0.5, generator=0).eval()
    np.testing.assert_array_equal(m(x), x)
    np.testing.assert_array_equal(m.backward(x * 2), x * 2)
    m.train()
    assert (m(x) == 0).any()
    seq = Sequential(Linear(5, 5, generator=0, dtype=np.float64), Dropout(0.9, generator=0)).eval()
    np.testing.assert_array_equal(seq(x), seq[0](x))


def test_dropout_reproducible():
    x = np.ones((30, 40), np.float32)
    a, b = Dropout(0.5, generator=42), Dropout(0.5, generator=42)
    np.testing.assert_array_equal(a(x), b(x))
    np.testing.assert_array_equal(a(x), b(x))                 # the streams stay in step
    assert not np.array_equal(a(x), a(x))                      # but each call draws anew
    c, d = Dropout(0.5, generator=np.random.default_rng(3)), Dropout(0.5, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(c(x), d(x))
    convgrad.manual_seed(5)
    y1 = Dropout(0.5)(x)
    convgrad.manual_seed(5)
    np.testing.assert_array_equal(y1, Dropout(0.5)(x))


def test_dropout_backward_uses_forward_mask():
    x = np.random.default_rng(0).uniform(1, 2, size=(50, 60))
    m = Dropout(0.4, generator=1)
    y = m(x)
    dx = m.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, y / x, rtol=1e-15)
    dx2 = m.backward(np.ones_like(x))                          # backward does not redraw
    np.testing.assert_array_equal(dx, dx2)


def test_dropout_p0_p1_and_dtype():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(Dropout(0.0)(x), x)
    m = Dropout(1.0, generator=0)
    assert np.all(m(x) == 0) and np.all(m.backward(x) == 0)
    d = Dropout(0.5, generator=0)
    assert d(x).dtype == np.float32 and d.backward(x).dtype == np.float32


def test_dropout2d_zeroes_whole_channels():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=(40, 50, 3, 4))
    m = Dropout2d(0.3, generator=0)
    y = m(x)
    ch_zero = (y == 0).all(axis=(2, 3))
    ch_kept = np.isclose(y, x / 0.7, rtol=1e-15, atol=0).all(axis=(2, 3))
    assert np.all(ch_zero ^ ch_kept)
    assert abs(ch_zero.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)
    dx = m.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, y / x, rtol=1e-15)
    # torch drops whole channels too
    ty = torch.nn.Dropout2d(0.3)(torch.tensor(x)).numpy()
    assert np.all((ty == 0).all(axis=(2, 3)) ^ np.isclose(ty, x / 0.7).all(axis=(2, 3)))
    np.testing.assert_array_equal(Dropout2d(0.3).eval()(x), x)


def test_dropout2d_3d_like_torch():
    x = np.ones((6, 7, 5))
    with pytest.warns(UserWarning, match="3-D input"):
        y = Dropout2d(0.5, generator=0)(x)
    # torch 2.x: a 3-D input is (N, C, L): whole rows along the last axis drop
    assert np.all((y == 0).all(axis=2) ^ (y == 2).all(axis=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ty = torch.nn.Dropout2d(0.5)(torch.tensor(x)).numpy()
    assert np.all((ty == 0).all(axis=2) ^ (ty == 2).all(axis=2))


def test_dropout_gradcheck_with_fixed_seed():
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2))
    for cls in (Dropout, Dropout2d):
        def f(x, cls=cls):
            return cls(0.5, generator=7)(x)

        def back(g, x, cls=cls):
            m = cls(0.5, generator=7)
            m(x)
            return m.backward(g)
        report = convgrad.gradcheck(f, x, backward=back)
        assert report.passed, report
        assert convgrad.gradcheck(cls(0.5).eval(), x).passed


def test_functional_dropout():
    x = np.ones((100, 100))
    y = FL.dropout(x, 0.25, generator=0)
    np.testing.assert_array_equal(y, FL.dropout(x, 0.25, generator=0))
    np.testing.assert_array_equal(FL.dropout(x, 0.25, training=False), x)
    y2 = FL.dropout2d(np.ones((4, 8, 3, 3)), 0.5, generator=0)
    assert np.all((y2 == 0).all(axis=(2, 3)) ^ (y2 == 2).all(axis=(2, 3)))


def test_dropout_errors():
    for p, bound in ((-0.1, ">= 0.0"), (1.5, "<= 1.0")):
        with pytest.raises(ValueError, match=f"Dropout: dropout probability p must be {bound}, got {p}"):
            Dropout(p)
    for p in ("0.5", None, True):            # a wrong type is a TypeError, as in torch
        with pytest.raises(TypeError, match="Dropout: dropout probability p must be a real number"):
            Dropout(p)
    with pytest.raises(ValueError, match=r"Dropout2d: expected input of rank 4 \(N, C, H, W\), got shape \(2, 3\)"):
        Dropout2d()(np.ones((2, 3)))
    with pytest.raises(TypeError, match="Dropout: expected input of dtype float32 or float64"):
        Dropout()(np.ones((2, 3), np.int32))
    with pytest.raises(TypeError, match="generator"):
        Dropout(0.5, generator="seed")
    with pytest.raises(RuntimeError, match="before forward"):
        Dropout().backward(np.ones(3))
    m = Dropout(0.5, generator=0)
    m(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dropout backward: expected grad_output of shape \(2, 3\), got \(3, 2\)"):
        m.backward(np.ones((3, 2)))


@pytest.mark.parametrize("op", ["dropout", "dropout2d"])
def test_functional_dropout_records_with_tensors(op):
    # F.dropout with a Tensor failed before it drew a mask (its recorded forward called _rng without a name)
    import convgrad as cg
    from convgrad import functional as F
    x0 = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    x = cg.tensor(x0.copy(), requires_grad=True)
    y = getattr(F, op)(x, 0.5, True, 7)
    assert y.grad_fn is not None and y.grad_fn.op == op
    np.testing.assert_array_equal(y.data, getattr(F, op)(x0.copy(), 0.5, True, 7))   # the same mask as for an array
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, np.where(y.data != 0, 2.0, 0.0) * g)      # mask / (1 - p)
