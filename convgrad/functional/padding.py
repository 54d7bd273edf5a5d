"""Non-zero padding modes ('reflect', 'replicate', 'circular') and their adjoints.

Each mode maps every padded position to one source position per axis; the backward
(the adjoint) sums the gradient of every padded position into its source.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_tuple

_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
PADDING_MODES = ("zeros", *_NUMPY_MODE)


def resolve_padding(padding, kernel, dilation, stride, n_sp: int, where: str):
    """padding (int, tuple, 'same', 'valid') -> ((lo, hi), ...) per spatial axis."""
    from .convolution import normalize_padding, same_padding
    if padding == "valid":
        return ((0, 0),) * n_sp
    if padding == "same":
        if any(s != 1 for s in as_tuple(stride, n_sp, "stride", where)):
            raise ValueError(f"{where}: padding='same' needs stride 1 (as in torch), got stride {stride}")
        return same_padding(kernel, as_tuple(dilation, n_sp, "dilation", where))
    if isinstance(padding, str):
        raise ValueError(f"{where}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return normalize_padding(padding, n_sp, where)


def _source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each of the lo+size+hi padded positions, the input position it copies."""
    return np.pad(np.arange(size), (lo, hi), mode=_NUMPY_MODE[mode])


def _check(x_shape, pads, mode, where):
    if mode not in _NUMPY_MODE:
        raise ValueError(f"{where}: padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    for axis, ((lo, hi), size) in enumerate(zip(pads, x_shape[2:])):
        limit = size - 1 if mode == "reflect" else size
        if mode != "replicate" and max(lo, hi) > limit:
            raise ValueError(f"{where}: {mode} padding {(lo, hi)} must be at most {limit} for an input of "
                             f"size {size} along spatial axis {axis}")


def pad(x: np.ndarray, pads, mode: str, where: str = "pad") -> np.ndarray:
    """x (N, C, *S) -> (N, C, *(S + lo + hi)) padded with the given mode."""
    _check(x.shape, pads, mode, where)
    return np.pad(x, ((0, 0), (0, 0), *pads), mode=_NUMPY_MODE[mode])


def pad_backward(grad: np.ndarray, pads, mode: str, x_shape) -> np.ndarray:
    """Adjoint of pad: (N, C, *padded) -> (N, C, *S), each padded position summed into its source."""
    for axis, ((lo, hi), size) in enumerate(zip(pads, x_shape[2:]), start=2):
        index = _source_index(size, lo, hi, mode)
        scatter = np.zeros((index.size, size), dtype=grad.dtype)
        scatter[np.arange(index.size), index] = 1
        grad = np.moveaxis(np.tensordot(grad, scatter, axes=([axis], [0])), -1, axis)
    return np.ascontiguousarray(grad)
