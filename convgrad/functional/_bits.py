"""Selecting array elements by a mask without multiplying: exact for every value."""
from __future__ import annotations

import numpy as np


def all_ones(flag: np.ndarray, itemsize: int, out: np.ndarray | None = None, invert: bool = False) -> np.ndarray:
    """bool -> unsigned words of `itemsize` bytes: True -> every bit set, False -> 0
    (invert=True: the other way round)."""
    dtype = np.dtype(f"u{itemsize}")
    if invert:                                   # 1 - 1 = 0, 0 - 1 wraps to all ones
        return np.subtract(flag.view(np.uint8), 1, out=out, dtype=dtype, casting="unsafe")
    return np.negative(flag.view(np.uint8), out=out, dtype=dtype, casting="unsafe")


def keep_where(values: np.ndarray, mask: np.ndarray, invert: bool = False) -> np.ndarray:
    """A new array: values where mask (invert=True: where not mask), +0.0 elsewhere.
    float32/float64 values, a bool mask of the same shape. A bitwise AND with an all-ones
    word: an inf or NaN that is masked out gives 0, where multiplying by the mask would
    give NaN."""
    values = np.ascontiguousarray(values)
    words = all_ones(np.ascontiguousarray(mask), values.dtype.itemsize, invert=invert)
    np.bitwise_and(values.view(words.dtype), words, out=words)
    return words.view(values.dtype)
