"""1-D, 3-D and grouped (depthwise) convolution walk-throughs, as data (see steps.py).

Shapes (one sample): x (C, *S), w (K, C/G, *f), v = conv(x, w) and dJ/dv (K, *out), with
n = 1, 2 or 3 spatial axes and G groups. Filter o sees only the input channels of its group
g = o // (K/G), channels g*C/G ... (g+1)*C/G - 1; G = C = K is the depthwise convolution.
The same three sums as in 2-D, written out with n-dimensional positions:

    v[o, p]      = sum_{c in group(o), k} x[c, p*s + k*d] * w[o, c', k]      (x zero-padded)
    dJ/dw[o,c',k] = sum_p x[c, p*s + k*d] * dJ/dv[o, p]                       (conv(x, dJ/dv))
    dJ/dx[c, q]  = sum_{o in group(c), k, p: p*s + k*d = q} w[o, c', k] * dJ/dv[o, p]
                                                  (conv(pad(dilate(dJ/dv, s)), flipped w))
then checked against the fast path and the lectures' conv_*_grad_by_conv routes.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as F
from .. import reference as ref
from ..functional.convolution import conv_geometry
from .steps import (ExplainError, Step, Walkthrough, as_map, cap, check, fmt, paren, sliding_animation)

MAX_CHANNELS, MAX_SIZE_3D = 6, 6
AXES = {1: ("length",), 2: ("rows", "columns"), 3: ("depth", "rows", "columns")}


def _tuple(v, n, name, minimum):
    t = (v,) * n if np.isscalar(v) else tuple(v)
    if len(t) == 1:
        t = t * n
    if len(t) != n or any(int(a) != a or a < minimum for a in t):
        raise ExplainError(f"{name} must be an integer >= {minimum} or {n} of them, got {v!r}")
    return tuple(int(a) for a in t)


def _pos(t) -> str:
    return ",".join(str(int(i)) for i in t)


def prepare_nd(dims, x, w, grad, stride, padding, dilation, groups, channels, filters, seed):
    """Normalise the options -> (x (C,*S), w (K,C/G,*f), dy (K,*out), geometry, sources)."""
    if dims not in (1, 2, 3):
        raise ExplainError(f"dims must be 1, 2 or 3, got {dims!r}")
    s, p, d = (_tuple(stride, dims, "stride", 1), _tuple(padding, dims, "padding", 0),
               _tuple(dilation, dims, "dilation", 1))
    if int(groups) != groups or groups < 1:
        raise ExplainError(f"groups must be a positive integer, got {groups!r}")
    G = int(groups)
    rng = np.random.default_rng(0 if seed is None else seed)
    small = lambda shape: rng.integers(-3, 4, size=shape).astype(np.float64)  # noqa: E731
    sources = {}
    if x is not None:
        x = as_map(x, (dims, dims + 1), "input")
        x = x[None] if x.ndim == dims else x
    C = x.shape[0] if x is not None else (channels or G)
    K = filters or (w.shape[0] if w is not None and np.ndim(w) == dims + 2 else G)
    if w is not None:
        w = as_map(w, (dims, dims + 2), "kernel")
        w = w[None, None] if w.ndim == dims else w
        K = w.shape[0]
    for name, v in (("channels", C), ("filters", K)):
        if not 1 <= v <= MAX_CHANNELS:
            raise ExplainError(f"{name} must be between 1 and {MAX_CHANNELS}, got {v}")
        if v % G:
            raise ExplainError(f"{name} ({v}) must be divisible by groups ({G})")
    if w is None:
        w = small((K, C // G, *((3 if dims == 1 else 2),) * dims))
        sources["w"] = f"random integers (seed {seed or 0})"
    if w.shape[1] != C // G:
        raise ExplainError(f"the kernel has {w.shape[1]} channel(s) per filter but the input has {C} channel(s) "
                           f"in {G} group(s): expected {C // G}")
    if x is None:
        size = [max(d[i] * (w.shape[2 + i] - 1) + 1 - 2 * p[i], 2) + int(rng.integers(1, 3)) for i in range(dims)]
        x = small((C, *size))
        sources["x"] = f"random integers (seed {seed or 0})"
    limit = MAX_SIZE_3D if dims == 3 else 16
    if any(v > limit for v in x.shape[1:]):
        raise ExplainError(f"the input is {'x'.join(map(str, x.shape[1:]))}; the {dims}-D walk-through is for "
                           f"small maps (at most {limit} per axis)")
    try:
        geo = conv_geometry((1, *x.shape), w.shape, s, p, d, G, where=f"explain conv --dims {dims}")
    except (TypeError, ValueError) as e:
        raise ExplainError(str(e)) from None
    out = (K, *geo.out)
    if grad is None:
        grad, sources["dJ/dv"] = small(out), f"random integers (seed {seed or 0})"
    grad = as_map(grad, (dims, dims + 1), "dJ/dv (--grad)")
    grad = grad[None] if grad.ndim == dims else grad
    if grad.shape != out:
        raise ExplainError(f"dJ/dv must have the output's shape {'x'.join(map(str, out))}, "
                           f"got {'x'.join(map(str, grad.shape))}")
    for name in ("x", "w", "dJ/dv"):
        sources.setdefault(name, "given")
    return x, w, grad, geo, G, sources


def _maps(name, a, dims):
    """(label, 2-D matrix) for display: 1-D as one row, 2-D as is, 3-D as depth slices."""
    if dims == 1:
        return [(name, a[None])]
    if dims == 2:
        return [(name, a)]
    return [(f"{name} depth {z}", a[z]) for z in range(a.shape[0])]


def explain_conv_nd(dims=1, x=None, w=None, grad=None, stride=1, padding=0, dilation=1, groups=1,
                    channels=None, filters=None, seed=None) -> Walkthrough:
    """The walk-through for 1-D / 3-D or grouped convolution. Raises ExplainError."""
    x, w, dy, geo, G, sources = prepare_nd(dims, x, w, grad, stride, padding, dilation, groups, channels, filters,
                                           seed)
    C, K = x.shape[0], w.shape[0]
    cg, kg = C // G, K // G
    s, d, pads, f, out = geo.stride, geo.dilation, geo.pads, w.shape[2:], geo.out
    xp = np.pad(x, [(0, 0)] + [tuple(pp) for pp in pads])
    group = lambda o: o // kg  # noqa: E731
    multi = C > 1 or K > 1

    def nm(what, *ix):
        return f"{what}[{_pos(ix if multi else ix[-dims:])}]"

    # forward
    v = np.zeros(dy.shape)
    fwd_eqs = []
    for o in range(K):
        g = group(o)
        for pos in itertools.product(*map(range, out)):
            terms = []
            for cc, k in itertools.product(range(cg), itertools.product(*map(range, f))):
                c = g * cg + cc
                src = tuple(pi * si + ki * di for pi, si, ki, di in zip(pos, s, k, d))
                xv, wv = xp[(c, *src)], w[(o, cc, *k)]
                v[(o, *pos)] += xv * wv
                terms.append(f"{paren(xv)}*{paren(wv)}")
            fwd_eqs.append(f"{nm('v', o, *pos)} = {' + '.join(terms)} = {fmt(v[(o, *pos)])}")
    # weight gradient: dJ/dv acts as the filter over x
    dw = np.zeros(w.shape)
    dw_eqs = []
    for o, cc in itertools.product(range(K), range(cg)):
        c = group(o) * cg + cc
        for k in itertools.product(*map(range, f)):
            terms = []
            for pos in itertools.product(*map(range, out)):
                src = tuple(pi * si + ki * di for pi, si, ki, di in zip(pos, s, k, d))
                dw[(o, cc, *k)] += xp[(c, *src)] * dy[(o, *pos)]
                terms.append(f"{paren(xp[(c, *src)])}*{paren(dy[(o, *pos)])}")
            dw_eqs.append(f"{nm('dJ/dw', o, cc, *k)} = {' + '.join(terms)} = {fmt(dw[(o, cc, *k)])}")
    # input gradient: every (o, p, k) that read x[c, q] sends w * dJ/dv back to it
    dxp = np.zeros(xp.shape)
    contrib = {}
    for o in range(K):
        g = group(o)
        for pos, cc, k in itertools.product(itertools.product(*map(range, out)), range(cg),
                                            itertools.product(*map(range, f))):
            c = g * cg + cc
            src = tuple(pi * si + ki * di for pi, si, ki, di in zip(pos, s, k, d))
            dxp[(c, *src)] += w[(o, cc, *k)] * dy[(o, *pos)]
            contrib.setdefault((c, *src), []).append(f"{paren(w[(o, cc, *k)])}*{paren(dy[(o, *pos)])}")
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[1:]))
    dx = dxp[(slice(None), *crop)]
    dx_eqs = []
    for c in range(C):
        for q in itertools.product(*map(range, x.shape[1:])):
            qp = (c, *(qi + lo for qi, (lo, _) in zip(q, pads)))
            terms = contrib.get(qp, [])
            dx_eqs.append(f"{nm('dJ/dx', c, *q)} = " + (" + ".join(terms) + f" = {fmt(dx[(c, *q)])}" if terms
                                                        else "0 (no window reads it)"))

    kind = "depthwise " if G > 1 and G == C == K else ("grouped " if G > 1 else "")
    title = f"Backprop through a {kind}{dims}-D convolution, the lectures' way"
    shape = lambda t: "x".join(map(str, t))  # noqa: E731
    intro = [f"x: {C} channel(s) of {shape(x.shape[1:])} ({sources['x']}); w: {K} filter(s) of "
             f"{shape(w.shape[1:])} ({sources['w']}); dJ/dv: {shape(dy.shape)} ({sources['dJ/dv']}).",
             f"stride {_pos(s)}, padding {_pos(p[0] for p in pads)}, dilation {_pos(d)}, groups {G}  ->  "
             f"v = conv(x, w) is {shape(v.shape)}."]
    if dims == 1:
        intro.append("1-D: the filter slides in one direction only (e.g. over time in audio): "
                     "v[o,i] = sum_{c,k} x[c, i*s + k*d] * w[o,c,k].")
    elif dims == 3:
        intro.append("3-D: the filter slides in all three directions (e.g. a 3-D medical image); 3-D maps are "
                     "shown as depth slices: v[o,t,i,j] = sum_{c,a,b,e} x[c, t*s + a*d, i*s + b*d, j*s + e*d] "
                     "* w[o,c,a,b,e].")
    if G > 1:
        intro.append(f"groups = {G}: the {C} input channels and {K} filters are split into {G} groups; filter o "
                     f"sees only the {cg} channel(s) of its group (w has {cg} channel(s) per filter, not {C})."
                     + (" With groups = channels = filters this is the depthwise convolution: each channel has its "
                        "own filter, and no sum over channels." if kind == "depthwise " else ""))

    size_eqs = []
    for axis, n, k, st, (lo, hi), dl, o in zip(AXES[dims], x.shape[1:], f, s, pads, d, out):
        ext = dl * (k - 1) + 1
        size_eqs.append(f"{axis}: floor(({n} - {ext} + 2*{lo}) / {st}) + 1 = {o}"
                        + (f"   (kernel extent d*(f-1) + 1 = {ext})" if dl > 1 else ""))
    steps = [Step("output_size", "Output size", ["Per axis: out = floor((in - K + 2P) / S) + 1."], [], size_eqs)]
    fmats = [m for c in range(C) for m in _maps(f"x[{c}]" + (" padded" if any(lo for lo, _ in pads) else ""),
                                                   xp[c], dims)]
    fmats += [m for o in range(K) for cc in range(cg) for m in _maps(f"w[{o},{cc}]", w[o, cc], dims)]
    fmats += [m for o in range(K) for m in _maps(f"v[{o}]", v[o], dims)]
    ftext = ["Each output is the sum of the products of its window with the filter"
             + (", over the input channels of the filter's group." if G > 1 else
                (", summed over the input channels." if C > 1 else "."))]
    anims = []
    if dims == 1:
        for o in range(min(K, 4)):
            g = group(o)
            anims.append(sliding_animation(
                f"forward: filter {o} slides along x" + (f" (group {g})" if G > 1 else ""),
                [(f"x[{c}]", xp[c][None]) for c in range(g * cg, (g + 1) * cg)],
                [(f"w[{o},{cc}]", w[o, cc][None]) for cc in range(cg)], (f"v[{o}]", v[o][None]),
                (1, f[0]), (1, s[0]), (1, d[0]), sums=fwd_eqs[o * v[o].size:(o + 1) * v[o].size]))
    elif dims == 2:
        for o in range(min(K, 4)):
            g = group(o)
            anims.append(sliding_animation(
                f"forward: filter {o} slides over the channels of group {g}",
                [(f"x[{c}]", xp[c]) for c in range(g * cg, (g + 1) * cg)],
                [(f"w[{o},{cc}]", w[o, cc]) for cc in range(cg)], (f"v[{o}]", v[o]), tuple(f), s, d,
                sums=fwd_eqs[o * v[o].size:(o + 1) * v[o].size]))
    steps.append(Step("forward", "Forward: each output is the sum of products of its window", ftext, fmats,
                      cap(fwd_eqs), animations=anims))
    dmats = [m for o in range(K) for m in _maps(f"dJ/dv[{o}]", dy[o], dims)]
    dmats += [m for o in range(K) for cc in range(cg) for m in _maps(f"dJ/dw[{o},{cc}]", dw[o, cc], dims)]
    steps.append(Step("shortcut_dw", "dJ/dw = conv(x, dJ/dv): dJ/dv acts as the filter",
                      ["Each weight multiplies every entry of the window it meets at each output position, so its "
                       "gradient is the sum over the output positions of x times dJ/dv"
                       + (" — within the filter's group only." if G > 1 else ".")], dmats, cap(dw_eqs)))
    flipped = w[(slice(None), slice(None), *(slice(None, None, -1),) * dims)]
    xmats = [m for o in range(K) for cc in range(cg) for m in _maps(f"w[{o},{cc}] flipped", flipped[o, cc], dims)]
    xmats += [m for c in range(C) for m in _maps(f"dJ/dx[{c}]", dx[c], dims)]
    steps.append(Step("shortcut_dx", "dJ/dx = full convolution of dJ/dv with the flipped filter",
                      ["Each input entry collects w * dJ/dv from every window that read it; as a convolution: pad "
                       "the (stride-dilated) dJ/dv by d*(f-1) - p and slide the filter flipped along every axis over "
                       "it" + (", summing over the filters of the channel's group." if G > 1 else
                               (", summing over the filters." if K > 1 else "."))], xmats, cap(dx_eqs)))
    xb, gb = x[None], dy[None]
    kw = dict(stride=s, padding=tuple(lo for lo, _ in pads), dilation=d, groups=G)
    _, cache = F.conv_forward(xb, w, **kw)
    fdx, fdw, _ = F.conv_backward(gb, cache)
    checks = [check("v", {"windows (sums of products)": v, "fast path": F.conv(xb, w, **kw)[0],
                          "reference loops": ref.conv_loops(xb, w, **kw)[0]}),
              check("dJ/dw", {"sums over the windows": dw, "fast path": fdw,
                              "conv_weight_grad_by_conv": F.conv_weight_grad_by_conv(xb, gb, w.shape, **kw)}),
              check("dJ/dx", {"sums over the windows": dx, "fast path": fdx[0],
                              "conv_input_grad_by_conv (flipped filter)":
                                  F.conv_input_grad_by_conv(gb, w, xb.shape, **kw)[0]})]
    steps.append(Step("check", "Check: every route gives the same numbers",
                      ["all routes agree" if all(c.passed for c in checks) else "ROUTES DISAGREE"], checks=checks))
    results = {"x": x, "w": w, "dJ/dv": dy, "v": v, "dJ/dw": dw, "dJ/dx": dx, "groups": G}
    return Walkthrough(title, intro, steps, results)
