"""Pooling layers: torch as the oracle (float64 forward, input gradient, indices over randomised
configurations), ties and NaN routed as torch routes them, gradient checks of every layer, the
lectures' worked examples (max routes to the arg-max, mean spreads 1/k^2), and bad input."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad.functional import pooling as F
from convgrad.functional.convolution import conv_transpose
from convgrad.gradcheck import gradcheck
from convgrad.nn import pooling as P

TOL = 1e-10


def _torch():
    return pytest.importorskip("torch")


def _torch_pass(fn, x, dy_seed, indices=False):
    """Run fn on a float64 torch copy of x; returns (y, dx, idx or None) as numpy, and dy."""
    torch = _torch()
    tx = torch.tensor(x, requires_grad=True)
    out = fn(tx)
    ty, tidx = out if indices else (out, None)
    dy = np.random.default_rng(dy_seed).standard_normal(tuple(ty.shape)).astype(x.dtype)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy(), (None if tidx is None else tidx.numpy()), dy


# ---------------------------------------------------------------------------------------
# Randomised configurations
# ---------------------------------------------------------------------------------------
def _window_config(seed, with_dilation):
    rng = np.random.default_rng(seed)
    n = [2, 1, 2, 3][seed % 4]
    kernel = tuple(int(k) for k in rng.integers(1, 5 if n < 3 else 4, size=n))
    stride = tuple(int(s) for s in rng.integers(1, 5, size=n))            # overlapping, tiling and gapped
    stride = None if seed % 9 == 0 else stride                           # None: the kernel size
    dilation = tuple(int(d) for d in rng.integers(1, 4, size=n)) if with_dilation else (1,) * n
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = [max(1, e - 2 * p) + int(rng.integers(0, 7 if n < 3 else 4)) for e, p in zip(extent, padding)]
    for a in range(n):
        # a window made of padding only is degenerate (torch then writes its gradient outside the input)
        while not _every_window_reads_input(size[a], kernel[a], (stride or kernel)[a], padding[a], dilation[a],
                                            bool(seed % 2)):
            size[a] += 1
    size = tuple(size)
    return dict(n=n, kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, ceil_mode=bool(seed % 2), size=size, batch=int(rng.integers(1, 3)),
                channels=int(rng.integers(1, 4)))


def _every_window_reads_input(size, k, s, p, d, ceil_mode):
    n_out = F.pool_out_size(size, k, s, p, d, ceil_mode)
    return all(any(0 <= o * s - p + j * d < size for j in range(k)) for o in range(n_out))


def _max_args(cfg):
    return (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])


@pytest.mark.parametrize("seed", range(72))
def test_max_pool_matches_torch(seed):
    torch = _torch()
    cfg = _window_config(seed, with_dilation=True)
    x = np.random.default_rng(seed).standard_normal((cfg["batch"], cfg["channels"], *cfg["size"]))
    n = cfg["n"]
    layer = getattr(P, f"MaxPool{n}d")(*_max_args(cfg), return_indices=True, ceil_mode=cfg["ceil_mode"])
    theirs = getattr(torch.nn, f"MaxPool{n}d")(*_max_args(cfg), return_indices=True, ceil_mode=cfg["ceil_mode"])
    ty, tdx, tidx, dy = _torch_pass(theirs, x, seed, indices=True)
    y, idx = layer(x)
    dx = layer.backward(dy)
    assert y.shape == ty.shape, cfg
    np.testing.assert_array_equal(y, ty, err_msg=str(cfg))
    np.testing.assert_array_equal(idx, tidx, err_msg=str(cfg))
    assert rel_err(dx, tdx) < TOL, cfg


@pytest.mark.parametrize("seed", range(60))
def test_avg_pool_matches_torch(seed):
    torch = _torch()
    cfg = _window_config(1000 + seed, with_dilation=False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["channels"], *cfg["size"]))
    n = cfg["n"]
    args = (cfg["kernel"], cfg["stride"], cfg["padding"], cfg["ceil_mode"], bool(seed % 3))
    if n > 1 and seed % 5 == 0:
        args += (int(rng.choice([-3, 1, 2, 7])),)                        # divisor_override
    layer = getattr(P, f"AvgPool{n}d")(*args)
    if n == 3 and any(s < k for s, k in zip(cfg["size"], cfg["kernel"])):
        # torch's avg_pool3d (alone) wants the unpadded input to hold a window
        with pytest.raises(RuntimeError, match="smaller than kernel size"):
            getattr(torch.nn, f"AvgPool{n}d")(*args)(torch.tensor(x))
        with pytest.raises(ValueError, match="is smaller than kernel_size"):
            layer(x)
        return
    ty, tdx, _, dy = _torch_pass(getattr(torch.nn, f"AvgPool{n}d")(*args), x, seed)
    y = layer(x)
    dx = layer.backward(dy)
    assert y.shape == ty.shape, (cfg, args)
    assert rel_err(y, ty) < TOL, (cfg, args)
    assert rel_err(dx, tdx) < TOL, (cfg, args)


def _adaptive_config(seed):
    rng = np.random.default_rng(2000 + seed)
    n = [2, 1, 2, 3][seed % 4]
    size = tuple(int(s) for s in rng.integers(1, 11 if n < 3 else 7, size=n))
    out = tuple(int(rng.integers(1, s + 4)) for s in size)               # smaller, equal and larger
    if seed % 6 == 0:
        out = 1 if n == 1 else (1,) * n                                  # global pooling
    elif seed % 6 == 3 and n > 1:
        out = (None,) + out[1:]                                          # None keeps the input size
    elif n == 1:
        out = out[0]
    return n, size, out


@pytest.mark.parametrize("seed", range(24))
def test_adaptive_avg_pool_matches_torch(seed):
    torch = _torch()
    n, size, out = _adaptive_config(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, *size))
    layer = getattr(P, f"AdaptiveAvgPool{n}d")(out)
    ty, tdx, _, dy = _torch_pass(getattr(torch.nn, f"AdaptiveAvgPool{n}d")(out), x, seed)
    y = layer(x)
    assert y.shape == ty.shape and rel_err(y, ty) < TOL, (size, out)
    assert rel_err(layer.backward(dy), tdx) < TOL, (size, out)


@pytest.mark.parametrize("seed", range(24))
def test_adaptive_max_pool_matches_torch(seed):
    torch = _torch()
    n, size, out = _adaptive_config(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, *size))
    if seed % 5 == 0:
        x = np.round(x)                                                  # many ties
    layer = getattr(P, f"AdaptiveMaxPool{n}d")(out, return_indices=True)
    ty, tdx, tidx, dy = _torch_pass(getattr(torch.nn, f"AdaptiveMaxPool{n}d")(out, return_indices=True), x, seed,
                                    indices=True)
    y, idx = layer(x)
    assert y.shape == ty.shape and rel_err(y, ty) == 0, (size, out)
    np.testing.assert_array_equal(idx, tidx)
    assert rel_err(layer.backward(dy), tdx) < TOL, (size, out)


@pytest.mark.parametrize("seed", range(16))
def test_max_unpool_matches_torch(seed):
    torch = _torch()
    rng = np.random.default_rng(3000 + seed)
    n = [2, 1, 2, 3][seed % 4]
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=n))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=n))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    size = tuple(int(k + rng.integers(0, 5)) for k in kernel)
    x = rng.standard_normal((2, 2, *size))
    pooled, tidx = getattr(torch.nn.functional, f"max_pool{n}d")(torch.tensor(x), kernel, stride, padding,
                                                                 return_indices=True)
    v, idx = pooled.numpy(), tidx.numpy()
    default = tuple((i - 1) * s + k - 2 * p for i, k, s, p in zip(v.shape[2:], kernel, stride, padding))
    fits = all(d - s < o < d + s for o, d, s in zip(size, default, stride))
    output_size = size if (seed % 2 or min(default) < 1) and fits else None
    if output_size is None and (min(default) < 1 or idx.max() >= np.prod(default)):
        # torch refuses indices outside the unpooled plane; so must we
        with pytest.raises(RuntimeError, match="invalid max index"):
            getattr(torch.nn, f"MaxUnpool{n}d")(kernel, stride, padding)(pooled, tidx)
        with pytest.raises(ValueError, match="invalid max index|not positive"):
            getattr(P, f"MaxUnpool{n}d")(kernel, stride, padding)(v, idx)
        return
    theirs = getattr(torch.nn, f"MaxUnpool{n}d")(kernel, stride, padding)
    tv = torch.tensor(v, requires_grad=True)
    ty = theirs(tv, tidx, output_size=output_size)
    dy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(dy))
    layer = getattr(P, f"MaxUnpool{n}d")(kernel, stride, padding)
    y = layer(v, idx, output_size=output_size)
    assert y.shape == tuple(ty.shape)
    assert rel_err(y, ty.detach().numpy()) == 0
    assert rel_err(layer.backward(dy), tv.grad.numpy()) < TOL


# ---------------------------------------------------------------------------------------
# Ties, NaN and infinities: the element torch picks
# ---------------------------------------------------------------------------------------
TIE_CASES = [
    (2, dict(kernel_size=2)),
    (2, dict(kernel_size=3, stride=1, padding=1)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True)),
    (1, dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    (3, dict(kernel_size=(2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0))),
]


@pytest.mark.parametrize("values", ["constant", "integers", "binary", "neg_inf"])
@pytest.mark.parametrize("n,kw", TIE_CASES)
def test_max_pool_ties_go_where_torch_sends_them(n, kw, values):
    torch = _torch()
    rng = np.random.default_rng(7)
    shape = (2, 2) + (7,) * n
    x = {"constant": np.full(shape, 1.5), "integers": rng.integers(-2, 3, shape).astype(np.float64),
         "binary": rng.integers(0, 2, shape).astype(np.float64), "neg_inf": np.full(shape, -np.inf)}[values]
    ty, tdx, tidx, dy = _torch_pass(lambda t: getattr(torch.nn.functional, f"max_pool{n}d")(
        t, return_indices=True, **kw), x, 1, indices=True)
    y, cache = F.max_pool_forward(x, n_dims=n, **kw)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(F.max_pool_indices(cache), tidx)
    np.testing.assert_allclose(F.max_pool_backward(dy, cache), tdx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,kw", TIE_CASES)
def test_max_pool_nan_wins_like_torch(n, kw):
    torch = _torch()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2) + (7,) * n)
    x[rng.random(x.shape) < 0.15] = np.nan                               # several NaN in some windows
    ty, tdx, tidx, dy = _torch_pass(lambda t: getattr(torch.nn.functional, f"max_pool{n}d")(
        t, return_indices=True, **kw), x, 2, indices=True)
    y, cache = F.max_pool_forward(x, n_dims=n, **kw)
    np.testing.assert_array_equal(y, ty)                                 # NaN where torch has NaN
    np.testing.assert_array_equal(F.max_pool_indices(cache), tidx)
    np.testing.assert_allclose(F.max_pool_backward(dy, cache), tdx, rtol=1e-12, atol=1e-12)


def test_adaptive_max_pool_nan_and_ties_like_torch():
    torch = _torch()
    rng = np.random.default_rng(12)
    x = rng.integers(0, 3, (2, 3, 7, 9)).astype(np.float64)
    x[rng.random(x.shape) < 0.1] = np.nan
    for out in [(3, 4), (1, 1), (5, 11)]:
        ty, tdx, tidx, dy = _torch_pass(lambda t: torch.nn.functional.adaptive_max_pool2d(
            t, out, return_indices=True), x, 3, indices=True)
        y, idx = F.adaptive_max_pool2d(x, out, return_indices=True)
        np.testing.assert_array_equal(y, ty)
        np.testing.assert_array_equal(idx, tidx)
        _, cache = F.adaptive_max_pool_forward(x, out)
        np.testing.assert_allclose(F.adaptive_max_pool_backward(dy, cache), tdx, rtol=1e-12, atol=1e-12)


def test_infinite_gradient_stays_at_the_arg_max():
    torch = _torch()
    x = np.random.default_rng(4).standard_normal((1, 2, 6, 6))
    for kw in [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)]:
        torch_pool = torch.nn.MaxPool2d(**kw)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch_pool(tx)
        dy = np.ones(tuple(ty.shape))
        dy[0, 0, 0, 0], dy[0, 1, 1, 1] = np.inf, -np.inf
        ty.backward(torch.tensor(dy))
        y, cache = F.max_pool_forward(x, n_dims=2, **kw)
        np.testing.assert_array_equal(F.max_pool_backward(dy, cache), tx.grad.numpy())


def test_unpool_with_duplicate_indices():
    # torch writes duplicates in no guaranteed order; one of the values lands, the rest stay 0
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    y = F.max_unpool2d(x, idx, 2)
    assert y[0, 0, 0, 0] in x and np.count_nonzero(y) == 1
    # the backward reads dy at the index for every input, as torch's gather does
    layer = P.MaxUnpool2d(2)
    layer(x, idx)
    dy = np.arange(16.0).reshape(1, 1, 4, 4) + 1
    np.testing.assert_array_equal(layer.backward(dy), np.full((1, 1, 2, 2), 1.0))
    torch = _torch()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_unpool2d(tx, torch.tensor(idx), 2).backward(torch.tensor(dy))
    np.testing.assert_array_equal(layer.backward(dy), tx.grad.numpy())


def test_float32_in_float32_out_matches_torch():
    torch = _torch()
    x = np.random.default_rng(5).standard_normal((4, 3, 13, 11)).astype(np.float32)
    cases = [(P.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (P.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
             (P.AdaptiveAvgPool2d((4, 3)), torch.nn.AdaptiveAvgPool2d((4, 3))),
             (P.AdaptiveMaxPool2d((4, 3)), torch.nn.AdaptiveMaxPool2d((4, 3))),
             (P.MaxPool2d(2), torch.nn.MaxPool2d(2))]
    for ours, theirs in cases:
        ty, tdx, _, dy = _torch_pass(theirs, x, 6)
        y = ours(x)
        dx = ours.backward(dy)
        assert y.dtype == np.float32 and dx.dtype == np.float32, ours
        np.testing.assert_allclose(y, ty, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dx, tdx, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# The lectures' worked examples
# ---------------------------------------------------------------------------------------
def test_lecture_max_pool_routes_gradient_to_arg_max():
    # 2x2 max pooling, stride 2 (the lecture's 4x4 example): y = [[8, 10], [7, 4]]
    x = np.array([[1, 3, 10, 0], [8, 4, 2, 9], [7, 2, 1, 3], [1, 1, 0, 4]], dtype=np.float64)[None, None]
    pool = P.MaxPool2d(2, 2)
    np.testing.assert_array_equal(pool(x)[0, 0], [[8, 10], [7, 4]])
    dy = np.array([[0.1, -0.2], [0.3, 0.4]])[None, None]
    expected = np.zeros((4, 4))
    expected[1, 0], expected[0, 2], expected[2, 0], expected[3, 3] = 0.1, -0.2, 0.3, 0.4
    np.testing.assert_array_equal(pool.backward(dy)[0, 0], expected)


def test_lecture_mean_pool_spreads_a_quarter():
    # 2x2 mean pooling with stride 1 over y1..y9 (3x3): dR/dy1 = 1/4 dR/dy^1,
    # dR/dy5 = 1/4 (dR/dy^1 + ... + dR/dy^4), dR/dy9 = 1/4 dR/dy^4
    pool = P.AvgPool2d(2, stride=1)
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    np.testing.assert_allclose(pool(x)[0, 0], [[3, 4], [6, 7]])
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    dx = pool.backward(g[None, None])[0, 0]
    np.testing.assert_allclose(dx, [[1 / 4, 3 / 4, 2 / 4], [4 / 4, 10 / 4, 6 / 4], [3 / 4, 7 / 4, 4 / 4]])
    # non-overlapping 2x2 mean pooling: every input gets exactly 1/k^2 of its window's gradient
    pool = P.AvgPool2d(2)
    pool(np.zeros((1, 1, 4, 4)))
    np.testing.assert_allclose(pool.backward(g[None, None])[0, 0], np.kron(g, np.ones((2, 2))) / 4)


@pytest.mark.parametrize("k,s,p,size", [(2, 2, 0, 8), (3, 2, 1, 7), (3, 1, 1, 5), (4, 3, 2, 10)])
def test_mean_pool_backward_is_a_transposed_convolution_with_a_constant_kernel(k, s, p, size):
    rng = np.random.default_rng(k * 10 + s)
    x = rng.standard_normal((2, 3, size, size))
    y, cache = F.avg_pool_forward(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    ones = np.full((3, 1, k, k), 1.0 / (k * k))                          # one constant filter per channel
    extra = size - ((y.shape[2] - 1) * s - 2 * p + k)
    by_conv = conv_transpose(dy, ones, stride=s, padding=p, output_padding=extra, groups=3)
    np.testing.assert_allclose(F.avg_pool_backward(dy, cache), by_conv, rtol=1e-12, atol=1e-12)


def test_overlapping_windows_accumulate():
    # x = [0, 5, 0], k=2, s=1: both windows pick x[1], whose gradient is the sum
    pool = P.MaxPool1d(2, stride=1)
    np.testing.assert_array_equal(pool(np.array([[[0.0, 5.0, 0.0]]])), [[[5.0, 5.0]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[2.0, 3.0]]])), [[[0.0, 5.0, 0.0]]])
    pool = P.AvgPool1d(3, stride=1)
    pool(np.zeros((1, 1, 5)))
    np.testing.assert_allclose(pool.backward(np.array([[[3.0, 3.0, 3.0]]])), [[[1, 2, 3, 2, 1]]])


# ---------------------------------------------------------------------------------------
# Gradient checks (central differences, float64)
# ---------------------------------------------------------------------------------------
def _distinct(shape, seed):
    """Values at least 0.1 apart: no near-ties, so the max is differentiable everywhere."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0).astype(np.float64)


