"""The configurations `convgrad gradcheck` sweeps: for every layer a sampler that builds a small
random instance and an input for it.

    LAYERS["Conv2d"](rng, i) -> Case(module, x, config)      i: the configuration's index
    cases("Conv2d", 5, seed=0)                                -> five Cases, the same every time

Samplers vary the options that change the backward (stride, padding and its modes, dilation,
groups, ceil mode, train/eval, ...) and cycle some of them with i, so that a few configurations
already cover them. Shapes stay small: a numerical gradient costs two forwards per entry.
Inputs avoid the points where a layer is not differentiable: max-pooling inputs are a
permutation of evenly spaced values (no near-ties), other inputs keep |x| >= 0.05 (away from
the kinks of ReLU and friends). Dropout in training mode is wrapped in FixedMask.
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import nn
from ..nn.module import Module


# ---------------------------------------------------------------------------------------
# Cases: a module, an input and a description of the configuration
# ---------------------------------------------------------------------------------------
@dataclass
class Case:
    module: Module
    x: np.ndarray
    config: dict
    note: str = ""

    def describe(self) -> str:
        parts = [f"x={'x'.join(map(str, self.x.shape))}"]
        for k, v in self.config.items():
            parts.append(("no" + k) if v is False else k if v is True else f"{k}={_short(v)}")
        return " ".join(parts)


def _short(v) -> str:
    if isinstance(v, tuple):
        return str(v[0]) if len(set(v)) == 1 else "(" + ",".join(map(str, v)) + ")"
    return str(v)


@dataclass
class BrokenCase:
    """A configuration whose layer could not even be built: reported as a failure."""
    error: str
    config: dict = field(default_factory=dict)
    note: str = ""

    def describe(self) -> str:
        return "(construction failed)"


LAYERS: dict[str, Callable[[np.random.Generator, int], Case]] = {}
FAMILIES: dict[str, list[str]] = {}


def _register(family: str, *names: str):
    def wrap(sampler):
        for name in names:
            LAYERS[name] = (lambda n: lambda rng, i: sampler(rng, i, n))(name)
            FAMILIES.setdefault(family, []).append(name)
        return sampler
    return wrap


def normal_input(rng, shape) -> np.ndarray:
    """Standard normal values pushed away from 0 (|x| >= 0.05): no kink of ReLU & co. within reach."""
    r = rng.standard_normal(shape)
    return np.sign(r) * (np.abs(r) + 0.05) + 0.0


def distinct_input(rng, shape) -> np.ndarray:
    """A permutation of evenly spaced values in [-1.5, 1.5): no two closer than 3/size, so no
    perturbation of 1e-6 changes which element of a window is the maximum."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * (3.0 / n) - 1.5).reshape(shape)


def _jitter_params(module: Module, rng) -> Module:
    """Add noise to every parameter (BatchNorm's ones and zeros would hide mix-ups of weight and bias)."""
    for p in module.parameters():
        p.data = p.data + 0.3 * rng.standard_normal(p.data.shape)
    return module


def _ints(rng, lo, hi, n):
    """n integers in [lo, hi) as a tuple."""
    return tuple(int(v) for v in rng.integers(lo, hi, size=n))


class FixedMask(Module):
    """Wrap a module that draws random numbers (dropout): before every forward each of its numpy
    Generators is put back to the state it had when wrapped, so every forward draws the same mask
    and the layer is an ordinary differentiable function."""

    def __init__(self, inner: Module):
        super().__init__()
        self.inner = inner
        self._states = {k: copy.deepcopy(g.bit_generator.state) for k, g in _generators(inner).items()}

    def forward(self, x):
        for key, gen in _generators(self.inner).items():
            gen.bit_generator.state = copy.deepcopy(self._states[key])
        return self.inner(x)

    def backward(self, grad_out):
        return self.inner.backward(grad_out)


def _generators(model: Module) -> dict:
    found = {}
    for name, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if isinstance(value, np.random.Generator):
                found[f"{name}.{attr}"] = value
    return found


# ---- convolutions ------------------------------------------------------------------------
_CONV_N = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3, "ConvTranspose1d": 1, "ConvTranspose2d": 2, "ConvTranspose3d": 3}


