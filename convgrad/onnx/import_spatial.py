"""The spatial ONNX operators convgrad imports — Conv, ConvTranspose, the pools, Resize, Pad —
as import_ops.Op forward/backward pairs, with ONNX's padding rules (pads, auto_pad, a
ConvTranspose's output_shape) resolved in one place. OPS maps their op_type to the class."""
from __future__ import annotations

import numpy as np

from ..functional import convolution as C
from ..functional import padding as PD
from ..functional import pooling as P
from ..functional import resample as R
from ._proto import OnnxError
from .import_ops import Op


def _pad_pairs(op: Op, spatial_shape, kernel, strides, dilations):
    """The node's padding as (lo, hi) per spatial axis: its pads, or the ones auto_pad implies
    (SAME_UPPER / SAME_LOWER: output ceil(S / stride), the odd element at the end / start)."""
    n = len(spatial_shape)
    auto = op.get("auto_pad", "NOTSET")
    pads = list(op.get("pads", [0] * 2 * n))
    if auto == "NOTSET":
        return list(zip(pads[:n], pads[n:]))
    if auto == "VALID":
        return [(0, 0)] * n
    pairs = []
    for size, k, s, d in zip(spatial_shape, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return pairs


def _symmetric(pairs) -> bool:
    return all(lo == hi for lo, hi in pairs)


class _ExplicitPadding:
    """Asymmetric pool padding as an explicit pad (functional/padding.py) before an unpadded
    pool, and its adjoint (the padded positions' gradient dropped)."""

    def __init__(self, pairs, fill=0.0):
        self.pairs, self.fill = [tuple(p) for p in pairs], fill

    def pad(self, x):
        self.shape = x.shape
        return PD.pad(x, self.pairs, "constant", value=self.fill)

    def unpad(self, dx):
        return PD.pad_backward(dx, self.pairs, "constant", self.shape)


POOL_AUTO_PAD = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _pool_padding(op: Op, x, kernel, strides, dilations):
    """(symmetric pads per axis, None) or ((0,) * n, _ExplicitPadding) for asymmetric ones."""
    pairs = _pad_pairs(op, x.shape[2:], kernel, strides, dilations)
    if _symmetric(pairs):
        return tuple(lo for lo, _ in pairs), None
    if op.get("ceil_mode", 0):
        raise OnnxError(f"{op.where}: ceil_mode=1 with asymmetric pads {pairs} is not supported: convgrad pads "
                        f"explicitly, and ceil mode's rule for windows starting in the end padding would differ")
    return (0,) * len(pairs), pairs


# ---- convolution ------------------------------------------------------------------------------
class Conv(Op):
    allowed = {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "group": None,
               "auto_pad": POOL_AUTO_PAD}

    def forward(self, inputs, training):
        x, w, b = (inputs + [None])[:3]
        n = w.ndim - 2
        pairs = _pad_pairs(self, x.shape[2:], w.shape[2:], self.get("strides", [1] * n),
                           self.get("dilations", [1] * n))
        pads = [lo for lo, _ in pairs] + [hi for _, hi in pairs]
        self.crop = None
        if pads[:n] != pads[n:]:                 # asymmetric: pad explicitly, crop in backward
            x = np.pad(x, [(0, 0), (0, 0)] + list(zip(pads[:n], pads[n:])))
            self.crop = tuple(slice(p, p + s) for p, s in zip(pads[:n], inputs[0].shape[2:]))
            pads = [0] * 2 * n
        y, self.cache = C.conv_forward(x, w, b, tuple(self.get("strides", [1] * n)), tuple(pads[:n]),
                                       tuple(self.get("dilations", [1] * n)), self.get("group", 1))
        return y

    def backward(self, dy):
        dx, dw, db = C.conv_backward(dy, self.cache)
        if self.crop is not None:
            dx = np.ascontiguousarray(dx[(slice(None), slice(None)) + self.crop])
        return [dx, dw, db]


class ConvTranspose(Op):
    """Symmetric pads: convgrad's conv_transpose as it is. Asymmetric pads, or an output_shape
    (whose pads follow ONNX's rule: total = stride (S - 1) + output_padding + d (k - 1) + 1 -
    output_shape, the odd element at the start unless auto_pad is SAME_UPPER): the full
    transposed convolution (no padding) cut to [lo, full + output_padding - hi), positions past
    its end (output_padding, negative pads) holding only the bias."""
    allowed = {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "group": None,
               "output_padding": None, "output_shape": None, "auto_pad": ("NOTSET", "SAME_UPPER", "SAME_LOWER")}

    def _pairs(self, x, w):
        n = w.ndim - 2
        strides, dilations = self.get("strides", [1] * n), self.get("dilations", [1] * n)
        out_pad = list(self.get("output_padding", [0] * n))
        full = [s * (size - 1) + (k - 1) * d + 1 for size, k, s, d in zip(x.shape[2:], w.shape[2:], strides, dilations)]
        target = self.get("output_shape")
        auto = self.get("auto_pad", "NOTSET")
        if target is None and auto != "NOTSET":          # SAME_*: output = S * stride
            target = [size * s for size, s in zip(x.shape[2:], strides)]
        if target is None:
            pads = list(self.get("pads", [0] * 2 * n))
            return list(zip(pads[:n], pads[n:])), full, out_pad
        target = list(target)
        pairs = []
        for f, op, t in zip(full, out_pad, target):
            total = f + op - t
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pairs, full, out_pad

    def forward(self, inputs, training):
        x, w, b = (inputs + [None])[:3]
        n = w.ndim - 2
        strides, dilations = tuple(self.get("strides", [1] * n)), tuple(self.get("dilations", [1] * n))
        pairs, full, out_pad = self._pairs(x, w)
        self.window = None
        if _symmetric(pairs) and "output_shape" not in self.attrs and self.get("auto_pad", "NOTSET") == "NOTSET":
            y, self.cache = C.conv_transpose_forward(x, w, b, strides, tuple(lo for lo, _ in pairs), tuple(out_pad),
                                                     self.get("group", 1), dilations)
            return y
        y, self.cache = C.conv_transpose_forward(x, w, None, strides, (0,) * n, (0,) * n, self.get("group", 1),
                                                 dilations)
        ends = [f + op - hi for f, op, (_, hi) in zip(full, out_pad, pairs)]
        if any(e - lo <= 0 for e, (lo, _) in zip(ends, pairs)):
            raise OnnxError(f"{self.where}: pads {pairs} leave no output (full size {full})")
        # the window [lo, end) of the full output, zeros outside it
        ext = [(max(0, -lo), max(0, e - f)) for (lo, _), e, f in zip(pairs, ends, full)]
        y = np.pad(y, [(0, 0), (0, 0)] + ext)
        self.window = (tuple(slice(lo + a, e + a) for (lo, _), e, (a, _) in zip(pairs, ends, ext)), ext, full)
        y = np.ascontiguousarray(y[(slice(None), slice(None)) + self.window[0]])
        self.has_bias = b is not None
        return y if b is None else y + b.reshape(1, -1, *(1,) * n)

    def backward(self, dy):
        if self.window is None:
            return list(C.conv_transpose_backward(dy, self.cache))
        index, ext, full = self.window
        padded = np.zeros(dy.shape[:2] + tuple(f + a + b for f, (a, b) in zip(full, ext)), dy.dtype)
        padded[(slice(None), slice(None)) + index] = dy
        d_full = padded[(slice(None), slice(None)) + tuple(slice(a, a + f) for f, (a, _) in zip(full, ext))]
        dx, dw, _ = C.conv_transpose_backward(np.ascontiguousarray(d_full), self.cache)
        db = dy.sum(axis=(0, *range(2, dy.ndim))) if self.has_bias else None
        return [dx, dw, db]


# ---- pooling ------------------------------------------------------------------------------------
class MaxPool(Op):
    allowed = {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "ceil_mode": (0, 1),
               "auto_pad": POOL_AUTO_PAD, "storage_order": (0,)}

    def forward(self, inputs, training):
        x = inputs[0]
        n = x.ndim - 2
        kernel, strides = tuple(self.attrs["kernel_shape"]), tuple(self.get("strides", [1] * n))
        dilations = tuple(self.get("dilations", [1] * n))
        pads, pairs = _pool_padding(self, x, kernel, strides, dilations)
        self.explicit = None if pairs is None else _ExplicitPadding(pairs, np.finfo(x.dtype).min)
        if self.explicit is not None:              # padding counts as -inf: the lowest float does the same
            x = self.explicit.pad(x)
        y, self.cache = P.max_pool_forward(x, kernel, strides, pads, dilations, bool(self.get("ceil_mode", 0)),
                                           n_dims=n, where=self.where)
        return y

    def backward(self, dy):
        dx = P.max_pool_backward(dy, self.cache)
        return [dx if self.explicit is None else self.explicit.unpad(dx)]


class AveragePool(Op):
    """count_include_pad=0 with asymmetric pads: the mean of the zero-padded window divided by
    the share of it that is input (the same average pool of a padded ones array)."""
    allowed = {"kernel_shape": None, "strides": None, "pads": None, "ceil_mode": (0, 1),
               "count_include_pad": (0, 1), "auto_pad": POOL_AUTO_PAD, "dilations": None}

    def forward(self, inputs, training):
        x = inputs[0]
        n = x.ndim - 2
        if any(d != 1 for d in self.get("dilations", [1] * n)):
            raise OnnxError(f"{self.where}: dilations {self.get('dilations', None)} are not supported")
        kernel, strides = tuple(self.attrs["kernel_shape"]), tuple(self.get("strides", [1] * n))
        pads, pairs = _pool_padding(self, x, kernel, strides, (1,) * n)
        include = bool(self.get("count_include_pad", 0))
        self.explicit, self.share = None if pairs is None else _ExplicitPadding(pairs), None
        if self.explicit is not None:
            if not include:
                ones = self.explicit.pad(np.ones((1, 1) + x.shape[2:], x.dtype))
                self.share = P.avg_pool_forward(ones, kernel, strides, 0, False, True, n_dims=n, where=self.where)[0]
            x = self.explicit.pad(x)
            include = True
        y, self.cache = P.avg_pool_forward(x, kernel, strides, pads, bool(self.get("ceil_mode", 0)), include,
                                           n_dims=n, where=self.where)
        return y if self.share is None else y / self.share

    def backward(self, dy):
        dx = P.avg_pool_backward(dy if self.share is None else dy / self.share, self.cache)
        return [dx if self.explicit is None else self.explicit.unpad(dx)]


class _GlobalPool(Op):
    """A pool over every spatial position: the adaptive pool with output size 1 per axis."""
    pool_forward = pool_backward = None

    def forward(self, inputs, training):
        x = inputs[0]
        y, self.cache = type(self).pool_forward(x, (1,) * (x.ndim - 2), n_dims=x.ndim - 2, where=self.where)
        return y

    def backward(self, dy):
        return [type(self).pool_backward(dy, self.cache)]


class GlobalAveragePool(_GlobalPool):
    pool_forward, pool_backward = P.adaptive_avg_pool_forward, P.adaptive_avg_pool_backward


class GlobalMaxPool(_GlobalPool):
    pool_forward, pool_backward = P.adaptive_max_pool_forward, P.adaptive_max_pool_backward


class Resize(Op):
    """Nearest resizing (torch's nn.Upsample / F.interpolate(mode='nearest')): integer
    up-scales by convgrad's upsample_nearest; any other scale, or sizes, as a gather per
    spatial axis of source index floor(i / scale) (ONNX's asymmetric transform, floor
    rounding, computed in float32 as onnxruntime does). Other modes (linear, cubic) are refused."""
    allowed = {"mode": ("nearest",), "coordinate_transformation_mode": ("asymmetric",),
               "nearest_mode": ("floor",), "cubic_coeff_a": None, "exclude_outside": (0,),
               "extrapolation_value": None}

    def forward(self, inputs, training):
        x = inputs[0]
        scales = inputs[2] if len(inputs) > 2 and inputs[2] is not None and np.size(inputs[2]) else None
        sizes = inputs[3] if len(inputs) > 3 and inputs[3] is not None and np.size(inputs[3]) else None
        if scales is None and sizes is None:
            raise OnnxError(f"{self.where}: neither scales nor sizes is given")
        if scales is None:
            sizes = [int(s) for s in sizes]
            scales = np.asarray(sizes, np.float32) / np.asarray(x.shape, np.float32)
        else:
            scales = np.asarray(scales, np.float32)
            sizes = [int(np.floor(n * float(s))) for n, s in zip(x.shape, scales)]
        if (len(scales) != x.ndim or x.ndim < 3 or any(s != 1 for s in scales[:2])
                or list(sizes[:2]) != list(x.shape[:2])):
            raise OnnxError(f"{self.where}: only the spatial axes can be resized, got scales {list(scales)} for an "
                            f"input of shape {x.shape}")
        if any(s <= 0 for s in sizes):
            raise OnnxError(f"{self.where}: scales {list(scales)} leave an empty output for an input of shape "
                            f"{x.shape}")
        self.factor = None
        if all(s == int(s) and s >= 1 for s in scales) and list(sizes) == [int(n * s) for n, s in zip(x.shape, scales)]:
            self.factor = tuple(int(s) for s in scales[2:])
            return R.upsample_nearest(x, self.factor)
        self.index = []
        for axis in range(2, x.ndim):
            source = np.floor(np.arange(sizes[axis], dtype=np.float32) / scales[axis]).astype(np.int64)
            self.index.append(np.minimum(source, x.shape[axis] - 1))
        self.in_shape = x.shape
        y = x
        for axis, idx in enumerate(self.index, start=2):
            y = np.take(y, idx, axis=axis)
        return y

    def backward(self, dy):
        if self.factor is not None:
            return [R.upsample_nearest_backward(dy, self.factor), None, None, None]
        for axis in reversed(range(2, dy.ndim)):
            idx = self.index[axis - 2]
            moved = np.zeros((self.in_shape[axis],) + np.moveaxis(dy, axis, 0).shape[1:], dy.dtype)
            np.add.at(moved, idx, np.moveaxis(dy, axis, 0))
            dy = np.moveaxis(moved, 0, axis)
        return [np.ascontiguousarray(dy), None, None, None]


class Pad(Op):
    """Constant (any fill value), reflect, edge and wrap padding of the spatial axes (N and C
    unpadded)."""
    allowed = {"mode": ("constant", "reflect", "edge", "wrap")}
    _MODES = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}

    def forward(self, inputs, training):
        x, pads = inputs[0], [int(p) for p in inputs[1]]
        value = inputs[2] if len(inputs) > 2 else None
        if len(inputs) > 3 and inputs[3] is not None:
            raise OnnxError(f"{self.where}: the axes input is not supported")
        n = x.ndim
        lo, hi = pads[:n], pads[n:]
        if any(lo[:2]) or any(hi[:2]) or min(pads) < 0:
            raise OnnxError(f"{self.where}: only non-negative padding of the spatial axes is supported, got pads "
                            f"{pads}")
        self.cache = (x.shape, list(zip(lo[2:], hi[2:])), self.get("mode", "constant"))
        if self.cache[2] == "constant":
            fill = 0.0 if value is None or np.size(value) == 0 else float(np.asarray(value).reshape(-1)[0])
            return PD.pad(x, self.cache[1], "constant", self.where, value=fill)
        return PD.pad(x, self.cache[1], self._MODES[self.cache[2]], self.where)

    def backward(self, dy):
        shape, pads, mode = self.cache
        if mode == "constant":
            index = (slice(None), slice(None)) + tuple(slice(a, a + s) for (a, _), s in zip(pads, shape[2:]))
            return [np.ascontiguousarray(dy[index]), None, None, None]
        return [PD.pad_backward(dy, pads, self._MODES[mode], shape), None, None, None]


OPS = {cls.__name__: cls for cls in (Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
                                      Resize, Pad)}
