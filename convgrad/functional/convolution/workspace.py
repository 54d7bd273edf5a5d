"""Work memory of the convolution routes, and the forward cache.

Two kinds of work memory:
- a layer's `workspace` dict (kept by nn.ConvNd between calls; arrays from
  functional._buffers.buffer): reused while the shapes match; the depthwise route's row
  stack backs the cache until its backward consumes it. A forward that finds its workspace
  still backing a live, unconsumed cache (a layer called twice before its backward) takes
  fresh buffers. The channel-major route keeps a whole-batch patch matrix there for the
  backward when it fits the workspace budget and all layers' kept ones stay within the kept
  budget (set_kept_budget, default 0; kept_buffer counts each array until it is freed).
- the scratch pool: per-thread buffers shared by every layer, for patch matrices that are
  built and consumed within one call. Their size is bounded by the workspace budget: a route
  whose patch matrix for the whole batch would exceed it works in chunks of the batch.
"""
from __future__ import annotations

import contextlib
import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from .geometry import ConvGeometry

WORKSPACE_BUDGET = 64 * 1024 * 1024      # bytes of scratch one chunk of a convolution may use
_pool = threading.local()
_budget = {"bytes": WORKSPACE_BUDGET}
_kept = {"bytes": 0, "budget": 0}
_kept_lock = threading.Lock()


def workspace_budget() -> int:
    """Bytes of scratch memory a convolution may use per chunk of its batch."""
    return _budget["bytes"]


def set_workspace_budget(nbytes: int) -> None:
    """Set the scratch budget (bytes, >= 1): smaller means smaller batch chunks and less
    memory, larger means fewer, larger GEMMs. Process-wide."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 1:
        raise ValueError(f"set_workspace_budget: expected a positive number of bytes, got {nbytes!r}")
    _budget["bytes"] = int(nbytes)


@contextlib.contextmanager
def budget(nbytes: int):
    """Temporarily set the workspace budget (tests force chunking with a tiny one)."""
    old = workspace_budget()
    set_workspace_budget(nbytes)
    try:
        yield
    finally:
        _budget["bytes"] = old


def kept_budget() -> int:
    """Bytes all layers' kept patch matrices may hold together (default 0: none is kept)."""
    return _kept["budget"]


