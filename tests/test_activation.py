"""Activations and erf: torch oracle (float64, ~1e-10 relative), gradcheck, dtypes, errors."""
import math
import warnings

import numpy as np
import pytest

import convgrad
from convgrad.functional import activation as F
from convgrad.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh
from convgrad.nn.linear import Identity

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-13

# (id, convgrad factory, torch factory)
CASES = [
    ("ReLU", ReLU, lambda: torch.nn.ReLU()),
    ("LeakyReLU", LeakyReLU, lambda: torch.nn.LeakyReLU()),
    ("LeakyReLU0.2", lambda: LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    ("ELU", ELU, lambda: torch.nn.ELU()),
    ("ELU0.5", lambda: ELU(alpha=0.5), lambda: torch.nn.ELU(alpha=0.5)),
    ("GELU", GELU, lambda: torch.nn.GELU()),
    ("GELUtanh", lambda: GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    ("Sigmoid", Sigmoid, lambda: torch.nn.Sigmoid()),
    ("Tanh", Tanh, lambda: torch.nn.Tanh()),
    ("Softplus", Softplus, lambda: torch.nn.Softplus()),
    ("Softplus2,5", lambda: Softplus(beta=2.0, threshold=5.0), lambda: torch.nn.Softplus(beta=2.0, threshold=5.0)),
    ("Softplus0.5", lambda: Softplus(beta=0.5), lambda: torch.nn.Softplus(beta=0.5)),
    ("SiLU", SiLU, lambda: torch.nn.SiLU()),
    ("Softmax1", lambda: Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    ("Softmax0", lambda: Softmax(dim=0), lambda: torch.nn.Softmax(dim=0)),
    ("Softmax-1", lambda: Softmax(dim=-1), lambda: torch.nn.Softmax(dim=-1)),
    ("LogSoftmax1", lambda: LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
    ("LogSoftmax-1", lambda: LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
    ("Identity", Identity, lambda: torch.nn.Identity()),
]
IDS = [c[0] for c in CASES]
EXTREMES = np.array([-1e4, -1e3, -100.0, -40.0, -30.0, -20.5, -10.0, -5.0, -1.0, -1e-8, 0.0, 1e-8,
                     0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 20.5, 30.0, 40.0, 100.0, 1e3, 1e4])


def torch_pass(tmod, x, dy):
    xt = torch.tensor(x, requires_grad=True)
    yt = tmod(xt)
    yt.backward(torch.tensor(dy))
    return yt.detach().numpy(), xt.grad.numpy()


def ours_pass(mod, x, dy):
    y = mod(x)
    return y, mod.backward(dy)


def random_shape(rng):
    return tuple(int(s) for s in rng.integers(1, 6, size=rng.integers(2, 5)))


@pytest.mark.parametrize("name,make,make_torch", CASES, ids=IDS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_torch_random(name, make, make_torch, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(random_shape(rng)) * 3.0
    dy = rng.standard_normal(x.shape)
    y, dx = ours_pass(make(), x, dy)
    y_t, dx_t = torch_pass(make_torch(), x, dy)
    np.testing.assert_allclose(y, y_t, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, dx_t, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name,make,make_torch", CASES, ids=IDS)
def test_matches_torch_extremes(name, make, make_torch):
    """±1e4, the softplus threshold, 0 (ReLU's subgradient 0, LeakyReLU's slope, ELU's alpha)."""
    rng = np.random.default_rng(1)
    x = np.stack([EXTREMES, EXTREMES[::-1], rng.permutation(EXTREMES)])   # (3, 24): softmax rows mix
    dy = rng.standard_normal(x.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no overflow / invalid-value warnings
        y, dx = ours_pass(make(), x, dy)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    y_t, dx_t = torch_pass(make_torch(), x, dy)
    np.testing.assert_allclose(y, y_t, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, dx_t, rtol=RTOL, atol=ATOL)


def test_relu_family_at_zero():
    x, dy = np.zeros(3), np.ones(3)
    assert np.all(ours_pass(ReLU(), x, dy)[1] == 0)
    assert np.all(ours_pass(LeakyReLU(0.1), x, dy)[1] == 0.1)
    assert np.all(ours_pass(ELU(alpha=0.7), x, dy)[1] == 0.7)


@pytest.mark.parametrize("name,make,make_torch", CASES, ids=IDS)
def test_float32_keeps_dtype(name, make, make_torch):
    rng = np.random.default_rng(2)
    x64 = rng.standard_normal((4, 5, 3)) * 3
    dy64 = rng.standard_normal(x64.shape)
    y64, dx64 = ours_pass(make(), x64, dy64)
    y32, dx32 = ours_pass(make(), x64.astype(np.float32), dy64.astype(np.float32))
    assert y32.dtype == np.float32 and dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,make,make_torch", CASES, ids=IDS)
def test_gradcheck(name, make, make_torch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 2)) * 2
    x[np.abs(x) < 1e-3] = 0.5                   # keep central differences off the ReLU kinks
    report = convgrad.gradcheck(make(), x)
    assert report.passed, report


@pytest.mark.parametrize("dim", [None, 0, 1, 2, -1])
@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_softmax_dims_and_legacy_default(dim, rank):
    if dim is not None and not -rank <= dim < rank:
        return
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((3, 4, 2, 5)[:rank])
    dy = rng.standard_normal(x.shape)
    for ours, theirs in ((Softmax, torch.nn.Softmax), (LogSoftmax, torch.nn.LogSoftmax)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, dx = ours_pass(ours(dim), x, dy)
            y_t, dx_t = torch_pass(theirs(dim), x, dy)
        np.testing.assert_allclose(y, y_t, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(dx, dx_t, rtol=RTOL, atol=ATOL)


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="implicit dimension"):
        Softmax()(np.zeros((2, 3)))


def test_softmax_huge_logits_stable():
    x = np.array([[1e4, -1e4, 0.0], [1e308, 1e308, -1e308]])
    y = Softmax(dim=1)(x)
    np.testing.assert_allclose(y, [[1, 0, 0], [0.5, 0.5, 0]])
    ly = LogSoftmax(dim=1)(x)
    assert np.isfinite(ly[0]).all() and ly[0, 0] == 0.0


def test_softplus_threshold_as_torch():
    x = np.array([19.9, 20.0, 20.1, 200.0, 1e300])
    np.testing.assert_array_equal(Softplus()(x)[2:], x[2:])


def test_erf_matches_torch_and_math():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-8, 8, 20001), rng.standard_normal(5000) * 3,
                        np.logspace(-300, 1.45, 3000), -np.logspace(-300, 1.45, 3000),
                        [0.46875, -0.46875, 4.0, -4.0, np.nextafter(4.0, 5), 26.5, 27.3, 1e300]])
    ours = F.erf(x)
    ref = torch.erf(torch.tensor(x)).numpy()
    nz = ref != 0
    assert np.max(np.abs(ours[nz] - ref[nz]) / np.abs(ref[nz])) < 2e-15
    assert np.all(ours[~nz] == 0)
    math_erfc = np.array([math.erfc(v) for v in x])
    ours_c = F.erfc(x)
    tail = math_erfc > 1e-300                  # relative accuracy is kept deep into the tail
    assert np.max(np.abs(ours_c[tail] - math_erfc[tail]) / math_erfc[tail]) < 2e-15
    assert np.max(np.abs(ours_c - math_erfc)) < 1e-300 + 1e-15


def test_erf_special_values_and_dtype():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    e, c = F.erf(x), F.erfc(x)
    np.testing.assert_array_equal(e[[0, 1, 3]], [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(c[[0, 1, 3]], [0.0, 2.0, 1.0])
    assert np.isnan(e[2]) and np.isnan(c[2])
    x32 = np.linspace(-5, 5, 101, dtype=np.float32)
    assert F.erf(x32).dtype == np.float32
    np.testing.assert_allclose(F.erf(x32), F.erf(x32.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_gelu_exact_tail_relative_accuracy():
    """x * Phi(x) for very negative x through erfc: relative accuracy where 1 + erf cancels
    (erfc's own condition number 2y^2 ~ 1e3 at x = -37 bounds what float64 can do)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    x = np.array([-6.0, -10.0, -20.0, -37.0])
    ref = np.array([float(mpmath.mpf(v) * mpmath.erfc(-mpmath.mpf(v) / mpmath.sqrt(2)) / 2) for v in x])
    np.testing.assert_allclose(GELU()(x), ref, rtol=1e-12)


def test_functional_forms_match_modules():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    pairs = [(F.relu(x), ReLU()(x)), (F.leaky_relu(x, 0.3), LeakyReLU(0.3)(x)), (F.elu(x, 2.0), ELU(2.0)(x)),
             (F.gelu(x, "tanh"), GELU("tanh")(x)), (F.sigmoid(x), Sigmoid()(x)), (F.tanh(x), Tanh()(x)),
             (F.softplus(x, 2, 3), Softplus(2, 3)(x)), (F.silu(x), SiLU()(x)),
             (F.softmax(x, 1), Softmax(1)(x)), (F.log_softmax(x, 0), LogSoftmax(0)(x))]
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def test_torch_repr_and_signature_names():
    assert repr(LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(Softmax(dim=1)) == "Softmax(dim=1)"
    assert ReLU(inplace=True).inplace and list(ReLU().parameters()) == []


# ---- errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,make,make_torch", [c for c in CASES if c[0] != "Identity"],
                         ids=[i for i in IDS if i != "Identity"])
def test_errors(name, make, make_torch):
    mod = make()
    cls = type(mod).__name__
    with pytest.raises(RuntimeError, match="before forward"):
        mod.backward(np.ones((2, 3)))
    with pytest.raises(TypeError, match=f"{cls}.*float32 or float64.*int64"):
        mod(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=f"{cls}.*numpy.ndarray.*list"):
        mod([[1.0, 2.0]])
    mod(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"{cls} backward.*\(2, 3\).*\(3, 2\)"):
        mod.backward(np.ones((3, 2)))


def test_argument_errors():
    with pytest.raises(ValueError, match="GELU: approximate"):
        GELU("fast")
    with pytest.raises(ValueError, match=r"Softmax: dim 2 is out of range.*rank 2"):
        Softmax(dim=2)(np.ones((2, 3)))
    with pytest.raises(TypeError, match="LogSoftmax: dim must be an int"):
        LogSoftmax(dim=1.0)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Softplus: beta"):
        Softplus(beta=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_gradient_at_nan_zero_and_infinities_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    # (an infinite dy where x <= 0 is the documented exception: NaN here, 0 in torch)
    x = np.array([np.nan, 0.0, -0.0, -1.0, 2.0, -3.0, 4.0, np.inf, -np.inf], dtype=dtype)
    dy = np.array([1.5, 2.0, 3.0, 4.0, np.nan, -5.0, np.inf, 1.0, 1.0], dtype=dtype)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(dy))
    layer = ReLU()
    np.testing.assert_array_equal(layer(x), torch.relu(torch.tensor(x)).numpy())
    dx = layer.backward(dy)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, tx.grad.numpy())    # a NaN passes its gradient, 0 does not
