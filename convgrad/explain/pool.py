"""Backprop through max- and mean-pooling, the lectures' way, as data (see steps.py).

Shapes (one channel): x (H, W), windows k = (kh, kw) moved by s, y and dJ/dy (Ho, Wo),
Ho = (H - kh) // sh + 1. Max routes dJ/dy[i,j] to the arg-max of window (i,j) (the first
maximum in row-major order, as torch); mean spreads dJ/dy[i,j] / (kh*kw) over the window.
Where windows overlap (s < k) their contributions are added.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as F
from .steps import (MAX_LINES, Animation, ExplainError, Panel, Step, Walkthrough, as_map, ax, cap, check, fmt, idx,
                    pad_or_crop, pair, paren, sliding_animation, window_mask)

# The max-pooling example of the lectures (000, "Backpropagation in MaxPooling Layer").
LECTURE_X = np.array([[1, 3, 10, 0], [8, 4, 2, 9], [7, 2, 1, 3], [1, 1, 0, 4]], dtype=np.float64)
MAX_WINDOWS = 16


def _library_pool(x, grad, k, s, mode):
    """(y, dJ/dx) from convgrad.functional.pooling, or None while that module does not exist."""
    try:
        from ..functional import pooling as P
    except ImportError:
        return None
    if mode == "max":
        fwd, bwd = P.max_pool_forward, P.max_pool_backward
    else:
        fwd, bwd = P.avg_pool_forward, P.avg_pool_backward
    y, cache = fwd(x[None, None], k, s)
    return y[0, 0], bwd(grad[None, None], cache)[0, 0]


def explain_pool(x=None, kernel_size=2, stride=None, mode="max", grad=None, seed=None) -> Walkthrough:
    """Compute the pooling walk-through. x (H, W) defaults to the lectures' 4x4 example
    (random small integers with a seed); dJ/dy defaults to random integers 1..4."""
    if mode not in ("max", "avg"):
        raise ExplainError(f"mode must be 'max' or 'avg', got {mode!r}")
    k = pair(kernel_size, "kernel size", 1)
    s = k if stride is None else pair(stride, "stride", 1)
    rng = np.random.default_rng(0 if seed is None else seed)
    if x is None:
        if seed is None:
            x, src = LECTURE_X, "the lectures' max-pooling example"
        else:
            x = rng.integers(-4, 10, size=tuple(kk + int(rng.integers(1, 4)) for kk in k)).astype(np.float64)
            src = f"random integers (seed {seed})"
    else:
        x, src = as_map(x, (2,), "input"), "given"
    H, W = x.shape
    if k[0] > H or k[1] > W:
        raise ExplainError(f"the {k[0]}x{k[1]} window is larger than the {H}x{W} input")
    out = ((H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1)
    if grad is None:
        grad, gsrc = rng.integers(1, 5, size=out).astype(np.float64), f"random integers (seed {seed or 0})"
    else:
        grad, gsrc = as_map(grad, (2,), "dJ/dy (--grad)"), "given"
        if grad.shape != out:
            raise ExplainError(f"dJ/dy must have the output's shape {out[0]}x{out[1]}, "
                               f"got {grad.shape[0]}x{grad.shape[1]}")

    windows = list(itertools.product(range(out[0]), range(out[1])))
    masks = {(i, j): window_mask(x.shape, (i * s[0], j * s[1]), k, (1, 1)) for i, j in windows}
    y = np.zeros(out)
    share = {}                       # (i, j) -> the (H, W) map of dy[i,j]/dx: where window (i,j) sends its gradient
    fwd_eqs = []
    for i, j in windows:
        vals = x[masks[(i, j)]]      # row-major order
        if mode == "max":
            a = int(np.argmax(vals))  # first maximum
            y[i, j] = vals[a]
            pos = np.argwhere(masks[(i, j)])[a]
            share[(i, j)] = np.zeros(x.shape)
            share[(i, j)][tuple(pos)] = 1.0
            fwd_eqs.append(f"y{idx(i, j)} = max({', '.join(fmt(v) for v in vals)}) = {fmt(y[i, j])}  at x{idx(*pos)}")
        else:
            y[i, j] = vals.mean()
            share[(i, j)] = masks[(i, j)] / vals.size
            fwd_eqs.append(f"y{idx(i, j)} = ({' + '.join(paren(v) for v in vals)}) / {vals.size} = {fmt(y[i, j])}")

    # dy/dx as a 4-D Jacobian (H, W, Ho, Wo): slice [:, :, i, j] is window (i,j)'s share map
    jac = np.stack([np.stack([share[(i, j)] for j in range(out[1])], -1) for i in range(out[0])], -2)
    contrib = {w: grad[w] * share[w] for w in windows}
    dx = sum(contrib.values())
    dx_jac = np.tensordot(jac, grad, axes=([2, 3], [0, 1]))
    coverage = sum(m.astype(int) for m in masks.values())
    overlap = coverage.max() > 1

    name = "max" if mode == "max" else "mean"
    fwd = Step("forward", f"Forward: {name}-pooling, {k[0]}x{k[1]} windows, stride {ax(s)}",
               [f"Each output is the {'largest entry' if mode == 'max' else 'mean'} of its window."
                + (" Ties go to the first maximum in row-major order (as in torch)." if mode == "max" else "")],
               [("x", x), ("y", y)] + ([("windows covering each cell", coverage)] if overlap else []), cap(fwd_eqs),
               animations=[sliding_animation(f"forward: the {k[0]}x{k[1]} window slides over x", [("x", x)], [],
                                             ("y", y), k, s, (1, 1), sums=fwd_eqs)])

    bwd_eqs = []
    for p, q in itertools.product(range(H), range(W)):
        terms = [(w, share[w][p, q]) for w in windows if share[w][p, q]]
        if terms:
            sym = " + ".join(f"dJ/dy{idx(*w)}" + ("" if mode == "max" else f"/{int(round(1 / f))}") for w, f in terms)
            num = " + ".join(paren(grad[w] * f) for w, f in terms)
            bwd_eqs.append(f"dJ/dx{idx(p, q)} = {sym} = " + (f"{num} = " if len(terms) > 1 else "") + fmt(dx[p, q]))
    if len(bwd_eqs) < H * W:
        bwd_eqs.append("every other dJ/dx[p,q] = 0 (no window sends it anything)")
    text = (["Max routes the gradient: dy[i,j]/dx[p,q] = 1 at the arg-max of window (i,j), 0 elsewhere, so "
             "dJ/dy[i,j] goes to that one cell and the other cells of the window get nothing."]
            if mode == "max" else
            [f"Mean spreads the gradient: dy[i,j]/dx[p,q] = 1/{k[0] * k[1]} on window (i,j), so every cell of "
             f"the window gets dJ/dy[i,j]/{k[0] * k[1]}."])
    text.append("Where windows overlap, a cell receives the sum of the contributions of every window that "
                "covers it." if overlap else
                f"The windows do not overlap here (stride {ax(s)} >= window); with --stride smaller than the "
                "kernel size the contributions of overlapping windows add up.")
    if coverage.min() == 0:
        text.append("Cells no window covers get zero gradient.")
    mats = [("dJ/dy", grad)] + [(f"from window {idx(*w)}", contrib[w]) for w in windows[:MAX_WINDOWS]]
    if len(windows) > MAX_WINDOWS:
        text.append(f"(showing the contributions of {MAX_WINDOWS} of the {len(windows)} windows)")
    mats.append(("dJ/dx = sum", dx))
    bwd = Step("backward", f"Backward: {'routing to the arg-max' if mode == 'max' else 'spreading 1/k^2'}"
               + (", overlapping windows accumulate" if overlap else ""), text, mats, cap(bwd_eqs, MAX_LINES),
               animations=[_accumulate(x, grad, windows, masks, share, contrib, mode)])

    steps, routes = [fwd, bwd], {"window by window": dx, "Jacobian chain rule": dx_jac}
    if mode == "avg":
        conv_dx, conv_step = _mean_as_conv(grad, k, s, x.shape)
        steps.append(conv_step)
        routes["conv(pad(dilate(dJ/dy)), ones/k^2)"] = conv_dx
    lib = _library_pool(x, grad, k, s, mode)
    y_routes = {"window by window": y}
    if lib is not None:
        y_routes["convgrad.functional.pooling"], routes["convgrad.functional.pooling"] = lib
    checks = [check("y", y_routes), check("dJ/dx", routes)]
    steps.append(Step("check", "Check: every route gives the same numbers",
                      ["all routes agree" if all(c.passed for c in checks) else "ROUTES DISAGREE"]
                      + ([] if lib is not None else ["(convgrad.functional.pooling is not available yet)"]),
                      checks=checks))
    intro = [f"x: {H}x{W} ({src}); {name}-pooling with {k[0]}x{k[1]} windows, stride {ax(s)} -> y {out[0]}x{out[1]}; "
             f"dJ/dy ({gsrc})."]
    results = {"x": x, "y": y, "dJ/dy": grad, "dJ/dx": dx, "dJ/dx (Jacobian)": dx_jac, "dy/dx": jac,
               "coverage": coverage}
    return Walkthrough(f"Backprop through {name}-pooling", intro, steps, results)


def _mean_as_conv(grad, k, s, in_shape):
    """Mean-pool backward as a full convolution: conv(pad(dilate(dJ/dy, s), k-1), ones/(kh*kw))."""
    from ..functional.resample import upsample_zeros
    dil = upsample_zeros(grad[None, None], s)[0, 0]
    extra = [size - (k_ + (o - 1) * st) for size, k_, st, o in zip(in_shape, k, s, grad.shape)]  # uncovered rows
    padded = pad_or_crop(dil, [(k_ - 1, k_ - 1 + e) for k_, e in zip(k, extra)])
    kernel = np.full(k, 1.0 / (k[0] * k[1]))
    dx = F.conv_general(padded[None, None], kernel[None, None])[0, 0]
    mats = [("dJ/dy", grad)] + ([("dJ/dy dilated", dil)] if s != (1, 1) else []) + [
        ("dJ/dy padded", padded), (f"ones/{k[0] * k[1]} (= its own rot180)", kernel), ("dJ/dx", dx)]
    text = ["Mean-pooling is a convolution with a constant filter (stride s), so its backward is the same "
            "full convolution as for any filter: dilate dJ/dy with s-1 zeros, pad by k-1, convolve with the "
            "rotated filter, which for a constant filter is the filter itself."]
    return dx, Step("as_conv", "Mean-pool backward is a convolution", text, mats)


def _accumulate(x, grad, windows, masks, share, contrib, mode) -> Animation:
    """Frames: window (i,j) highlighted, its contribution added to the running dJ/dx."""
    frames, sums, acc = [], [], np.zeros(x.shape)
    order = np.arange(grad.size).reshape(grad.shape)
    for t, w in enumerate(windows):
        acc = acc + contrib[w]
        cells = np.argwhere(share[w] != 0)
        if mode == "max":
            sums.append(f"window {idx(*w)}: dJ/dy{idx(*w)} = {fmt(grad[w])} goes to its arg-max x{idx(*cells[0])}; "
                        f"dJ/dx{idx(*cells[0])} is now {fmt(acc[tuple(cells[0])])}")
        else:
            sums.append(f"window {idx(*w)}: each of its {len(cells)} cells gets dJ/dy{idx(*w)} / {len(cells)} = "
                        f"{fmt(grad[w])} / {len(cells)} = {fmt(grad[w] / len(cells))}")
        frames.append([Panel("x", x, window=masks[w]), Panel("dJ/dy", grad, mark=order == t),
                       Panel("dJ/dx (running sum)", acc, window=masks[w], mark=share[w] != 0)])
    return Animation(f"backward: each window sends dJ/dy[i,j] {'to its arg-max' if mode == 'max' else 'spread'}"
                     " and the contributions add up", frames, sums)