def set_kept_budget(nbytes: int) -> None:
    """Let the layers keep whole-batch patch matrices (each within the workspace budget) for
    their backward, up to nbytes in all, process-wide, instead of rebuilding them from x: a
    training step on small images is ~10% faster, for that much more memory. 0 (the default)
    keeps none: a cache holds only what backward cannot rebuild. `convgrad train` sets 256 MiB."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"set_kept_budget: expected a number of bytes >= 0, got {nbytes!r}")
    _kept["budget"] = int(nbytes)


def fits_workspace(nbytes: int) -> bool:
    """Whether an array of nbytes (a whole batch's patch matrix or transform) fits the
    workspace budget, so a route may build it at once instead of chunk by chunk."""
    return nbytes <= workspace_budget()


def chunk_size(n: int, bytes_per_sample: int) -> int:
    """Samples per chunk so one chunk's scratch stays within the budget (at least one)."""
    return max(1, min(n, workspace_budget() // max(1, bytes_per_sample)))


def scratch(key: str, shape, dtype) -> np.ndarray:
    """An uninitialised array from this thread's pool: one flat block per key, grown to the
    largest request and viewed at the requested shape (every layer shares it)."""
    size = math.prod(shape)
    blocks = getattr(_pool, "blocks", None)
    if blocks is None:
        blocks = _pool.blocks = {}
    dtype = np.dtype(dtype)
    block = blocks.get((key, dtype))
    if block is None or block.size < size:
        block = blocks[(key, dtype)] = np.empty(size, dtype=dtype)
    return block[:size].reshape(shape)


def kept_buffer(ws: dict | None, key: str, shape, dtype) -> np.ndarray | None:
    """An array in the layer's workspace that outlives the call (a patch matrix kept for the
    backward), reused while shape and dtype match; None (the caller then keeps nothing) without
    a workspace, when the array would not fit the workspace budget (the route then works in
    chunks), or when a new one would take the arrays kept by all layers of the process past
    the kept budget."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    if ws is None or not fits_workspace(math.prod(shape) * dtype.itemsize):
        return None
    arr = ws.get(key)
    if arr is not None and arr.shape == shape and arr.dtype == dtype:
        return arr
    nbytes = math.prod(shape) * dtype.itemsize
    with _kept_lock:
        if _kept["bytes"] + nbytes > _kept["budget"]:
            return None
        _kept["bytes"] += nbytes
    ws.pop(key, None)
    arr = ws[key] = np.empty(shape, dtype)
    weakref.finalize(arr, _release_kept, nbytes)       # counted until the array is freed
    return arr


def kept_bytes() -> int:
    """Bytes held by kept patch matrices in the whole process."""
    return _kept["bytes"]


def _release_kept(nbytes: int) -> None:
    with _kept_lock:
        _kept["bytes"] -= nbytes


def release_scratch() -> None:
    """Free this thread's scratch pool (it is rebuilt on the next convolution)."""
    _pool.blocks = {}


@dataclass(eq=False)
class ConvCache:
    """What conv_backward needs from conv_forward. `saved` is the route's patch matrix (or
    stack), or None when the route rebuilds it from `x` in backward; backward reuses a
    workspace-owned one as its own scratch and sets it to None, and a second backward of the
    same forward rebuilds it from `x`."""
    geo: ConvGeometry
    w: np.ndarray
    x: np.ndarray                 # the input as convolved (after non-zero padding modes)
    route: str                    # the name of the route (see routes.py)
    saved: object
    has_bias: bool
    padding_mode: str
    pads: object                  # padding-mode pads, or None
    x_shape: tuple                # the caller's input shape
    workspace: dict | None
    where: str = "conv"           # the layer or function, for messages

    def _legacy(self) -> tuple:
        return self.geo, self.w, self.saved, self.has_bias, self.padding_mode, self.pads, self.x_shape

    # Unpacks and indexes like the earlier 7-tuple (geo, w, cols, has_bias, padding_mode, pads, x_shape).
    def __getitem__(self, i):
        return self._legacy()[i]

    def __iter__(self):
        return iter(self._legacy())

    def __len__(self) -> int:
        return 7


def private_input(x: np.ndarray, caller_x: np.ndarray) -> np.ndarray:
    """The input as a forward cache keeps it: never the caller's buffer, so that writing into
    that buffer between forward and backward cannot change the gradients (torch refuses such a
    backward; the rule of every layer, see docs/architecture.md). x is returned as is when it is
    already an array of its own (a padding mode's padded copy), else copied (C order)."""
    if is_callers(x, caller_x):
        return np.array(x, order="C", copy=True)
    return x


def is_callers(x: np.ndarray, caller_x: np.ndarray) -> bool:
    """Whether x is (or shares memory with) the caller's array, so a cache needs its own copy."""
    return x is caller_x or np.may_share_memory(x, caller_x)


def claim(ws: dict | None, cache: ConvCache) -> None:
    """Record that ws's buffers now back `cache` (until its backward)."""
    if ws is not None:
        ws["owner"] = weakref.ref(cache)


def claimed(ws: dict) -> bool:
    """Whether the workspace's buffers back a live cache that backward has not consumed."""
    owner = ws.get("owner")
    cache = owner() if owner is not None else None
    return cache is not None and cache.saved is not None


def take_saved(cache: ConvCache, rebuild):
    """(patch matrix, whether backward may overwrite it): the saved one if it lives in the
    layer's workspace (consumed: a second backward rebuilds it), else rebuilt or shared.
    rebuild(x, w, geo) builds it afresh."""
    saved = cache.saved
    if saved is None:
        return rebuild(cache.x, cache.w, cache.geo), True
    if cache.workspace is not None:
        cache.saved = None
        return saved, True
    return saved, False


def release_saved(cache: ConvCache):
    """The saved patch matrix as scratch when backward does not need its contents (no weight
    gradient): the workspace-owned one (consumed), else None."""
    saved = cache.saved
    if cache.workspace is None:
        return None
    cache.saved = None
    return saved
