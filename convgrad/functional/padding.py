"""Padding: the arguments ('same', 'valid', ints, (lo, hi) pairs) resolved in one place, the
padding modes ('zeros', 'constant', 'reflect', 'replicate', 'circular') and their adjoints,
and the padding of a convolution's input gradient (the VJP padding d(k-1) - p).

This module sits at the bottom of functional/: it imports nothing from the convolution
engine, which imports it.

Shapes: x (N, C, *S) -> (N, C, *(S + lo + hi)) per spatial axis; pads are ((lo, hi), ...)
per spatial axis (the last len(pads) axes of x).
"""
from __future__ import annotations

import numpy as np

from .._checks import all_finite, as_tuple, check_choice, check_float_array, check_real, check_shape, is_int

_NUMPY_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")      # a convolution's padding_mode
PAD_MODES = ("zeros", "constant", "reflect", "replicate", "circular")


def normalize_padding(padding, n_sp: int, where: str, allow_negative: bool = False):
    """int | tuple of ints | tuple of (lo, hi) pairs -> ((lo, hi), ...) per spatial axis."""
    minimum = -(1 << 62) if allow_negative else 0
    if isinstance(padding, (tuple, list)) and len(padding) == n_sp and all(
            isinstance(p, (tuple, list)) for p in padding):
        pairs = []
        for p in padding:
            if len(p) != 2:
                raise TypeError(f"{where}: padding pairs must be (lo, hi), got {padding!r}")
            pairs.append(as_tuple(tuple(p), 2, "padding", where, minimum=minimum))
        return tuple(pairs)
    sym = as_tuple(padding, n_sp, "padding", where, minimum=minimum)
    return tuple((p, p) for p in sym)


def same_padding(kernel, dilation):
    """torch's padding='same' for stride 1: total d*(k-1), the odd one extra on the high side."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def resolve_padding(padding, kernel, stride, dilation, where: str, allow_negative: bool = False):
    """A convolution's padding argument (int, tuple, (lo, hi) pairs, 'same', 'valid') ->
    ((lo, hi), ...) per spatial axis; stride and dilation are already per-axis tuples."""
    n_sp = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n_sp
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{where}: padding='same' needs stride 1 (as in torch), got stride {stride}")
            return same_padding(kernel, dilation)
        raise ValueError(f"{where}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return normalize_padding(padding, n_sp, where, allow_negative)


def vjp_padding(in_size, kernel, stride, dilation, pads, out_size):
    """The padding of conv_general that computes a convolution's input gradient from its
    output gradient (JAX's _conv_general_vjp_lhs_padding): dilate dy by the stride, then pad
    each side by d(k-1) - p, plus on the high side the trailing input rows no window reached.
    All arguments per spatial axis; -> ((lo, hi), ...)."""
    result = []
    for size, k, s, d, (lo, hi), o in zip(in_size, kernel, stride, dilation, pads, out_size):
        extent = d * (k - 1)
        skipped = size + lo + hi - (extent + (o - 1) * s + 1)
        result.append((extent - lo, extent - hi + skipped))
    return tuple(result)


def _source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each of the lo+size+hi padded positions, the input position it copies."""
    return np.pad(np.arange(size), (lo, hi), mode=_NUMPY_MODE[mode])


def from_torch_pads(flat) -> tuple:
    """torch's flat (lo_last, hi_last, lo_second_last, hi_second_last, ...), last axis first
    -> ((lo, hi), ...) leading to trailing."""
    return tuple((int(flat[i]), int(flat[i + 1])) for i in range(len(flat) - 2, -1, -2))


def as_pad_pairs(pads, ndim: int, where: str = "pad") -> tuple:
    """((lo, hi), ...) for the last len(pads) axes, leading to trailing, as given; or torch's
    flat (lo_last, hi_last, lo_second_last, hi_second_last, ...), last axis first."""
    expected = (f"{where}: expected pads as ((lo, hi), ...) pairs per axis or torch's flat (lo, hi, ...) "
                f"ints, last axis first, for at most {ndim} axes")
    if not isinstance(pads, (tuple, list)):
        raise TypeError(f"{expected}; got {pads!r}")
    if all(is_int(v) for v in pads):
        if len(pads) % 2 or len(pads) // 2 > ndim:
            raise ValueError(f"{expected}; got {len(pads)} ints")
        return from_torch_pads(pads)
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 and all(is_int(v) for v in p) for p in pads):
        raise TypeError(f"{expected}; got {pads!r}")
    if len(pads) > ndim:
        raise ValueError(f"{expected}; got {len(pads)} pairs for an input of rank {ndim}")
    return tuple((int(lo), int(hi)) for lo, hi in pads)


