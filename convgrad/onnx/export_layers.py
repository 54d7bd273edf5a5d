"""Each layer as ONNX operators: EMITTERS maps a layer type to emit(g, layer, x, name, path) -> output
name, where x is the value of the input tensor `name` (its shape fixes static attributes) and
g an export.GraphBuilder. Parameters become initializers named as in the state_dict."""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..functional import pooling as P
from ..functional.activation import resolve_softmax_dim
from ._proto import OnnxError


def _param(g, layer, attr: str, path: str):
    p = getattr(layer, attr, None)
    return None if p is None else g.param(p, f"{path}.{attr}")


def _fail(layer, path: str, why: str):
    where = f"at {path!r}" if path else "(the model itself)"
    raise OnnxError(f"convgrad.onnx.export: {type(layer).__name__} {where}: {why} has no ONNX form")


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


# ---- convolution ----------------------------------------------------------------------------------
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv(g, m, x, name, path):
    n = m.n_dims
    if m.padding == "same":
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        begin = [t // 2 for t in total]                       # torch puts the odd element at the end
        pads = begin + [t - b for t, b in zip(total, begin)]
    elif m.padding == "valid":
        pads = [0] * (2 * n)
    else:
        pads = list(m.padding) * 2
    if m.padding_mode != "zeros" and any(pads):
        if m.padding_mode == "circular" and g.opset < 19:
            _fail(m, path, f"padding_mode='circular' below opset 19 (asked: {g.opset})")
        full = [0, 0] + pads[:n] + [0, 0] + pads[n:]
        name = g.node("Pad", [name, g.ints(path, full)], path + ".pad", mode=_PAD_MODES[m.padding_mode])
        pads = [0] * (2 * n)
    inputs = [name, _param(g, m, "weight", path)] + ([_param(g, m, "bias", path)] if m.bias is not None else [])
    return g.node("Conv", inputs, path, kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=pads,
                  dilations=list(m.dilation), group=m.groups)


def _conv_transpose(g, m, x, name, path):
    inputs = [name, _param(g, m, "weight", path)] + ([_param(g, m, "bias", path)] if m.bias is not None else [])
    return g.node("ConvTranspose", inputs, path, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=list(m.padding) * 2, dilations=list(m.dilation), group=m.groups,
                  output_padding=list(m.output_padding))


# ---- pooling --------------------------------------------------------------------------------------
def _max_pool(g, m, x, name, path):
    if m.return_indices:
        _fail(m, path, "return_indices=True (torch's index layout)")
    k, s, p, d = P.pool_args(m.kernel_size, m.stride, m.padding, m.dilation, m.n_dims, type(m).__name__)
    return g.node("MaxPool", [name], path, kernel_shape=list(k), strides=list(s), pads=list(p) * 2,
                  dilations=list(d), ceil_mode=int(m.ceil_mode))


def _avg_pool(g, m, x, name, path):
    if m.divisor_override is not None:
        _fail(m, path, "divisor_override")
    k, s, p, _ = P.pool_args(m.kernel_size, m.stride, m.padding, 1, m.n_dims, type(m).__name__)
    return g.node("AveragePool", [name], path, kernel_shape=list(k), strides=list(s), pads=list(p) * 2,
                  ceil_mode=int(m.ceil_mode), count_include_pad=int(m.count_include_pad))


def _adaptive(op: str, global_op: str):
    def emit(g, m, x, name, path):
        spatial = x.shape[2:]
        out = [s if o is None else o for o, s in zip(_tuple(m.output_size, m.n_dims), spatial)]
        if all(o == 1 for o in out):
            return g.node(global_op, [name], path)
        if getattr(m, "return_indices", False):
            _fail(m, path, "return_indices=True")
        if any(s % o for s, o in zip(spatial, out)):
            _fail(m, path, f"output size {tuple(out)} not dividing the input's {tuple(spatial)} (uneven windows)")
        k = [s // o for s, o in zip(spatial, out)]
        return g.node(op, [name], path, kernel_shape=k, strides=k)
    return emit


# ---- normalisation, dense ---------------------------------------------------------------------
def _batch_norm(g, m, x, name, path):
    if m.running_mean is None:
        _fail(m, path, "track_running_stats=False (batch statistics at inference)")
    c = m.num_features
    scale = _param(g, m, "weight", path) or g.constant(f"{path}.weight", np.ones(c))
    bias = _param(g, m, "bias", path) or g.constant(f"{path}.bias", np.zeros(c))
    mean = g.param(m.running_mean, f"{path}.running_mean")
    var = g.param(m.running_var, f"{path}.running_var")
    return g.node("BatchNormalization", [name, scale, bias, mean, var], path, epsilon=m.eps,
                  momentum=1.0 - (0.1 if m.momentum is None else m.momentum))


def _layer_norm(g, m, x, name, path):
    shape = m.normalized_shape
    scale = _param(g, m, "weight", path) or g.constant(f"{path}.weight", np.ones(shape))
    inputs = [name, scale] + ([_param(g, m, "bias", path)] if m.bias is not None else [])
    return g.node("LayerNormalization", inputs, path, axis=-len(shape), epsilon=m.eps)


def _group_norm(g, m, x, name, path):
    """As torch exports it: (N, C, *S) -> (N, G, -1), InstanceNormalization, back, then weight and bias."""
    grouped = g.node("Reshape", [name, g.ints(path, [0, m.num_groups, -1])], path)
    ones = g.constant(f"{path}.group_scale", np.ones(m.num_groups))
    zeros = g.constant(f"{path}.group_bias", np.zeros(m.num_groups))
    y = g.node("InstanceNormalization", [grouped, ones, zeros], path, epsilon=m.eps)
    y = g.node("Reshape", [y, g.node("Shape", [name], path)], path)
    if m.weight is None:
        return y
    per_channel = (m.num_channels,) + (1,) * (x.ndim - 2)
    shape = g.ints(path, per_channel)
    w = g.node("Reshape", [_param(g, m, "weight", path), shape], path)
    b = g.node("Reshape", [_param(g, m, "bias", path), shape], path)
    return g.node("Add", [g.node("Mul", [y, w], path), b], path)


def _linear(g, m, x, name, path):
    w = _param(g, m, "weight", path)
    if x.ndim == 2:
        inputs = [name, w] + ([_param(g, m, "bias", path)] if m.bias is not None else [])
        return g.node("Gemm", inputs, path, transB=1)
    y = g.node("MatMul", [name, g.node("Transpose", [w], path, perm=[1, 0])], path)
    return y if m.bias is None else g.node("Add", [y, _param(g, m, "bias", path)], path)


# ---- activations -------------------------------------------------------------------------------
def _simple(op: str, **fixed):
    def emit(g, m, x, name, path):
        attrs = {k: getattr(m, v) for k, v in fixed.items()}
        return g.node(op, [name], path, **attrs)
    return emit


def _scalar(g, path, value, x):
    return g.constant(f"{path}.c", np.asarray(value, x.dtype))


def _gelu(g, m, x, name, path):
    half_x = g.node("Mul", [name, _scalar(g, path, 0.5, x)], path)
    if m.approximate == "none":                       # x/2 (1 + erf(x / sqrt 2))
        inner = g.node("Erf", [g.node("Mul", [name, _scalar(g, path, 1 / math.sqrt(2), x)], path)], path)
    else:                                             # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [name, name], path), name], path)
        poly = g.node("Add", [name, g.node("Mul", [cube, _scalar(g, path, 0.044715, x)], path)], path)
        inner = g.node("Tanh", [g.node("Mul", [poly, _scalar(g, path, math.sqrt(2 / math.pi), x)], path)], path)
    return g.node("Mul", [half_x, g.node("Add", [inner, _scalar(g, path, 1.0, x)], path)], path)


def _softplus(g, m, x, name, path):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (torch's rule)."""
    bx = g.node("Mul", [name, _scalar(g, path, m.beta, x)], path)
    soft = g.node("Div", [g.node("Softplus", [bx], path), _scalar(g, path, m.beta, x)], path)
    linear = g.node("Greater", [bx, _scalar(g, path, m.threshold, x)], path)
    return g.node("Where", [linear, name, soft], path)


def _silu(g, m, x, name, path):
    return g.node("Mul", [name, g.node("Sigmoid", [name], path)], path)


def _softmax(op: str):
    def emit(g, m, x, name, path):
        return g.node(op, [name], path, axis=resolve_softmax_dim(m.dim, x.ndim, type(m).__name__))
    return emit


# ---- shapes and resampling -------------------------------------------------------------------
def _identity(g, m, x, name, path):
    return name


def _reshape_to(g, path, name, shape):
    """Reshape keeping axis 0 symbolic (0 = copy the input's batch size)."""
    return g.node("Reshape", [name, g.ints(path, [0, *shape[1:]])], path)


def _flatten(g, m, x, name, path):
    y_shape = m(x).shape
    if x.ndim >= 2 and m.start_dim % x.ndim == 1 and m.end_dim % x.ndim == x.ndim - 1:
        return g.node("Flatten", [name], path, axis=1)
    if m.start_dim % max(x.ndim, 1) == 0:
        return g.node("Reshape", [name, g.ints(path, [-1, *y_shape[1:]])], path)
    return _reshape_to(g, path, name, y_shape)


def _unflatten(g, m, x, name, path):
    y_shape = m(x).shape
    if m.dim % x.ndim == 0:
        return g.node("Reshape", [name, g.ints(path, [-1, *y_shape[1:]])], path)
    return _reshape_to(g, path, name, y_shape)


def _upsample(g, m, x, name, path):
    f = _tuple(m.scale_factor, x.ndim - 2)
    if m.mode == "nearest":
        scales = g.constant(f"{path}.scales", np.array([1, 1, *f], np.float32), np.float32)
        return g.node("Resize", [name, "", scales], path, mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    # zero insertion: a depthwise transposed convolution with a 1x1 kernel of ones and stride f
    c = x.shape[1]
    ones = g.constant(f"{path}.ones", np.ones((c, 1) + (1,) * len(f)))
    return g.node("ConvTranspose", [name, ones], path, kernel_shape=[1] * len(f), strides=list(f), group=c)


def _pad(g, m, x, name, path):
    """A padding layer (nn/padding.py): Pad of its spatial axes, the fill as the constant_value input."""
    if m.mode == "circular" and g.opset < 19:
        _fail(m, path, f"circular padding below opset 19 (asked: {g.opset})")
    lead = [0] * (x.ndim - len(m.pads))
    pads = lead + [lo for lo, _ in m.pads] + lead + [hi for _, hi in m.pads]
    inputs = [name, g.ints(path, pads)]
    if m.mode == "constant" and m.value != 0:
        inputs.append(g.constant(f"{path}.value", np.asarray(m.value, x.dtype), x.dtype))
    return g.node("Pad", inputs, path, mode=_PAD_MODES.get(m.mode, "constant"))


def _max_unpool(g, m, x, name, path):
    _fail(m, path, "max unpooling (it reads MaxPool's indices, a second input export does not write)")


def _downsample(g, m, x, name, path):
    f = _tuple(m.factor, x.ndim - 2)
    axes = list(range(2, x.ndim))
    return g.node("Slice", [name, g.ints(path, [0] * len(f)), g.ints(path, [np.iinfo(np.int64).max] * len(f)),
                            g.ints(path, axes), g.ints(path, list(f))], path)


EMITTERS = {
    **{t: _conv for t in (nn.Conv1d, nn.Conv2d, nn.Conv3d)},
    **{t: _conv_transpose for t in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)},
    **{t: _max_pool for t in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)},
    **{t: _avg_pool for t in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)},
    **{t: _adaptive("AveragePool", "GlobalAveragePool")
       for t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)},
    **{t: _adaptive("MaxPool", "GlobalMaxPool") for t in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                                                          nn.AdaptiveMaxPool3d)},
    **{t: _batch_norm for t in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)},
    nn.LayerNorm: _layer_norm, nn.GroupNorm: _group_norm, nn.Linear: _linear,
    nn.ReLU: _simple("Relu"), nn.LeakyReLU: _simple("LeakyRelu", alpha="negative_slope"),
    nn.ELU: _simple("Elu", alpha="alpha"), nn.Sigmoid: _simple("Sigmoid"), nn.Tanh: _simple("Tanh"),
    nn.GELU: _gelu, nn.Softplus: _softplus, nn.SiLU: _silu,
    nn.Softmax: _softmax("Softmax"), nn.LogSoftmax: _softmax("LogSoftmax"),
    nn.Dropout: _identity, nn.Dropout2d: _identity, nn.Identity: _identity,
    nn.Flatten: _flatten, nn.Unflatten: _unflatten, nn.Upsample: _upsample, nn.Downsample: _downsample,
    **{t: _max_unpool for t in (nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d)},
    **{getattr(nn, f"{kind}Pad{n}d"): _pad for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
       for n in (1, 2, 3)},
}
