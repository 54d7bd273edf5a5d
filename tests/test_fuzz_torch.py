"""Property tests (hypothesis) of every layer family against torch: forward, input gradient and
parameter gradients, across shapes, strides, paddings, dilations, groups, dtypes and memory
layouts (C-contiguous, Fortran-ordered, non-contiguous and negative-stride inputs and
gradients). float64 to 1e-10 relative; float32 to float32 accuracy. The number of examples
per family is bounded (EXAMPLES) so the file runs in seconds.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convgrad import nn

EXAMPLES = 20
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = st.sampled_from([np.float64, np.float64, np.float32])
LAYOUTS = st.sampled_from(["c", "fortran", "noncontiguous", "negative_stride"])


def laid_out(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "noncontiguous":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],) if a.ndim else (), a.dtype) if a.ndim else a.copy()
        if a.ndim:
            big[..., ::2] = a
            return big[..., ::2]
        return big
    if layout == "negative_stride":
        axes = tuple(range(a.ndim))
        return np.flip(np.ascontiguousarray(np.flip(a, axes)), axes)
    return np.ascontiguousarray(a)


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


def compare(layer, t_layer, x, layout, seed=0, grad_layout=None):
    """Run both on x (laid out), backward with the same random gradient; compare y, dx and
    every parameter gradient. Parameters are copied from convgrad to torch."""
    dtype = x.dtype
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    t_layer = t_layer.to(tdt)
    t_layer.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
    t_layer.train(layer.training)
    xin = laid_out(x, layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = layer(xin)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = t_layer(tx)
    tol = _tol(dtype)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(laid_out(g, grad_layout or layout))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    for name, p in t_layer.named_parameters():
        ours = dict(layer.named_parameters())[name].grad
        np.testing.assert_allclose(ours, p.grad.numpy(), **tol, err_msg=name)


def _x(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------
@st.composite
def conv_configs(draw, transposed=False):
    n_dims = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(n_dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(n_dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n_dims))
    padding = tuple(draw(st.integers(0, (kk - 1) * d)) for kk, d in zip(k, dilation))
    size = tuple(draw(st.integers((kk - 1) * d + 1, (kk - 1) * d + 4)) for kk, d in zip(k, dilation))
    extra = {}
    if transposed:
        extra["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    elif n_dims == 2 and draw(st.booleans()):
        extra["padding_mode"] = draw(st.sampled_from(["reflect", "replicate", "circular"]))
        padding = tuple(min(p, s - 1) for p, s in zip(padding, size))
    return dict(n_dims=n_dims, c_in=c_in, c_out=c_out, k=k, stride=stride, dilation=dilation, padding=padding,
                groups=groups, size=size, batch=draw(st.integers(0, 2)), bias=draw(st.booleans()),
                dtype=draw(DTYPES), layout=draw(LAYOUTS), grad_layout=draw(LAYOUTS), seed=draw(st.integers(0, 99)),
                extra=extra)


@SETTINGS
@given(conv_configs())
def test_conv_matches_torch(cfg):
    n = cfg["n_dims"]
    cls, tcls = getattr(nn, f"Conv{n}d"), getattr(torch.nn, f"Conv{n}d")
    args = (cfg["c_in"], cfg["c_out"], cfg["k"])
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"],
              bias=cfg["bias"], **cfg["extra"])
    layer = cls(*args, **kw, generator=cfg["seed"], dtype=cfg["dtype"])
    x = _x((cfg["batch"], cfg["c_in"], *cfg["size"]), cfg["dtype"], cfg["seed"])
    compare(layer, tcls(*args, **kw), x, cfg["layout"], cfg["seed"], cfg["grad_layout"])


@SETTINGS
@given(conv_configs(transposed=True))
def test_conv_transpose_matches_torch(cfg):
    n = cfg["n_dims"]
    cls, tcls = getattr(nn, f"ConvTranspose{n}d"), getattr(torch.nn, f"ConvTranspose{n}d")
    args = (cfg["c_in"], cfg["c_out"], cfg["k"])
    kw = dict(stride=cfg["stride"], padding=tuple(min(p, (k - 1) * d) for p, k, d in
                                                  zip(cfg["padding"], cfg["k"], cfg["dilation"])),
              dilation=cfg["dilation"], groups=cfg["groups"], bias=cfg["bias"], **cfg["extra"])
    layer = cls(*args, **kw, generator=cfg["seed"], dtype=cfg["dtype"])
    x = _x((cfg["batch"], cfg["c_in"], *cfg["size"]), cfg["dtype"], cfg["seed"])
    compare(layer, tcls(*args, **kw), x, cfg["layout"], cfg["seed"], cfg["grad_layout"])


# ---------------------------------------------------------------------------------------
# pooling and resampling
# ---------------------------------------------------------------------------------------
@st.composite
def pool_configs(draw):
    n_dims = draw(st.sampled_from([1, 2, 2, 3]))
    k = tuple(draw(st.integers(1, 3)) for _ in range(n_dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n_dims))
    padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    size = tuple(draw(st.integers(kk, kk + 4)) for kk in k)
    return dict(n_dims=n_dims, k=k, stride=stride, padding=padding, size=size, ceil_mode=draw(st.booleans()),
                kind=draw(st.sampled_from(["max", "avg", "adaptive_avg", "adaptive_max"])),
                out=tuple(draw(st.integers(1, s)) for s in size), count_include_pad=draw(st.booleans()),
                dtype=draw(DTYPES), layout=draw(LAYOUTS), grad_layout=draw(LAYOUTS), seed=draw(st.integers(0, 99)),
                batch=draw(st.integers(0, 2)))


@SETTINGS
@given(pool_configs())
def test_pooling_matches_torch(cfg):
    n, kind = cfg["n_dims"], cfg["kind"]
    if kind == "max":
        kw = dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"])
        layer, t_layer = getattr(nn, f"MaxPool{n}d")(**kw), getattr(torch.nn, f"MaxPool{n}d")(**kw)
    elif kind == "avg":
        kw = dict(kernel_size=cfg["k"], stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                  count_include_pad=cfg["count_include_pad"])
        layer, t_layer = getattr(nn, f"AvgPool{n}d")(**kw), getattr(torch.nn, f"AvgPool{n}d")(**kw)
    else:
        name = "AdaptiveAvgPool" if kind == "adaptive_avg" else "AdaptiveMaxPool"
        layer, t_layer = getattr(nn, f"{name}{n}d")(cfg["out"]), getattr(torch.nn, f"{name}{n}d")(cfg["out"])
    x = _x((cfg["batch"], 2, *cfg["size"]), cfg["dtype"], cfg["seed"])
    compare(layer, t_layer, x, cfg["layout"], cfg["seed"], cfg["grad_layout"])


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), DTYPES, LAYOUTS, LAYOUTS, st.integers(0, 99))
def test_upsample_nearest_matches_torch(n_dims, factor, dtype, layout, grad_layout, seed):
    x = _x((2, 2) + (3,) * n_dims, dtype, seed)
    compare(nn.Upsample(factor), torch.nn.Upsample(scale_factor=factor), x, layout, seed, grad_layout)


# ---------------------------------------------------------------------------------------
# activations, linear, normalisation, shape
# ---------------------------------------------------------------------------------------
ACTIVATIONS = {
    "ReLU": lambda a, b: (nn.ReLU(), torch.nn.ReLU()),
    "LeakyReLU": lambda a, b: (nn.LeakyReLU(a), torch.nn.LeakyReLU(a)),
    "ELU": lambda a, b: (nn.ELU(abs(a) + 0.1), torch.nn.ELU(abs(a) + 0.1)),
    "GELU": lambda a, b: (nn.GELU(), torch.nn.GELU()),
    "GELU-tanh": lambda a, b: (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    "Sigmoid": lambda a, b: (nn.Sigmoid(), torch.nn.Sigmoid()),
    "Tanh": lambda a, b: (nn.Tanh(), torch.nn.Tanh()),
    "Softplus": lambda a, b: (nn.Softplus(a or 1.0, b), torch.nn.Softplus(a or 1.0, b)),
    "SiLU": lambda a, b: (nn.SiLU(), torch.nn.SiLU()),
    "Softmax": lambda a, b: (nn.Softmax(int(b) % 3 - 1), torch.nn.Softmax(int(b) % 3 - 1)),
    "LogSoftmax": lambda a, b: (nn.LogSoftmax(int(b) % 3 - 1), torch.nn.LogSoftmax(int(b) % 3 - 1)),
}


@SETTINGS
@given(st.sampled_from(sorted(ACTIVATIONS)), st.floats(-2, 2), st.floats(0, 20),
       st.lists(st.integers(1, 4), min_size=2, max_size=4), DTYPES, LAYOUTS, LAYOUTS, st.integers(0, 99),
       st.floats(0.1, 30))
def test_activations_match_torch(name, a, b, shape, dtype, layout, grad_layout, seed, scale):
    layer, t_layer = ACTIVATIONS[name](a, b)
    x = (_x(tuple(shape), np.float64, seed) * scale).astype(dtype)
    compare(layer, t_layer, x, layout, seed, grad_layout)


@SETTINGS
@given(st.integers(0, 5), st.integers(1, 5), st.integers(1, 5), st.booleans(), st.integers(0, 2), DTYPES,
       LAYOUTS, LAYOUTS, st.integers(0, 99))
def test_linear_matches_torch(n, fin, fout, bias, extra_dims, dtype, layout, grad_layout, seed):
    layer = nn.Linear(fin, fout, bias=bias, generator=seed, dtype=dtype)
    x = _x((n,) + (2,) * extra_dims + (fin,), dtype, seed)
    compare(layer, torch.nn.Linear(fin, fout, bias=bias), x, layout, seed, grad_layout)


@SETTINGS
@given(st.sampled_from(["bn1", "bn2", "bn3", "bn2-eval", "ln", "gn"]), st.integers(2, 3), st.integers(1, 3),
       st.booleans(), st.floats(1e-6, 1e-2), DTYPES, LAYOUTS, LAYOUTS, st.integers(0, 99))
def test_normalisation_matches_torch(kind, n, groups, affine, eps, dtype, layout, grad_layout, seed):
    c = 2 * groups
    if kind.startswith("bn"):
        dims = int(kind[2])
        cls, tcls = getattr(nn, f"BatchNorm{dims}d"), getattr(torch.nn, f"BatchNorm{dims}d")
        layer, t_layer = cls(c, eps=eps, affine=affine, dtype=dtype), tcls(c, eps=eps, affine=affine)
        shape = (n, c, 3) if dims == 1 else (n, c) + (3,) * dims
        if kind.endswith("eval"):
            rng = np.random.default_rng(seed)
            layer.running_mean[...] = rng.standard_normal(c)
            layer.running_var[...] = rng.uniform(0.5, 2, c)
            layer.eval()
    elif kind == "ln":
        layer, t_layer = (nn.LayerNorm((c, 3), eps=eps, elementwise_affine=affine, dtype=dtype),
                          torch.nn.LayerNorm((c, 3), eps=eps, elementwise_affine=affine))
        shape = (n, 2, c, 3)
    else:
        layer, t_layer = (nn.GroupNorm(groups, c, eps=eps, affine=affine, dtype=dtype),
                          torch.nn.GroupNorm(groups, c, eps=eps, affine=affine))
        shape = (n, c, 3, 2)
    if affine:
        rng = np.random.default_rng(seed + 1)
        for p in layer.parameters():
            p.data[...] = rng.standard_normal(p.shape)
    compare(layer, t_layer, _x(shape, dtype, seed), layout, seed, grad_layout)


@SETTINGS
@given(st.integers(0, 2), st.integers(-3, 3), LAYOUTS, st.integers(0, 99))
def test_flatten_matches_torch(start, end, layout, seed):
    x = _x((2, 3, 2, 2), np.float64, seed)
    if (start % 4) > (end % 4):
        return
    compare(nn.Flatten(start, end), torch.nn.Flatten(start, end), x, layout, seed)


# ---------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(st.sampled_from(["ce", "ce-probs", "nll", "mse", "l1", "bce"]), st.sampled_from(["mean", "sum", "none"]),
       st.integers(1, 4), st.integers(2, 4), st.booleans(), st.floats(0, 0.5), LAYOUTS, st.integers(0, 99))
def test_losses_match_torch(kind, reduction, n, c, weighted, smoothing, layout, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 2))
    w = rng.uniform(0.5, 2, c) if weighted else None
    tw = None if w is None else torch.from_numpy(w)
    if kind in ("ce", "nll"):
        t = rng.integers(0, c, (n, 2))
        t[0, 0] = -100
        kw = dict(weight=w, reduction=reduction)
        tkw = dict(weight=tw, reduction=reduction)
        if kind == "ce":
            loss, t_loss = nn.CrossEntropyLoss(**kw, label_smoothing=smoothing), torch.nn.CrossEntropyLoss(
                **tkw, label_smoothing=smoothing)
        else:
            loss, t_loss = nn.NLLLoss(**kw), torch.nn.NLLLoss(**tkw)
        tt = torch.from_numpy(t)
    elif kind == "ce-probs":
        t = rng.dirichlet(np.ones(c), (n, 2)).transpose(0, 2, 1).copy()
        loss = nn.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing)
        t_loss = torch.nn.CrossEntropyLoss(weight=tw, reduction=reduction, label_smoothing=smoothing)
        tt = torch.from_numpy(t)
    else:
        t = rng.uniform(0, 1, x.shape) if kind == "bce" else rng.standard_normal(x.shape)
        cls, tcls = {"mse": (nn.MSELoss, torch.nn.MSELoss), "l1": (nn.L1Loss, torch.nn.L1Loss),
                     "bce": (nn.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss)}[kind]
        loss, t_loss = cls(reduction=reduction), tcls(reduction=reduction)
        tt = torch.from_numpy(t)
    value = loss(laid_out(x, layout), laid_out(t, layout) if t.dtype.kind == "f" else t)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tv = t_loss(tx, tt)
    np.testing.assert_allclose(value, tv.detach().numpy(), **_tol(np.float64))
    g = rng.standard_normal(tv.shape) if reduction == "none" else None
    dx = loss.backward(g)
    tv.backward(torch.ones(()) .double() if g is None else torch.from_numpy(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **_tol(np.float64))
