"""Work arrays kept in a layer's workspace dict between calls (one rule for every engine)."""
from __future__ import annotations

import numpy as np


def buffer(ws: dict | None, key: str, shape, dtype) -> np.ndarray:
    """An uninitialised work array, kept in ws under key and reused while shape and dtype
    match (memory the process has not touched yet is slow to fault in); fresh when ws is None."""
    shape = tuple(shape)
    arr = None if ws is None else ws.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype=dtype)
        if ws is not None:
            ws[key] = arr
    return arr