GRADCHECK_LAYERS = [
    (P.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 9)),
    (P.MaxPool2d(2), (2, 2, 6, 6)),
    (P.MaxPool2d(3, stride=1, padding=1, dilation=2), (1, 2, 6, 5)),
    (P.MaxPool3d((2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0)), (1, 2, 4, 5, 4)),
    (P.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 8)),
    (P.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 7)),
    (P.AvgPool2d(2, stride=1, divisor_override=3), (1, 2, 5, 5)),
    (P.AvgPool3d(2, stride=(1, 2, 1), padding=1, count_include_pad=False), (1, 2, 3, 4, 3)),
    (P.AdaptiveAvgPool1d(4), (2, 2, 7)),
    (P.AdaptiveAvgPool2d((3, None)), (2, 2, 7, 5)),
    (P.AdaptiveAvgPool3d((2, 3, 1)), (1, 2, 3, 5, 4)),
    (P.AdaptiveMaxPool1d(3), (2, 2, 8)),
    (P.AdaptiveMaxPool2d((4, 3)), (2, 2, 7, 5)),
    (P.AdaptiveMaxPool3d(2), (1, 2, 3, 5, 4)),
]


@pytest.mark.parametrize("layer,shape", GRADCHECK_LAYERS, ids=lambda v: type(v).__name__ if not isinstance(v, tuple)
                         else "x".join(map(str, v)))
