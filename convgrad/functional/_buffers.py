"""Work arrays kept in a layer's workspace dict between calls (one rule for every engine)."""
from __future__ import annotations

import math

import numpy as np

KEEP_BYTES = 16 * 1024 * 1024    # larger work arrays are allocated per call and freed with it


def buffer(ws: dict | None, key: str, shape, dtype) -> np.ndarray:
    """An uninitialised work array, kept in ws under key and reused while shape and dtype
    match (memory the process has not touched yet is slow to fault in); fresh when ws is None
    or when it is larger than KEEP_BYTES (ImageNet-size maps: a layer's workspace would hold it
    from step to step, ~0.9 GiB for ResNet-18's max-pool at batch 64; it is freed with its call
    instead, and the memory serves the next allocation). A caller that relies on a buffer's
    earlier contents checks that it got the kept one (`arr is ws.get(key)`)."""
    shape = tuple(shape)
    if ws is not None and math.prod(shape) * np.dtype(dtype).itemsize > KEEP_BYTES:
        ws.pop(key, None)
        ws = None
    arr = None if ws is None else ws.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype=dtype)
        if ws is not None:
            ws[key] = arr
    return arr