def _check(x_shape, pads, mode, where):
    check_choice(where, "padding mode", mode, PAD_MODES)
    spatial = x_shape[len(x_shape) - len(pads):]
    for axis, ((lo, hi), size) in enumerate(zip(pads, spatial)):
        if min(lo, hi) < 0:
            raise ValueError(f"{where}: padding must be non-negative, got {(lo, hi)} along spatial axis {axis}")
        if mode in ("reflect", "circular"):
            limit = size - 1 if mode == "reflect" else size
            if max(lo, hi) > limit:
                raise ValueError(f"{where}: {mode} padding {(lo, hi)} must be at most {limit} for an input of "
                                 f"size {size} along spatial axis {axis}")
        if mode == "replicate" and size == 0 and max(lo, hi) > 0:
            raise ValueError(f"{where}: replicate padding needs a non-empty input along spatial axis {axis}")


def pad(x: np.ndarray, pads, mode: str = "zeros", where: str = "pad", value: float = 0.0) -> np.ndarray:
    """x (..., *S) -> (..., *(S + lo + hi)): the last len(pads) axes padded with the mode
    ('zeros' and 'constant' fill `value`, 0 for 'zeros'). pads: ((lo, hi), ...) per axis,
    leading to trailing, or torch.nn.functional.pad's flat (lo, hi, ...), last axis first."""
    check_float_array(x, where, "input")
    value = check_real(where, "value", value, finite=False)
    pads = as_pad_pairs(pads, x.ndim, where)
    _check(x.shape, pads, mode, where)
    widths = ((0, 0),) * (x.ndim - len(pads)) + tuple(tuple(p) for p in pads)
    if _NUMPY_MODE[mode] == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value if mode == "constant" else 0)
    return np.pad(x, widths, mode=_NUMPY_MODE[mode])


def pad_backward(grad: np.ndarray, pads, mode: str, x_shape) -> np.ndarray:
    """Adjoint of pad: (..., *padded) -> x_shape, each padded position's gradient summed into
    the input position it copies (the constant fill receives nothing)."""
    check_float_array(grad, "pad_backward", "grad")
    pads = as_pad_pairs(pads, grad.ndim, "pad_backward")
    check_choice("pad_backward", "padding mode", mode, PAD_MODES)
    x_shape = check_shape("pad_backward", "x_shape", x_shape)
    padded = x_shape[:len(x_shape) - len(pads)] + tuple(
        s + lo + hi for s, (lo, hi) in zip(x_shape[len(x_shape) - len(pads):], pads))
    if len(x_shape) != grad.ndim or grad.shape != padded:
        raise ValueError(f"pad_backward: expected a gradient of shape {padded} (x_shape {x_shape} padded by "
                         f"{pads}), got {grad.shape}")
    lead = grad.ndim - len(pads)
    if _NUMPY_MODE[mode] == "constant":
        return np.ascontiguousarray(grad[(Ellipsis, *(slice(lo, lo + s) for (lo, _), s in
                                                       zip(pads, x_shape[lead:])))])
    exact = not all_finite(grad)          # a NaN/inf times the scatter's zeros would spread
    for axis, ((lo, hi), size) in enumerate(zip(pads, x_shape[lead:]), start=lead):
        index = _source_index(size, lo, hi, mode)
        if exact:
            g = np.moveaxis(grad, axis, -1)
            summed = np.zeros(g.shape[:-1] + (size,), dtype=grad.dtype)
            for i, src in enumerate(index):
                summed[..., src] += g[..., i]
            grad = np.moveaxis(summed, -1, axis)
            continue
        scatter = np.zeros((index.size, size), dtype=grad.dtype)
        scatter[np.arange(index.size), index] = 1
        grad = np.moveaxis(np.tensordot(grad, scatter, axes=([axis], [0])), -1, axis)
    return np.ascontiguousarray(grad)