def test_gradcheck(layer, shape):
    report = gradcheck(layer, _distinct(shape, len(shape)))
    assert report.passed, report


def test_gradcheck_max_unpool():
    # non-overlapping windows: each index is unique, so the scatter is differentiable as written
    rng = np.random.default_rng(9)
    _, idx = F.max_pool2d(_distinct((2, 2, 7, 6), 1), 2, return_indices=True)
    v = rng.standard_normal(idx.shape)

    def unpool(values):
        return F.max_unpool2d(values, idx, 2, output_size=(7, 6))

    def backward(dy, values):
        return F.max_unpool_backward(dy, F.max_unpool_forward(values, idx, 2, output_size=(7, 6))[1])

    report = gradcheck(unpool, v, backward=backward)
    assert report.passed, report


# ---------------------------------------------------------------------------------------
# Module behaviour
# ---------------------------------------------------------------------------------------
ALL_LAYERS = [P.MaxPool1d(2), P.MaxPool2d(2), P.MaxPool3d(2), P.AvgPool1d(2), P.AvgPool2d(2), P.AvgPool3d(2),
              P.AdaptiveAvgPool1d(2), P.AdaptiveAvgPool2d(2), P.AdaptiveAvgPool3d(2), P.AdaptiveMaxPool1d(2),
              P.AdaptiveMaxPool2d(2), P.AdaptiveMaxPool3d(2), P.MaxUnpool1d(2), P.MaxUnpool2d(2), P.MaxUnpool3d(2)]


