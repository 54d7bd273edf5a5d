"""Plain-text rendering of a Walkthrough: matrices side by side, equations, check results."""
from __future__ import annotations

import textwrap

import numpy as np

from .steps import Walkthrough, fmt

WIDTH = 100


def matrix_block(name: str, m: np.ndarray) -> list:
    """A labelled, right-aligned matrix as lines of equal width."""
    cells = [[fmt(v) for v in row] for row in np.atleast_2d(m)]
    w = max(len(c) for row in cells for c in row)
    rows = [" ".join(c.rjust(w) for c in row) for row in cells]
    width = max(len(name), *(len(r) for r in rows))
    return [name.ljust(width)] + [r.ljust(width) for r in rows]


def side_by_side(blocks: list, gap: int = 4, width: int = WIDTH) -> list:
    """Lay blocks out left to right, wrapping to a new band when the line would exceed `width`."""
    lines, band, used = [], [], 0
    for b in blocks + [None]:
        if b is None or (band and used + gap + len(b[0]) > width):
            height = max(len(x) for x in band)
            for r in range(height):
                lines.append((" " * gap).join(x[r] if r < len(x) else " " * len(x[0]) for x in band).rstrip())
            lines.append("")
            band, used = [], 0
        if b is not None:
            used += (gap if band else 0) + len(b[0])
            band.append(b)
    return lines


def wrap(lines, width: int = WIDTH) -> list:
    """Wrap prose lines; lines starting with a space (formulas) are kept as they are."""
    return [w for line in lines for w in ([line] if line.startswith(" ") else textwrap.wrap(line, width) or [""])]


def render(wt: Walkthrough) -> str:
    """The whole walk-through as text (what `convgrad explain ...` prints)."""
    out = [wt.title, "=" * len(wt.title), *wrap(wt.intro), ""]
    for number, step in enumerate(wt.steps, start=1):
        head = f"{number}. {step.title}"
        out += [head, "-" * len(head), *wrap(step.text), ""]
        if step.matrices:
            out += side_by_side([matrix_block(n, m) for n, m in step.matrices])
        if step.equations:
            out += step.equations + [""]
        for c in step.checks:
            routes = " == ".join(c.routes)
            out.append(f"{c.name}: {routes}")
            out.append(f"    max |difference| = {c.max_diff:.3g}  ->  {'OK' if c.passed else 'FAILED'}")
        if step.checks:
            out.append("")
    out.append(f"Check result: {'OK' if wt.passed else 'FAILED'} "
               f"({sum(c.passed for c in wt.checks)} of {len(wt.checks)} checks agree)")
    return "\n".join(out) + "\n"
