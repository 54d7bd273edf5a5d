"""The walk-through as data: steps with named matrices, checks, and animation frames.

conv.py / pool.py / resample.py build a `Walkthrough`; render_text.py and render_html.py
only draw it, so tests read the numbers from here, not from text.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


class ExplainError(ValueError):
    """Bad options for a walk-through (the CLI turns it into exit status 2)."""


@dataclass
class Panel:
    """One 2-D map in an animation frame. `window` marks the cells under the sliding window,
    `mark` the cell being written, `hidden` the cells not computed yet (all bool, values' shape)."""
    label: str
    values: np.ndarray
    window: np.ndarray | None = None
    mark: np.ndarray | None = None
    hidden: np.ndarray | None = None


@dataclass
class Animation:
    """A sequence of frames, each a row of panels; `caption` says what moves; `sums[k]` is frame
    k's sum written out (the same line the text mode prints where it prints one)."""
    caption: str
    frames: list            # list[list[Panel]]
    sums: list | None = None


@dataclass
class Check:
    """Several routes to the same array; passed when they agree to `tol` (relative)."""
    name: str
    routes: list            # route names, the first is the walk-through's own
    max_diff: float
    passed: bool


@dataclass
class Step:
    """One section: a title, explanation lines, named 2-D matrices (in display order),
    equation lines (each printed number computed), optional checks and animations."""
    key: str
    title: str
    text: list
    matrices: list = field(default_factory=list)      # list[(name, 2-D array)]
    equations: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    animations: list = field(default_factory=list)


@dataclass
class Walkthrough:
    """title, intro lines, steps, and `results`: the arrays computed (full shapes, by name)."""
    title: str
    intro: list
    steps: list
    results: dict

    @property
    def checks(self) -> list:
        """Every step's checks, in order."""
        return [c for s in self.steps for c in s.checks]

    @property
    def passed(self) -> bool:
        """Every check agreed (all routes gave the same numbers)."""
        return all(c.passed for c in self.checks)

    def step(self, key: str) -> Step:
        """The step with this key (KeyError if none)."""
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)


# ---------------------------------------------------------------------------------------
# Options and formatting shared by the walk-throughs
# ---------------------------------------------------------------------------------------
MAX_SIZE, MAX_LINES = 16, 40


def pair(v, name, minimum):
    """int or 2-sequence -> (int, int), each >= minimum."""
    t = (v, v) if np.isscalar(v) else tuple(v)
    if len(t) != 2 or any(int(a) != a or a < minimum for a in t):
        raise ExplainError(f"{name} must be an integer >= {minimum} or two of them, got {v!r}")
    return int(t[0]), int(t[1])


def ax(t) -> str:
    """A per-axis pair printed as one number when both axes agree."""
    return str(t[0]) if t[0] == t[1] else f"({t[0]}, {t[1]})"


def cap(lines, n=MAX_LINES):
    """At most n equation lines, then a note of how many were left out."""
    return lines if len(lines) <= n else lines[:n] + [f"... ({len(lines) - n} more lines)"]


def pad_or_crop(m, pads):
    """m (..., A, B) padded with zeros by pads ((lo, hi), (lo, hi)); negative amounts crop."""
    m = np.pad(m, [(0, 0)] * (m.ndim - 2) + [(max(lo, 0), max(hi, 0)) for lo, hi in pads])
    sl = [slice(max(-lo, 0), m.shape[m.ndim - 2 + k] - max(-hi, 0)) for k, (lo, hi) in enumerate(pads)]
    return m[(..., *sl)]