@pytest.mark.parametrize("layer", ALL_LAYERS, ids=lambda m: type(m).__name__)
def test_backward_before_forward_raises(layer):
    fresh = type(layer)(2)
    with pytest.raises(RuntimeError, match=f"{type(layer).__name__}.backward\\(\\) called before forward\\(\\)"):
        fresh.backward(np.zeros((1, 1, 2)))


def test_workspace_reuse_gives_fresh_results():
    rng = np.random.default_rng(8)
    for layer in [P.MaxPool2d(3, 2, 1), P.MaxPool2d(2), P.AvgPool2d(3, 1, 1)]:
        xs = [rng.standard_normal((2, 3, 9, 9)).astype(np.float32) for _ in range(2)]
        ys = [layer(x) for x in xs]                                      # the second call reuses buffers
        dy = rng.standard_normal(ys[1].shape).astype(np.float32)
        dxs = [layer.backward(dy), layer.backward(dy)]
        if isinstance(layer, P.MaxPool2d):
            y0, c0 = F.max_pool_forward(xs[0], layer.kernel_size, layer.stride, layer.padding)
            y1, c1 = F.max_pool_forward(xs[1], layer.kernel_size, layer.stride, layer.padding)
            ref = F.max_pool_backward(dy, c1)
        else:
            y0, _ = F.avg_pool_forward(xs[0], layer.kernel_size, layer.stride, layer.padding)
            y1, c1 = F.avg_pool_forward(xs[1], layer.kernel_size, layer.stride, layer.padding)
            ref = F.avg_pool_backward(dy, c1)
        np.testing.assert_array_equal(ys[0], y0)
        np.testing.assert_array_equal(ys[1], y1)
        np.testing.assert_array_equal(dxs[0], ref)
        np.testing.assert_array_equal(dxs[1], ref)