@_register("convolution", "Conv1d", "Conv2d", "Conv3d")
def _conv(rng, i, name):
    from ..functional.padding import PADDING_MODES
    n = _CONV_N[name]
    small = n == 3
    mode = PADDING_MODES[i % len(PADDING_MODES)]
    groups = 1 + i % 3
    c_in, c_out = groups * int(rng.integers(1, 2 if small else 3)), groups * int(rng.integers(1, 3))
    k = _ints(rng, 1, 3 if small else 4, n)
    stride, dilation = _ints(rng, 1, 3 if small else 4, n), _ints(rng, 1, 3, n)
    size = tuple(max(d * (kk - 1) + 1, 3) + int(rng.integers(0, 2 if small else 4)) for d, kk in zip(dilation, k))
    if i % 5 == 4:
        stride, padding = (1,) * n, "same"                # 'same' needs stride 1
    elif rng.random() < 0.15:
        padding = "valid"
    else:
        padding = _ints(rng, 0, 3, n)
    module = getattr(nn, name)(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                               bias=bool(rng.random() < 0.8), padding_mode=mode, generator=rng)
    cfg = {"in": c_in, "out": c_out, "k": k, "s": stride, "p": padding, "d": dilation, "g": groups}
    cfg.update({"mode": mode} if mode != "zeros" else {}, **({"bias": False} if module.bias is None else {}))
    return Case(module, normal_input(rng, (1 if small else 2, c_in) + size), cfg)


