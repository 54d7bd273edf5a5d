"""Max pooling over 2x2 windows with stride 2 (the pooling almost every CNN uses), optionally
with the ReLU in front of it fused in.

The four taps of every window are strided views of x (N, C, H, W), cropped to (2*Ho, 2*Wo):

    t[a][b] = x[:, :, a:2*Ho:2, b:2*Wo:2]                          each (N, C, Ho, Wo)
    y = max(max(t00, t01), max(t10, t11))

torch scans a window row by row and moves to a later element only when it is strictly
larger, so the chosen element is the first maximum in row-major order. Three comparisons
record it exactly: `right0` (t01 > t00), `right1` (t11 > t10), `lower` (row 1's max > row 0's).

ReLU before the pool: relu and max commute (relu is monotone), so pool(relu(x)) is computed
as relu(pool(x)) on a quarter of the elements, and the gradient is the same as torch's: when
the window's max is positive it reaches the same element, otherwise it is zero both ways.

The backward selects bits instead of multiplying by 0/1 masks: each comparison becomes an
all-ones/all-zeros unsigned word, and dx = dy AND mask. That is exact for every gradient
value (inf * 0 would be NaN) and faster than a multiply by a boolean.

A window that holds a NaN makes the comparisons meaningless (torch lets the NaN win); such
an input is left to the general pooling code (pooling.py), which the caller falls back to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._bits import all_ones


def applies(geo) -> bool:
    """Whether a pooling geometry (PoolGeometry) is the plain 2x2, stride-2 case."""
    return (len(geo.kernel) == 2 and geo.kernel == (2, 2) and geo.stride == (2, 2) and geo.padding == (0, 0)
            and geo.dilation == (1, 1) and geo.out == (geo.in_shape[2] // 2, geo.in_shape[3] // 2))


@dataclass(eq=False)
class Pool2x2Cache:
    in_shape: tuple
    dtype: np.dtype
    right0: np.ndarray        # (N, C, Ho, Wo) bool: t01 beat t00
    right1: np.ndarray        # t11 beat t10
    lower: np.ndarray         # row 1's max beat row 0's
    positive: np.ndarray | None   # fused ReLU: y > 0 (where the gradient passes); None without


def _taps(x: np.ndarray, ho: int, wo: int):
    return [[x[:, :, a:2 * ho:2, b:2 * wo:2] for b in (0, 1)] for a in (0, 1)]


def _work(ws: dict | None, key: str, shape, dtype) -> np.ndarray:
    arr = None if ws is None else ws.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.empty(shape, dtype)
        if ws is not None:
            ws[key] = arr
    return arr


def forward(x: np.ndarray, relu: bool = False, ws: dict | None = None):
    """x (N, C, H, W) -> (y (N, C, H//2, W//2), cache), or None when x holds a NaN (the caller
    then uses the general code). relu=True returns relu(max_pool(x)) == max_pool(relu(x)).
    ws: work arrays reused by the next call, which invalidates this call's cache."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    shape = (n, c, ho, wo)
    (t00, t01), (t10, t11) = _taps(x, ho, wo)
    y = np.empty(shape, x.dtype)
    row1 = _work(ws, "row1", shape, x.dtype)
    right0, right1, lower = (_work(ws, k, shape, np.bool_) for k in ("right0", "right1", "lower"))
    np.greater(t01, t00, out=right0)
    np.maximum(t00, t01, out=y)
    np.greater(t11, t10, out=right1)
    np.maximum(t10, t11, out=row1)
    np.greater(row1, y, out=lower)
    np.maximum(y, row1, out=y)
    if y.size and np.isnan(y.sum()) and np.isnan(y).any():     # NaN propagates through maximum
        return None
    positive = None
    if relu:
        positive = _work(ws, "positive", shape, np.bool_)
        np.greater(y, 0, out=positive)
        np.maximum(y, 0, out=y)
    return y, Pool2x2Cache(x.shape, x.dtype, right0, right1, lower, positive)


def backward(dy: np.ndarray, cache: Pool2x2Cache, ws: dict | None = None) -> np.ndarray:
    """dy (N, C, Ho, Wo) -> dx (N, C, H, W): each window's gradient at its chosen element
    (and, with the fused ReLU, only where the output is positive); zeros elsewhere."""
    n, c, h, w = cache.in_shape
    ho, wo = h // 2, w // 2
    shape = (n, c, ho, wo)
    utype = np.dtype(f"u{cache.dtype.itemsize}")
    g = np.ascontiguousarray(dy, dtype=cache.dtype).view(utype)
    words = [_work(ws, f"words{i}", shape, utype) for i in range(3)]
    rows = [_work(ws, f"rows{i}", shape, utype) for i in range(2)]
    if cache.positive is not None:
        g = np.bitwise_and(g, all_ones(cache.positive, utype.itemsize, words[0]), out=rows[0])
    lower = np.bitwise_and(g, all_ones(cache.lower, utype.itemsize, words[1]), out=rows[1])
    upper = np.bitwise_xor(g, lower, out=rows[0])               # g where row 0 won, else 0
    dx = np.empty(cache.in_shape, cache.dtype)
    if h % 2:
        dx[:, :, -1] = 0
    if w % 2:
        dx[..., -1] = 0
    (d00, d01), (d10, d11) = _taps(dx.view(utype), ho, wo)
    for row, right, left_tap, right_tap in ((upper, cache.right0, d00, d01), (lower, cache.right1, d10, d11)):
        np.bitwise_and(row, all_ones(right, utype.itemsize, words[2]), out=right_tap)
        np.bitwise_xor(row, right_tap, out=left_tap)
    return dx


def indices(cache: Pool2x2Cache) -> np.ndarray:
    """torch's return_indices: flat position of each chosen element in its (H, W) plane, int64."""
    _, _, h, w = cache.in_shape
    ho, wo = h // 2, w // 2
    row = 2 * np.arange(ho)[:, None] + cache.lower
    col = 2 * np.arange(wo) + np.where(cache.lower, cache.right1, cache.right0)
    return (row * w + col).astype(np.int64)