def test_input_is_not_modified_and_output_is_not_a_view():
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 5))
    keep = x.copy()
    for layer in [P.MaxPool2d(1), P.AvgPool2d(1), P.AdaptiveAvgPool2d((5, 5)), P.AdaptiveMaxPool2d((5, None)),
                  P.MaxPool2d(3, 1, 1), P.AvgPool2d(3, 1, 1)]:
        y = layer(x)
        assert not np.shares_memory(y, x), layer
        np.testing.assert_array_equal(x, keep)
        if layer.__dict__.get("kernel_size", 1) == 1 or "Adaptive" in type(layer).__name__:
            np.testing.assert_array_equal(y, x)


def test_return_indices_and_repr_follow_torch():
    pool = P.MaxPool2d(2, return_indices=True)
    y, idx = pool(np.arange(16.0).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [13, 15]])
    assert idx.dtype == np.int64
    assert repr(pool) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(P.AvgPool2d(3, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=0)"
    assert repr(P.AdaptiveAvgPool2d((2, None))) == "AdaptiveAvgPool2d(output_size=(2, None))"
    assert repr(P.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=2, stride=2, padding=0)"


def test_pooling_in_a_sequential_with_unpool_round_trip():
    x = _distinct((2, 3, 6, 6), 5)
    pool, unpool = P.MaxPool2d(2, return_indices=True), P.MaxUnpool2d(2)
    y, idx = pool(x)
    z = unpool(y, idx)
    mask = z != 0
    np.testing.assert_array_equal(z[mask], x[mask])                      # each max back in its place
    assert mask.sum() == y.size
    np.testing.assert_array_equal(unpool.backward(z), y)


def test_empty_batch():
    x = np.zeros((0, 3, 6, 6))
    for layer, out in [(P.MaxPool2d(2), (0, 3, 3, 3)), (P.AvgPool2d(3, 2, 1), (0, 3, 3, 3)),
                       (P.AdaptiveMaxPool2d(2), (0, 3, 2, 2)), (P.AdaptiveAvgPool2d(1), (0, 3, 1, 1))]:
        y = layer(x)
        assert y.shape == out
        assert layer.backward(y).shape == x.shape


# ---------------------------------------------------------------------------------------
# Bad input: a clear error naming the layer, the expectation and what came
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,exc,message", [
    (lambda: P.MaxPool2d(2, stride=0), ValueError, "MaxPool2d: stride must be >= 1, got 0"),
    (lambda: P.MaxPool2d(2, stride=-1), ValueError, "stride must be >= 1"),
    (lambda: P.MaxPool2d(2, stride=1.5), TypeError, "MaxPool2d: stride must be an int"),
    (lambda: P.MaxPool2d(0), ValueError, "kernel_size must be >= 1"),
    (lambda: P.MaxPool2d(2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda: P.MaxPool2d((2, 2.0)), TypeError, "kernel_size must contain integers"),
    (lambda: P.MaxPool2d((2, 2, 2)), TypeError, "kernel_size must be an int or a tuple of 2 ints"),
    (lambda: P.MaxPool2d(3, padding=2), ValueError, r"padding should be at most half of kernel_size, got "
                                                     r"padding=\(2, 2\), kernel_size=\(3, 3\)"),
    (lambda: P.MaxPool1d(2, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: P.AvgPool2d(1, padding=1), ValueError, "AvgPool2d: padding should be at most half"),
    (lambda: P.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override must not be zero"),
    (lambda: P.AvgPool3d(2, divisor_override=1.5), TypeError, "divisor_override must be an int"),
    (lambda: P.MaxUnpool2d(2, stride=0), ValueError, "MaxUnpool2d: stride must be >= 1"),
])
def test_bad_constructor_arguments(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


def test_torch_rejects_the_same_arguments():
    torch = _torch()
    x = torch.zeros(1, 1, 6, 6)
    for make in [lambda: torch.nn.MaxPool2d(2, stride=0)(x), lambda: torch.nn.MaxPool2d(3, padding=2)(x),
                 lambda: torch.nn.AvgPool2d(2, divisor_override=0)(x), lambda: torch.nn.MaxPool2d(7)(x),
                 lambda: torch.nn.MaxPool2d(2, dilation=0)(x)]:
        with pytest.raises(RuntimeError):
            make()


@pytest.mark.parametrize("layer,x,exc,message", [
    (P.MaxPool2d(2), np.zeros((3, 8, 8)), ValueError,
     r"MaxPool2d: expected input of rank 4 \(N, C, H, W\), got shape \(3, 8, 8\) \(rank 3\)"),
    (P.AvgPool1d(2), np.zeros((1, 1, 4, 4)), ValueError, r"AvgPool1d: expected input of rank 3 \(N, C, L\)"),
    (P.MaxPool3d(2), np.zeros((1, 1, 4, 4)), ValueError, r"MaxPool3d: expected input of rank 5 \(N, C, D, H, W\)"),
    (P.AdaptiveAvgPool2d(2), np.zeros((4, 4)), ValueError, "AdaptiveAvgPool2d: expected input of rank 4"),
    (P.MaxPool2d(2), np.zeros((1, 1, 4, 4), dtype=np.int64), TypeError,
     "MaxPool2d: expected input of dtype float32 or float64, got int64"),
    (P.AvgPool2d(2), [[[[0.0]]]], TypeError, "AvgPool2d: expected input as a numpy.ndarray, got list"),
    (P.MaxPool2d(5), np.zeros((1, 1, 4, 8)), ValueError, r"MaxPool2d: output size \(0, 1\) is too small"),
    (P.MaxPool1d(3, dilation=3), np.zeros((1, 1, 6)), ValueError, "MaxPool1d: output size"),
    (P.AvgPool2d(3), np.zeros((1, 1, 1, 8)), ValueError, r"AvgPool2d: output size \(0, 2\)"),
    (P.MaxPool2d(2), np.zeros((2, 0, 4, 4)), ValueError, "non-zero channel and spatial sizes"),
    (lambda x: P.AdaptiveMaxPool2d((2, 2, 2)), None, TypeError,
     "AdaptiveMaxPool2d: output_size must be an int or a tuple of 2"),
    (lambda x: P.AdaptiveAvgPool2d(-1), None, ValueError, "AdaptiveAvgPool2d: output_size must be >= 1"),
    (lambda x: P.AdaptiveAvgPool2d(0), None, ValueError, "AdaptiveAvgPool2d: output_size must be >= 1"),
])
def test_bad_input(layer, x, exc, message):
    with pytest.raises(exc, match=message):
        layer(x)


def test_nan_input_is_allowed_and_propagates():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    for layer in [P.MaxPool2d(2), P.AvgPool2d(2), P.AdaptiveMaxPool2d(1), P.AdaptiveAvgPool2d(1)]:
        y = layer(x)
        assert np.isnan(y[0, 0, 0, 0]), layer


def test_bad_unpool_input():
    pool = P.MaxUnpool2d(2)
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"MaxUnpool2d: found an invalid max index 99 \(output planes are of "
                                         r"size 4x4\)"):
        pool(x, np.array([[[[0, 1], [2, 99]]]]))
    with pytest.raises(ValueError, match="invalid max index -1"):
        pool(x, np.array([[[[0, 1], [2, -1]]]]))
    with pytest.raises(ValueError, match=r"expected indices of the input's shape \(1, 1, 2, 2\), got \(1, 1, 1, 4\)"):
        pool(x, np.zeros((1, 1, 1, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="expected indices as an integer numpy.ndarray"):
        pool(x, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"invalid output_size \(7, 7\) \(dim 0 must be between 2 and 6"):
        pool(x, np.zeros((1, 1, 2, 2), dtype=np.int64), output_size=(7, 7))
    assert pool(x, np.zeros((1, 1, 2, 2), dtype=np.int64), output_size=(1, 1, 5, 5)).shape == (1, 1, 5, 5)


def test_bad_grad_output():
    pool = P.MaxPool2d(2)
    pool(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"MaxPool2d backward: expected grad_output of shape \(1, 1, 2, 2\), "
                                         r"got \(1, 1, 4, 4\)"):
        pool.backward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(TypeError, match=r"MaxPool2d backward: expected grad_output of dtype float64 \(the output.s\), got int32"):
        pool.backward(np.zeros((1, 1, 2, 2), dtype=np.int32))


def test_functional_forms_mirror_torch_names():
    torch = _torch()
    tf = torch.nn.functional
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 7))
    t = torch.tensor(x)
    pairs = [
        (F.max_pool2d(x, 3, 2, 1, 1, True), tf.max_pool2d(t, 3, 2, 1, 1, True)),
        (F.max_pool1d(x[:, :, 0], 2), tf.max_pool1d(t[:, :, 0], 2)),
        (F.max_pool3d(x[:, None], 2), tf.max_pool3d(t[:, None], 2)),
        (F.avg_pool1d(x[:, :, 0], 3, 2, 1, True, False), tf.avg_pool1d(t[:, :, 0], 3, 2, 1, True, False)),
        (F.avg_pool2d(x, 3, 2, 1, False, True, 4), tf.avg_pool2d(t, 3, 2, 1, False, True, 4)),
        (F.avg_pool3d(x[:, None], 2, 1), tf.avg_pool3d(t[:, None], 2, 1)),
        (F.adaptive_avg_pool1d(x[:, :, 0], 3), tf.adaptive_avg_pool1d(t[:, :, 0], 3)),
        (F.adaptive_avg_pool2d(x, (3, 5)), tf.adaptive_avg_pool2d(t, (3, 5))),
        (F.adaptive_avg_pool3d(x[:, None], (1, 3, 5)), tf.adaptive_avg_pool3d(t[:, None], (1, 3, 5))),
        (F.adaptive_max_pool1d(x[:, :, 0], 3), tf.adaptive_max_pool1d(t[:, :, 0], 3)),
        (F.adaptive_max_pool2d(x, (3, 5)), tf.adaptive_max_pool2d(t, (3, 5))),
        (F.adaptive_max_pool3d(x[:, None], (1, 3, 5)), tf.adaptive_max_pool3d(t[:, None], (1, 3, 5))),
    ]
    for ours, theirs in pairs:
        assert rel_err(ours, theirs.numpy()) < TOL
    y, idx = F.max_pool1d(x[:, :, 0], 2, return_indices=True)
    np.testing.assert_array_equal(F.max_unpool1d(y, idx, 2), tf.max_unpool1d(torch.tensor(y), torch.tensor(idx), 2))
    y, idx = F.max_pool3d(x[:, None], 2, return_indices=True)
    z = F.max_unpool3d(y, idx, 2, output_size=(2, 8, 7))
    np.testing.assert_array_equal(z, tf.max_unpool3d(torch.tensor(y), torch.tensor(idx), 2, output_size=(2, 8, 7)))
