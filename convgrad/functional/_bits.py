"""Selecting array elements by a mask without multiplying: exact for every value."""
from __future__ import annotations

import numpy as np


def all_ones(flag: np.ndarray, itemsize: int, out: np.ndarray | None = None) -> np.ndarray:
    """bool -> unsigned words of `itemsize` bytes: True -> every bit set, False -> 0."""
    return np.negative(flag.view(np.uint8), out=out, dtype=np.dtype(f"u{itemsize}"), casting="unsafe")


def keep_where(values: np.ndarray, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """values where mask, +0.0 elsewhere (float32/float64, mask broadcastable to values' shape
    and contiguous). A bitwise AND with an all-ones word: an inf or NaN that is masked out
    gives 0, where multiplying by the mask would give NaN."""
    values = np.ascontiguousarray(values)
    utype = np.dtype(f"u{values.dtype.itemsize}")
    if out is None:
        out = np.empty(values.shape, values.dtype)
    np.bitwise_and(values.view(utype), all_ones(mask, values.dtype.itemsize), out=out.view(utype))
    return out
