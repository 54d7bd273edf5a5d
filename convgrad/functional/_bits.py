"""Selecting array elements by a mask without multiplying: exact for every value."""
from __future__ import annotations

import numpy as np


def zero_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A new array: values, with +0.0 where mask (a bool array of values' shape). float32 or
    float64. Done as a bitwise AND with a word that is all ones where mask is False (1 - 1 = 0,
    0 - 1 wraps to all ones), so an inf or NaN that is masked out gives 0 — multiplying by
    the mask would give NaN."""
    values = np.ascontiguousarray(values)
    words = np.subtract(np.ascontiguousarray(mask).view(np.uint8), 1, dtype=np.dtype(f"u{values.dtype.itemsize}"),
                        casting="unsafe")
    np.bitwise_and(values.view(words.dtype), words, out=words)
    return words.view(values.dtype)