@_register("convolution", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
def _conv_transpose(rng, i, name):
    n = _CONV_N[name]
    small = n == 3
    groups = 1 + i % 2
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 2 if small else 3))
    k = _ints(rng, 1, 3 if small else 4, n)
    stride, dilation = _ints(rng, 1, 3 if small else 4, n), _ints(rng, 1, 3, n)
    size = _ints(rng, 2, 4 if small else 5, n)
    out_pad = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    # output (L - 1)s - 2p + d(k - 1) + op + 1 must stay >= 1
    padding = tuple(min(int(rng.integers(0, 3)), ((L - 1) * s + d * (kk - 1) + op) // 2)
                    for L, s, d, kk, op in zip(size, stride, dilation, k, out_pad))
    module = getattr(nn, name)(c_in, c_out, k, stride=stride, padding=padding, output_padding=out_pad,
                               groups=groups, bias=bool(rng.random() < 0.8), dilation=dilation, generator=rng)
    cfg = {"in": c_in, "out": c_out, "k": k, "s": stride, "p": padding, "op": out_pad, "d": dilation, "g": groups}
    cfg.update({"bias": False} if module.bias is None else {})
    return Case(module, normal_input(rng, (1 if small else 2, c_in) + size), cfg)


# ---- pooling -----------------------------------------------------------------------------
def _pool_geometry(rng, n, dilate):
    k = _ints(rng, 2, 4 if n < 3 else 3, n)
    stride = _ints(rng, 1, 4 if n < 3 else 3, n)
    padding = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    dilation = _ints(rng, 1, 3, n) if dilate else (1,) * n
    size = tuple(d * (kk - 1) + 1 + int(rng.integers(0, 4 if n < 3 else 2)) for d, kk in zip(dilation, k))
    return k, stride, padding, dilation, size


@_register("pooling", "MaxPool1d", "MaxPool2d", "MaxPool3d")
def _max_pool(rng, i, name):
    n = int(name[-2])
    k, stride, padding, dilation, size = _pool_geometry(rng, n, dilate=True)
    ceil = bool(i % 2)
    module = getattr(nn, name)(k, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil)
    cfg = {"k": k, "s": stride, "p": padding, "d": dilation, "ceil": ceil}
    return Case(module, distinct_input(rng, (2, 2) + size), cfg)


@_register("pooling", "AvgPool1d", "AvgPool2d", "AvgPool3d")
def _avg_pool(rng, i, name):
    n = int(name[-2])
    k, stride, padding, _, size = _pool_geometry(rng, n, dilate=False)
    ceil, include = bool(i % 2), bool(rng.random() < 0.5)
    kwargs = {"ceil_mode": ceil, "count_include_pad": include}
    cfg = {"k": k, "s": stride, "p": padding, "ceil": ceil, "count_pad": include}
    if n > 1 and i % 3 == 2:
        kwargs["divisor_override"] = cfg["divisor"] = int(rng.integers(1, 6))
    module = getattr(nn, name)(k, stride=stride, padding=padding, **kwargs)
    return Case(module, normal_input(rng, (2, 2) + size), cfg)


@_register("pooling", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
def _adaptive_pool(rng, i, name):
    n = int(name[-2])
    size = _ints(rng, 2, 7 if n < 3 else 5, n)
    out = tuple(int(rng.integers(1, s + 2)) for s in size)      # larger than the input: overlapping windows
    out_arg = out[0] if n == 1 else out
    make = distinct_input if "Max" in name else normal_input
    return Case(getattr(nn, name)(out_arg), make(rng, (2, 2) + size), {"out": out})


# ---- normalisation -----------------------------------------------------------------------
@_register("normalization", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
def _batch_norm(rng, i, name):
    n = int(name[-2])
    c = int(rng.integers(1, 4))
    train, affine, track = i % 2 == 0, bool(rng.random() < 0.8), bool(i % 4 != 3)
    module = getattr(nn, name)(c, affine=affine, track_running_stats=track, momentum=0.1)
    if track:
        module.running_mean = rng.standard_normal(c)
        module.running_var = rng.uniform(0.5, 2.0, c)
    _jitter_params(module, rng).train(train)
    spatial = {1: () if i % 4 < 2 else _ints(rng, 1, 5, 1), 2: _ints(rng, 2, 4, 2), 3: _ints(rng, 1, 3, 3)}[n]
    cfg = {"C": c, "mode": "train" if train else "eval", "affine": affine, "running_stats": track}
    return Case(module, normal_input(rng, (3 if n == 1 else 2, c) + spatial), cfg)


@_register("normalization", "LayerNorm")
def _layer_norm(rng, i, name):
    shape = (2,) + _ints(rng, 1, 4, 1 + i % 3)
    normalized = shape[-int(rng.integers(1, len(shape))):]
    affine, bias = bool(rng.random() < 0.8), bool(rng.random() < 0.7)
    module = _jitter_params(nn.LayerNorm(normalized, elementwise_affine=affine, bias=bias), rng)
    return Case(module, normal_input(rng, shape), {"normalized_shape": normalized, "affine": affine, "bias": bias})


@_register("normalization", "GroupNorm")
def _group_norm(rng, i, name):
    groups = int(rng.integers(1, 4))
    c = groups * int(rng.integers(1, 3))
    affine = bool(rng.random() < 0.8)
    module = _jitter_params(nn.GroupNorm(groups, c, affine=affine), rng)
    spatial = _ints(rng, 2, 4, 1 + i % 2)                 # at least two values per group
    return Case(module, normal_input(rng, (2, c) + spatial), {"groups": groups, "C": c, "affine": affine})


# ---- linear, activations, dropout, shapes, resampling ---------------------------------
@_register("dense", "Linear")
def _linear(rng, i, name):
    n_in, n_out, bias = int(rng.integers(1, 6)), int(rng.integers(1, 5)), bool(rng.random() < 0.8)
    lead = (2,) if i % 2 == 0 else (2, 3)
    return Case(nn.Linear(n_in, n_out, bias=bias, generator=rng), normal_input(rng, lead + (n_in,)),
                {"in": n_in, "out": n_out, "bias": bias})


@_register("dense", "Identity")
def _identity(rng, i, name):
    return Case(nn.Identity(), normal_input(rng, (2, 3)), {})


_ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softplus", "SiLU", "Softmax", "LogSoftmax")


@_register("activation", *_ACTIVATIONS)
def _activation(rng, i, name):
    shape = (2,) + _ints(rng, 2, 5, 1 + i % 3)
    kwargs = {}
    if name == "LeakyReLU":
        kwargs["negative_slope"] = round(float(rng.uniform(0.01, 0.5)), 3)
    elif name == "ELU":
        kwargs["alpha"] = round(float(rng.uniform(0.5, 2.0)), 3)
    elif name == "GELU":
        kwargs["approximate"] = ("none", "tanh")[i % 2]
    elif name == "Softplus":
        kwargs["beta"] = round(float(rng.uniform(0.5, 3.0)), 3)
        kwargs["threshold"] = (20.0, 1.0)[i % 2]          # 1.0: the linear branch is used too
    elif name in ("Softmax", "LogSoftmax"):
        kwargs["dim"] = int(rng.integers(-len(shape), len(shape)))
    return Case(getattr(nn, name)(**kwargs), normal_input(rng, shape) * 2, kwargs)


@_register("regularization", "Dropout", "Dropout2d")
def _dropout(rng, i, name):
    p = round(float(rng.uniform(0.1, 0.7)), 2)
    train = i % 2 == 0
    layer = getattr(nn, name)(p, generator=int(rng.integers(1 << 30))).train(train)
    shape = (2, 3) + _ints(rng, 2, 4, 2) if name == "Dropout2d" else (2,) + _ints(rng, 2, 5, 1 + i % 2)
    note = "mask fixed by re-seeding before every forward" if train else ""
    return Case(FixedMask(layer) if train else layer, normal_input(rng, shape), {"p": p, "mode": "train" if train else "eval"},
                note)


@_register("shape", "Flatten")
def _flatten(rng, i, name):
    shape = _ints(rng, 1, 4, 2 + i % 3)
    start = int(rng.integers(0, len(shape)))
    end = int(rng.integers(start, len(shape)))
    end = end - len(shape) if rng.random() < 0.5 else end
    return Case(nn.Flatten(start, end), normal_input(rng, shape), {"start_dim": start, "end_dim": end})


@_register("shape", "Unflatten")
def _unflatten(rng, i, name):
    parts = _ints(rng, 1, 4, 2)
    return Case(nn.Unflatten(1, parts), normal_input(rng, (2, int(np.prod(parts)), 2)), {"dim": 1, "sizes": parts})


@_register("resampling", "Upsample")
def _upsample(rng, i, name):
    n = 1 + i % 3
    factor = _ints(rng, 1, 4, n) if rng.random() < 0.5 else int(rng.integers(2, 4))
    mode = ("nearest", "zeros")[int(rng.integers(0, 2))]
    return Case(nn.Upsample(factor, mode=mode), normal_input(rng, (2, 2) + _ints(rng, 1, 4, n)),
                {"factor": factor, "mode": mode})


@_register("resampling", "Downsample")
def _downsample(rng, i, name):
    n = 1 + i % 3
    factor = _ints(rng, 1, 4, n) if rng.random() < 0.5 else int(rng.integers(2, 4))
    return Case(nn.Downsample(factor), normal_input(rng, (2, 2) + _ints(rng, 2, 6, n)), {"factor": factor})


# ---- graphs ------------------------------------------------------------------------------
@_register("graph", "Residual")
def _residual(rng, i, name):
    c, c2 = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    projected = i % 2 == 1
    out = c2 if projected else c
    body = nn.Sequential(nn.Conv2d(c, out, 3, padding=1, generator=rng), nn.Tanh())
    shortcut = nn.Conv2d(c, out, 1, generator=rng) if projected else None
    return Case(nn.Residual(body, shortcut), normal_input(rng, (2, c, 4, 4)),
                {"body": f"Conv3x3({c}->{out})+Tanh", "shortcut": f"Conv1x1({c}->{out})" if projected else "identity"})


@_register("graph", "Add", "Concat")
def _branches(rng, i, name):
    c, c2 = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    a = nn.Conv2d(c, c2 if name == "Concat" else c, 3, padding=1, generator=rng)
    module = nn.Add(a, nn.Tanh()) if name == "Add" else nn.Concat(a, nn.Tanh(), dim=1)
    return Case(module, normal_input(rng, (2, c, 4, 3)), {"branches": f"Conv3x3({c}->{a.out_channels}), Tanh"})


@_register("graph", "BasicBlock")
def _basic_block(rng, i, name):
    c_in, c_out, stride = [(2, 2, 1), (2, 3, 2), (2, 2, 2), (1, 2, 1)][i % 4]
    train = i % 2 == 0
    block = nn.BasicBlock(c_in, c_out, stride=stride, generator=rng)
    for mod in block.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean, mod.running_var = rng.standard_normal(c_out) * 0.1, rng.uniform(0.5, 2.0, c_out)
    _jitter_params(block, rng).train(train)
    return Case(block, normal_input(rng, (2, c_in, 5, 5)),
                {"in": c_in, "out": c_out, "stride": stride, "mode": "train" if train else "eval"})


@_register("graph", "Sequential")
def _sequential(rng, i, name):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, generator=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8, 3, generator=rng))
    return Case(model, normal_input(rng, (2, 1, 6, 6)), {"layers": "Conv2d ReLU MaxPool2d Flatten Linear"})


def layer_rng(seed: int, name: str) -> np.random.Generator:
    """The same configurations of a layer whether it runs alone (--layer) or in the full sweep."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def cases(name: str, configs: int = 5, seed: int = 0):
    """(configuration index, Case) for the registered layer `name`."""
    rng = layer_rng(seed, name)
    for i in range(configs):
        try:
            yield LAYERS[name](rng, i)
        except Exception as exc:  # noqa: BLE001 - a layer that cannot be built is a failed check
            yield BrokenCase(f"{type(exc).__name__}: {exc}")
