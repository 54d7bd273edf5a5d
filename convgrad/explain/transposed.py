"""Transposed convolution as the backward of the convolution it transposes, as data (steps.py).

Shapes (one channel): the convolution v = conv(u, w) with stride s and padding p maps u
(H, W) to v (h, w'); its transpose maps x (h, w') to y (H, W) and is exactly that
convolution's input gradient with dJ/dv = x:

    y = conv_transpose(x, w) = dJ/du of conv(u, w) at dJ/dv = x
      = sum over (i, j) of x[i,j] * w stamped at (i*s - p, j*s - p)          (scatter view)
      = conv(pad(dilate(x, s), f-1-p), rot180(w))                             (the lectures' route)

and its own backward is the forward it transposes: dJ/dx = conv(dJ/dy, w) with stride s.
H = (h - 1)*s - 2p + f.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as F
from .steps import (Animation, ExplainError, Panel, Step, Walkthrough, as_map, cap, check, fmt, pad_or_crop, pair,
                    paren)
from ..functional.resample import upsample_zeros


def explain_transposed(x=None, w=None, grad=None, stride=2, padding=0, seed=None) -> Walkthrough:
    """The transposed-convolution walk-through (one channel, one filter). Raises ExplainError."""
    s, p = pair(stride, "stride", 1), pair(padding, "padding", 0)
    rng = np.random.default_rng(0 if seed is None else seed)
    small = lambda shape: rng.integers(-3, 4, size=shape).astype(np.float64)  # noqa: E731
    w = small((3, 3)) if w is None else as_map(w, (2,), "kernel")
    x = small((2, 2)) if x is None else as_map(x, (2,), "input")
    f = w.shape
    out = tuple((n - 1) * st - 2 * pp + k for n, st, pp, k in zip(x.shape, s, p, f))
    if min(out) < 1:
        raise ExplainError(f"the output would be {out[0]}x{out[1]}: padding {p} crops more than the "
                           f"{x.shape[0]}x{x.shape[1]} input stamps")
    dy = small(out) if grad is None else as_map(grad, (2,), "dJ/dy (--grad)")
    if dy.shape != out:
        raise ExplainError(f"dJ/dy must have the output's shape {out[0]}x{out[1]}, got {dy.shape[0]}x{dy.shape[1]}")

    # scatter view: every x[i,j] stamps x[i,j] * w into the (uncropped) output, then crop p
    full = np.zeros(tuple((n - 1) * st + k for n, st, k in zip(x.shape, s, f)))
    terms = {}
    for i, j, a, b in itertools.product(range(x.shape[0]), range(x.shape[1]), range(f[0]), range(f[1])):
        r, c = i * s[0] + a, j * s[1] + b
        full[r, c] += x[i, j] * w[a, b]
        terms.setdefault((r, c), []).append(f"{paren(x[i, j])}*{paren(w[a, b])}")
    y = full[p[0]:p[0] + out[0], p[1]:p[1] + out[1]]
    eqs = [f"y[{r - p[0]},{c - p[1]}] = " + (" + ".join(terms.get((r, c), [])) or "0") + f" = {fmt(full[r, c])}"
           for r, c in itertools.product(range(p[0], p[0] + out[0]), range(p[1], p[1] + out[1]))]
    stamps = [(f"x[{i},{j}] * w at ({i * s[0] - p[0]},{j * s[1] - p[1]})",
               pad_or_crop(np.pad(x[i, j] * w, ((i * s[0], full.shape[0] - i * s[0] - f[0]),
                                                (j * s[1], full.shape[1] - j * s[1] - f[1]))),
                           ((-p[0], -p[0]), (-p[1], -p[1]))))
              for i, j in itertools.product(range(x.shape[0]), range(x.shape[1]))][:9]
    # the scatter as frames: entry (i, j) highlighted, its stamp added to the running (cropped) output
    frames, sums, acc = [], [], np.zeros(full.shape)
    for i, j in itertools.product(range(x.shape[0]), range(x.shape[1])):
        acc[i * s[0]:i * s[0] + f[0], j * s[1]:j * s[1] + f[1]] += x[i, j] * w
        where = np.zeros(full.shape, dtype=bool)
        where[i * s[0]:i * s[0] + f[0], j * s[1]:j * s[1] + f[1]] = True
        crop = (slice(p[0], p[0] + out[0]), slice(p[1], p[1] + out[1]))
        frames.append([Panel("x", x, mark=np.arange(x.size).reshape(x.shape) == i * x.shape[1] + j), Panel("w", w),
                       Panel("y (running sum)", acc[crop].copy(), window=where[crop])])
        sums.append(f"x[{i},{j}] = {fmt(x[i, j])}: adds {fmt(x[i, j])} * w to y rows {i * s[0] - p[0]}.."
                    f"{i * s[0] - p[0] + f[0] - 1}, columns {j * s[1] - p[1]}..{j * s[1] - p[1] + f[1] - 1}"
                    + (" (the parts outside y are cropped by the padding)" if any(p) else ""))
    stamping = Animation("forward: each x[i,j] stamps x[i,j] * w into y; overlapping stamps add", frames, sums)
    scatter = Step("scatter", "Forward as a scatter: each input entry stamps a scaled copy of w",
                   [f"y has size (h - 1)*s - 2p + f = ({x.shape[0]} - 1)*{s[0]} - 2*{p[0]} + {f[0]} = {out[0]} rows "
                    f"and ({x.shape[1]} - 1)*{s[1]} - 2*{p[1]} + {f[1]} = {out[1]} columns.",
                    "Entry x[i,j] adds x[i,j] * w to the output window at (i*s - p, j*s - p); where the stamps "
                    "overlap, they add up."],
                   [("x", x), ("w", w)] + stamps + [("y", y)], cap(eqs), animations=[stamping])

    # the lectures' route: the input gradient of the convolution it transposes, with dJ/dv = x
    dil = upsample_zeros(x[None, None], s)[0, 0]
    padded = pad_or_crop(dil, [(k - 1 - pp, k - 1 - pp) for k, pp in zip(f, p)])
    rot = w[::-1, ::-1]
    via_grad = F.conv_general(padded[None, None], np.ascontiguousarray(rot)[None, None])[0, 0]
    route = Step("as_backward", "The same numbers as the backward of conv(u, w): y = dJ/du at dJ/dv = x",
                 [f"The convolution v = conv(u, w) with stride {s[0] if s[0] == s[1] else s} and padding "
                  f"{p[0] if p[0] == p[1] else p} maps a {out[0]}x{out[1]} u to a {x.shape[0]}x{x.shape[1]} v. Its "
                  "input gradient, with x in the place of dJ/dv, is the transposed convolution: dilate x by the "
                  "stride, pad by f-1-p, convolve with rot180(w) (the lectures' dJ/dx shortcut)."],
                 [("x as dJ/dv", x), ("dilated", dil), ("padded", padded), ("rot180(w)", rot),
                  ("conv(padded, rot180(w))", via_grad)])

    # its backward: the forward convolution it transposes
    kw = dict(stride=s, padding=p)
    dx = F.conv(dy[None, None], w[None, None], **kw)[0, 0]
    dw = F.conv_weight_grad_by_conv(dy[None, None], x[None, None], (1, 1, *f), **kw)[0, 0]
    bw_eqs = []
    dyp = np.pad(dy, [(pp, pp) for pp in p])
    for i, j in itertools.product(range(x.shape[0]), range(x.shape[1])):
        t = [f"{paren(dyp[i * s[0] + a, j * s[1] + b])}*{paren(w[a, b])}"
             for a, b in itertools.product(range(f[0]), range(f[1]))]
        bw_eqs.append(f"dJ/dx[{i},{j}] = {' + '.join(t)} = {fmt(dx[i, j])}")
    backward = Step("backward", "Its backward is the forward it transposes: dJ/dx = conv(dJ/dy, w)",
                    ["Transposing twice gives the convolution back: the gradient of the transposed convolution "
                     f"with respect to its input is the strided convolution conv(dJ/dy, w) (stride {s[0]}, padding "
                     f"{p[0]}); up-sampling's backward is down-sampling. dJ/dw pairs each x[i,j] with the window of "
                     "dJ/dy its stamp covered."],
                    [("dJ/dy", dy), ("w", w), ("dJ/dx = conv(dJ/dy, w)", dx), ("dJ/dw", dw)], cap(bw_eqs))

    yb, cache = F.conv_transpose_forward(x[None, None], w[None, None], stride=s, padding=p)
    fdx, fdw, _ = F.conv_transpose_backward(dy[None, None], cache)
    checks = [check("y", {"scatter": y, "conv backward route": via_grad,
                          "conv_input_grad_by_conv": F.conv_input_grad_by_conv(
                              x[None, None], w[None, None], (1, 1, *out), **kw)[0, 0],
                          "fast path conv_transpose": yb[0, 0]}),
              check("dJ/dx", {"conv(dJ/dy, w)": dx, "fast path": fdx[0, 0]}),
              check("dJ/dw", {"conv weight gradient, roles exchanged": dw, "fast path": fdw[0, 0]})]
    done = Step("check", "Check: every route gives the same numbers",
                ["all routes agree" if all(c.passed for c in checks) else "ROUTES DISAGREE"], checks=checks)
    intro = [f"x: {x.shape[0]}x{x.shape[1]}, w: {f[0]}x{f[1]}, stride {s[0] if s[0] == s[1] else s}, padding "
             f"{p[0] if p[0] == p[1] else p}  ->  y = conv_transpose(x, w) is {out[0]}x{out[1]}.",
             "A transposed convolution is not an inverse of a convolution: it is its transpose, the map that "
             "carries gradients backwards through it."]
    return Walkthrough("Transposed convolution: the backward of the forward it transposes", intro,
                       [scatter, route, backward, done], {"x": x, "w": w, "y": y, "dJ/dy": dy, "dJ/dx": dx,
                                                          "dJ/dw": dw})
