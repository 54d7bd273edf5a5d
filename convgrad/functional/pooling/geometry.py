"""Pooling geometry: torch's arguments normalised and validated once, output sizes
(floor or ceil mode), input and gradient checks. Layout (N, C, *spatial), 1-, 2- and 3-D."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._checks import as_tuple, check_bool, check_float_array


LAYOUTS = {1: "N, C, L", 2: "N, C, H, W", 3: "N, C, D, H, W"}


@dataclass(frozen=True)
class PoolGeometry:
    """Normalised pooling arguments for one input shape (tuples per spatial axis)."""
    in_shape: tuple     # (N, C, *spatial)
    kernel: tuple
    stride: tuple
    padding: tuple      # the same on both sides, as in torch
    dilation: tuple
    out: tuple          # output spatial size
    where: str

    @property
    def out_shape(self) -> tuple:
        return (*self.in_shape[:2], *self.out)


def pool_args(kernel_size, stride, padding, dilation, n: int, where: str):
    """Normalise (kernel, stride, padding, dilation) to n-tuples; stride None (or ()) = kernel.
    torch's rule: padding at most half the kernel size."""
    kernel = as_tuple(kernel_size, n, "kernel_size", where)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else as_tuple(stride, n, "stride", where)
    padding = as_tuple(padding, n, "padding", where, minimum=0)
    dilation = as_tuple(dilation, n, "dilation", where)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{where}: padding should be at most half of kernel_size, got padding={padding}, "
                         f"kernel_size={kernel}")
    return kernel, stride, padding, dilation


def pool_out_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: floor (or ceil) of (size + 2p - d(k-1) - 1)/s, plus 1;
    in ceil_mode the last window must start inside the input or its left padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def spatial_dims(x, n_dims, where_prefix):
    if n_dims is None:
        n_dims = x.ndim - 2 if isinstance(x, np.ndarray) and x.ndim in (3, 4, 5) else 2
    return n_dims, f"{where_prefix}{n_dims}d"


def check_pool_input(x, n: int, where: str) -> np.ndarray:
    """float32/float64 array of rank n + 2 with C >= 1 and every spatial size >= 1 (N may be 0)."""
    check_float_array(x, where)
    if x.ndim != n + 2:
        raise ValueError(f"{where}: expected input of rank {n + 2} ({LAYOUTS[n]}), "
                         f"got shape {x.shape} (rank {x.ndim})")
    if x.shape[1] < 1 or any(s < 1 for s in x.shape[2:]):
        raise ValueError(f"{where}: expected input with non-zero channel and spatial sizes "
                         f"({LAYOUTS[n]}), got shape {x.shape}")
    return x


def pool_geometry(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, n: int = 2,
                  where: str = "pool") -> PoolGeometry:
    """Validate input and arguments; compute the output size. Raises ValueError/TypeError."""
    check_pool_input(x, n, where)
    kernel, stride, padding, dilation = pool_args(kernel_size, stride, padding, dilation, n, where)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    out = tuple(pool_out_size(size, k, s, p, d, ceil_mode)
                for size, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"{where}: output size {out} is too small: the kernel {kernel} (dilation {dilation}) "
                         f"does not fit the input {x.shape} padded by {padding}")
    return PoolGeometry(tuple(x.shape), kernel, stride, padding, dilation, out, where)