def as_map(a, ndim_ok, name):
    """A small finite float64 map with one of the allowed ranks, or ExplainError."""
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ExplainError(f"{name} is not a numeric array: {e}") from None
    if a.ndim not in ndim_ok:
        raise ExplainError(f"{name} must have {' or '.join(map(str, ndim_ok))} dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ExplainError(f"{name} contains NaN or infinity")
    if any(s > MAX_SIZE for s in a.shape[-2:]):
        raise ExplainError(f"{name} is {a.shape[-2]}x{a.shape[-1]}; the walk-through is for small maps "
                           f"(at most {MAX_SIZE}x{MAX_SIZE})")
    return a


def fmt(v) -> str:
    """A number as printed everywhere: integers without a decimal point, else 4 digits."""
    v = float(v)
    if abs(v - round(v)) < 1e-9:
        return str(int(round(v)))
    return f"{v:.4g}"


def paren(v) -> str:
    """fmt, with negative numbers in parentheses (for products in equations)."""
    s = fmt(v)
    return f"({s})" if s.startswith("-") else s


def idx(*ix) -> str:
    return "[" + ",".join(str(int(i)) for i in ix) + "]"


def check(name: str, routes: dict, tol: float = 1e-9) -> Check:
    """Compare every route's array with the first one."""
    names = list(routes)
    first = np.asarray(routes[names[0]], dtype=np.float64)
    scale = max(1.0, float(np.abs(first).max(initial=0.0)))
    diff = 0.0
    for n in names[1:]:
        other = np.asarray(routes[n], dtype=np.float64)
        if other.shape != first.shape:
            return Check(name, names, float("inf"), False)
        diff = max(diff, float(np.abs(other - first).max(initial=0.0)))
    return Check(name, names, diff, diff <= tol * scale)


def window_mask(shape, top_left, window, dilation) -> np.ndarray:
    """Cells (top + a*d0, left + b*d1) for a < window[0], b < window[1] that lie inside `shape`."""
    mask = np.zeros(shape, dtype=bool)
    for a, b in itertools.product(range(window[0]), range(window[1])):
        r, c = top_left[0] + a * dilation[0], top_left[1] + b * dilation[1]
        if 0 <= r < shape[0] and 0 <= c < shape[1]:
            mask[r, c] = True
    return mask


def window_sum(grids, kernels, top_left, window, dilation, out_label, value) -> str:
    """'out = g*k + ...' over the cells under the window, grid i paired with kernel i, row-major."""
    terms = []
    for (_, g), (_, k) in zip(grids, kernels):
        for a, b in itertools.product(range(window[0]), range(window[1])):
            r, c = top_left[0] + a * dilation[0], top_left[1] + b * dilation[1]
            if 0 <= r < g.shape[0] and 0 <= c < g.shape[1]:
                terms.append(f"{paren(g[r, c])}*{paren(k[a, b])}")
    return f"{out_label} = {' + '.join(terms)} = {fmt(value)}"


def sliding_animation(caption, grids, kernels, out, window, stride, dilation, sums=None) -> Animation:
    """A window sliding over every grid at once (grids: [(label, 2-D)]), the kernels shown
    beside them, the output (label, 2-D) filled one cell per frame, row-major. `sums`: one line
    per output cell (row-major); by default each is written out from the grids and kernels."""
    out_label, out_values = out
    cells = list(itertools.product(range(out_values.shape[0]), range(out_values.shape[1])))
    if sums is None and kernels:
        sums = [window_sum(grids, kernels, (i * stride[0], j * stride[1]), window, dilation,
                           f"{out_label}{idx(i, j)}", out_values[i, j]) for i, j in cells]
    if sums is not None:
        sums = ["(nothing computed yet: press step or play)"] + list(sums)
    # frame 0: nothing computed yet
    frames = [[Panel(lab, g) for lab, g in grids] + [Panel(lab, k) for lab, k in kernels]
              + [Panel(out_label, out_values, hidden=np.ones(out_values.shape, dtype=bool))]]
    for i, j in itertools.product(range(out_values.shape[0]), range(out_values.shape[1])):
        panels = [Panel(lab, g, window=window_mask(g.shape, (i * stride[0], j * stride[1]), window, dilation))
                  for lab, g in grids]
        panels += [Panel(lab, k) for lab, k in kernels]
        order = np.arange(out_values.size).reshape(out_values.shape)
        mark = order == i * out_values.shape[1] + j
        panels.append(Panel(out_label, out_values, mark=mark, hidden=order > i * out_values.shape[1] + j))
        frames.append(panels)
    return Animation(caption, frames, sums)
