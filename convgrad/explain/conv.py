"""Backprop through a convolution, the lectures' way, as data (see steps.py).

Shapes (one sample): x (C, H, W), w (K, C, fh, fw), v = conv(x, w) and dJ/dv (K, Ho, Wo).
The walk-through goes: forward windows -> the 4-D Jacobians dv/dw and dv/dx as slices ->
the chain rule as a tensor contraction -> the shortcuts
    dJ/dw = conv(x, dilate(dJ/dv, s))                      (dJ/dv acts as the filter)
    dJ/dx = conv(pad(dilate(dJ/dv, s), f-1), rot180(w))    (W-dagger for several filters)
-> a check that every route (and the fast path, and the reference loops) agrees.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as F
from .. import reference as ref
from ..functional.convolution import conv_geometry, flip_swap
from ..functional.padding import vjp_padding
from ..functional.resample import upsample_zeros
from . import layer
from .steps import (ExplainError, Step, Walkthrough, as_map, ax, cap, check, fmt, idx, pad_or_crop, pair, paren,
                    sliding_animation)

# The lectures' worked example (inputs only; its results are computed like any other).
WORKED_X = np.array([[2, -3, 4], [1, -1, 2], [-1, 2, 3]], dtype=np.float64)
WORKED_W = np.array([[3, -1], [4, 2]], dtype=np.float64)
WORKED_DJ_DV = np.array([[3, -2], [1, -1]], dtype=np.float64)

MAX_CHANNELS, MAX_SLICES, MAX_ANIMATIONS = 4, 16, 4


def _count(v, name):
    if v is not None and not 1 <= int(v) <= MAX_CHANNELS:
        raise ExplainError(f"{name} must be between 1 and {MAX_CHANNELS}, got {v}")
    return None if v is None else int(v)


def prepare(x, w, grad, stride, padding, dilation, channels, filters, seed):
    """Normalise the options -> (x (C,H,W), w (K,C,fh,fw), dy (K,Ho,Wo), geometry, sources)."""
    s, p, d = pair(stride, "stride", 1), pair(padding, "padding", 0), pair(dilation, "dilation", 1)
    channels, filters = _count(channels, "channels"), _count(filters, "filters")
    rng = np.random.default_rng(0 if seed is None else seed)
    small = lambda shape: rng.integers(-3, 4, size=shape).astype(np.float64)  # noqa: E731
    sources = {}
    if w is not None:
        w = as_map(w, (2, 4), "kernel")
        w = w[None, None] if w.ndim == 2 else w
    if x is not None:
        x = as_map(x, (2, 3), "input")
        x = x[None] if x.ndim == 2 else x
    c = x.shape[0] if x is not None else (w.shape[1] if w is not None else (channels or 1))
    k = w.shape[0] if w is not None else (filters or 1)
    for given, name, n in ((channels, "--channels", c), (filters, "--filters", k)):
        if given is not None and given != n:
            raise ExplainError(f"{name} {given} does not match the {n} given in the matrices")
    worked = seed is None and c == 1 and k == 1
    if w is None:
        w, sources["w"] = (WORKED_W[None, None], "the lectures' worked example") if worked else (
            small((k, c, *((int(rng.integers(2, 4)),) * 2))), f"random integers (seed {seed or 0})")
    if w.shape[1] != c:
        raise ExplainError(f"the kernel has {w.shape[1]} channel(s) but the input has {c}")
    if x is None:
        extent = [max(3, d[i] * (w.shape[2 + i] - 1) + 1 - 2 * p[i]) for i in range(2)]
        fits = all(e <= 3 for e in extent)
        if worked and fits:
            x, sources["x"] = WORKED_X[None], "the lectures' worked example"
        else:
            size = [e + int(rng.integers(0, 3)) for e in extent]
            x = as_map(small((c, *size)), (3,), "the random input")
            sources["x"] = f"random integers (seed {seed or 0})"
    for i, axis in enumerate(("rows", "columns")):
        extent, size = d[i] * (w.shape[2 + i] - 1) + 1, x.shape[1 + i] + 2 * p[i]
        if extent > size:
            raise ExplainError(f"the {w.shape[2]}x{w.shape[3]} kernel (dilation {ax(d)}: it spans {extent} {axis}) "
                               f"is larger than the {'padded ' if any(p) else ''}input ({size} {axis}; input "
                               f"{x.shape[1]}x{x.shape[2]}, padding {ax(p)})")
    try:
        geo = conv_geometry((1, *x.shape), w.shape, s, p, d, where="explain conv")
    except (TypeError, ValueError) as e:
        raise ExplainError(str(e)) from None
    out_shape = (k, *geo.out)
    if grad is None:
        if worked and out_shape == (1, *WORKED_DJ_DV.shape):
            grad, sources["dJ/dv"] = WORKED_DJ_DV[None], "the lectures' worked example"
        else:
            grad, sources["dJ/dv"] = small(out_shape), f"random integers (seed {seed or 0})"
    grad = as_map(grad, (2, 3), "dJ/dv (--grad)")
    if (grad[None] if grad.ndim == 2 else grad).shape != out_shape:
        raise ExplainError(f"dJ/dv must have the output's shape {out_shape[1]}x{out_shape[2]}"
                           f"{f' for each of {k} filters' if k > 1 else ''}, got {'x'.join(map(str, grad.shape))}")
    grad = grad[None] if grad.ndim == 2 else grad
    for name in ("x", "w", "dJ/dv"):
        sources.setdefault(name, "given")
    return x, w, grad, geo, sources


# Numbers a lecture slide prints wrongly: the page shows the printed value next to the computed one.
SLIDE_ERRATA = [dict(where="the UBC deck (000), slide 64", x=WORKED_X, w=WORKED_W, grad=WORKED_DJ_DV,
                     name="dJ/dw", index=(0, 0), printed=12.0)]


def _errata(x, w, dy, computed, steps):
    """Mark each slide erratum whose inputs these are, beside the computed value in `steps`' equations.
    Returns [(where, 'dJ/dw[0,0]', printed, computed)]."""
    found = []
    for e in SLIDE_ERRATA:
        if not (np.array_equal(x[0], e["x"]) and np.array_equal(w[0, 0], e["w"]) and np.array_equal(dy[0], e["grad"])):
            continue
        value = float(computed[e["name"]][e["index"]])
        if value == e["printed"]:
            continue
        label = e["name"] + idx(*e["index"])
        note = (f"   <- {e['where']} prints {fmt(e['printed'])} here; the sum of its own products is "
                f"{fmt(value)}")
        mark = lambda lines: [q + note if q.startswith(label + " =") else q for q in lines]  # noqa: E731
        for step in steps:
            step.equations = mark(step.equations)
            for anim in step.animations:
                anim.sums = anim.sums and mark(anim.sums)
            step.text.append(f"Slide erratum: {e['where']} prints {label} = {fmt(e['printed'])}; the computed "
                             f"value is {fmt(value)} (marked below).")
        found.append((e["where"], label, e["printed"], value))
    return found


def _bias(bias, k):
    if bias is None:
        return None
    b = np.atleast_1d(as_map(np.atleast_2d(bias), (2,), "bias")).reshape(-1)
    if b.size == 1 and k > 1:
        b = np.repeat(b, k)
    if b.size != k:
        raise ExplainError(f"the bias needs one value per filter ({k}), got {b.size}")
    return b


# ---------------------------------------------------------------------------------------
# Names of the maps (one channel/filter: x, w; several: x[c], w[o,c])
# ---------------------------------------------------------------------------------------
class _Names:
    def __init__(self, c, k):
        self.multi = c > 1 or k > 1

    def x(self, c, what="x", suffix=""):
        return f"{what}[{c}]{suffix}" if self.multi else what + suffix

    def w(self, o, c, what="w", suffix=""):
        return f"{what}[{o},{c}]{suffix}" if self.multi else what + suffix

    def v(self, o, what="v", suffix=""):
        return f"{what}[{o}]{suffix}" if self.multi else what + suffix

    def at(self, what, *ix):
        """what[ix] with the channel/filter index dropped when there is only one."""
        return what + idx(*(ix if self.multi else ix[-2:]))


# ---------------------------------------------------------------------------------------
# The walk-through
# ---------------------------------------------------------------------------------------
def explain_conv(x=None, w=None, grad=None, stride=1, padding=0, dilation=1, channels=None, filters=None,
                 seed=None, bias=None, activation=None, batch=1) -> Walkthrough:
    """Compute the whole walk-through. Missing x/w/dJ/dv default to the lectures' worked example
    (one channel, one filter, no seed) or to random small integers. `grad` is the gradient of the
    layer's output: dJ/dv, or dJ/dz with a bias, or dJ/da with an activation. bias: (K,) values;
    activation: relu/sigmoid/tanh; batch: m samples (sample 0 is x, the others random integers).
    Raises ExplainError."""
    x, w, up, geo, sources = prepare(x, w, grad, stride, padding, dilation, channels, filters, seed)
    C, H, W = x.shape
    K, _, fh, fw = w.shape
    s, d, pads = geo.stride, geo.dilation, geo.pads
    n = _Names(C, K)
    xp = pad_or_crop(x, pads)
    m = layer.check_batch(batch)
    b = _bias(bias, K)
    if activation is not None:
        layer.activation(activation)
    extra = np.random.default_rng(1000 + (seed or 0))
    xs = np.concatenate([x[None], extra.integers(-3, 4, size=(m - 1, *x.shape)).astype(np.float64)])
    upb = np.concatenate([up[None], extra.integers(-3, 4, size=(m - 1, *up.shape)).astype(np.float64)])

    size = layer.output_size_step((H, W), geo.kernel, s, pads, d, geo.out, w[0, 0])
    dil = layer.dilated_kernel_check(xs, w, s, pads, d)
    if dil is not None:
        size.checks.append(dil)
    v, fwd = _forward(x, xp, w, geo, n)
    vb = F.conv(xs, w, stride=s, padding=pads, dilation=d)
    vb[0] = v                                       # sample 0 exactly as the windows summed it
    steps = [size, fwd]
    if b is not None or activation:
        dvb, _, arrays, bfwd, bbwd = layer.bias_activation(vb, b, activation, upb, n)
        steps += [bfwd, bbwd]
    else:
        dvb, arrays = upb, {}
    dy = dvb[0]
    jx, jx_mask, jw, jac = _jacobians(x, xp, w, geo, n)
    dx_jac = np.tensordot(jx, dy, axes=([0, 4, 5], [0, 1, 2]))           # (C, H, W)
    dw_jac = np.tensordot(dy, jw, axes=([1, 2], [3, 4]))                 # (K, C, fh, fw)
    chain = _chain_rule(x, w, dy, dx_jac, dw_jac, jx, jx_mask, jw, geo, n)
    dw, sdw = _shortcut_dw(xp, dy, geo, n)
    dx, wdag, dy_padded, sdx = _shortcut_dx(x, w, dy, geo, n)
    errata = _errata(x, w, dy, {"dJ/dw": dw[0, 0]}, [chain, sdw]) if not n.multi else []

    xb, wb, gb = x[None], w, dy[None]
    kw = dict(stride=s, padding=pads, dilation=d)
    _, cache = F.conv_forward(xb, wb, stride=s, padding=pads, dilation=d)
    fdx, fdw, _ = F.conv_backward(gb, cache)
    rdx, rdw, _ = ref.conv_loops_backward(gb, xb, wb, **kw)
    checks = [
        check("v", {"windows (sums of products)": v, "fast path conv (W @ im2col(x))": F.conv(xb, wb, **kw)[0],
                    "reference loops": ref.conv_loops(xb, wb, **kw)[0]}),
        check("dJ/dw", {"shortcut conv(x, dJ/dv)": dw, "Jacobian chain rule": dw_jac,
                        "conv_weight_grad_by_conv": F.conv_weight_grad_by_conv(xb, gb, w.shape, **kw),
                        "fast path (dY @ cols^T)": fdw, "reference loops": rdw}),
        check("dJ/dx", {"shortcut conv(pad(dJ/dv), rot180(w))": dx, "Jacobian chain rule": dx_jac,
                        "conv_input_grad_by_conv": F.conv_input_grad_by_conv(gb, w, xb.shape, **kw)[0],
                        "fast path (col2im(W^T @ dY))": fdx[0], "reference loops": rdx[0]}),
    ]
    if b is not None:
        _, bcache = F.conv_forward(xb[:1], w, b, **kw)
        checks.append(check("dJ/db", {"sum of dJ/dz": dvb[0].sum(axis=(1, 2)),
                                      "fast path (dY summed)": F.conv_backward(dvb[:1], bcache)[2]}))
    steps += [jac, chain, sdw, sdx]
    batch_results = {}
    if m > 1:
        bdw, bdb, bdx, bstep = layer.batch_step(xs, w, dvb, s, pads, d, b is not None)
        steps.append(bstep)
        batch_results = {"batch x": xs, "batch dJ/dv": dvb, "batch dJ/dw": bdw, "batch dJ/dx": bdx}
        if bdb is not None:
            batch_results["batch dJ/db"] = bdb
    verdict = "all routes agree" if all(c.passed for c in checks) else "ROUTES DISAGREE"
    done = Step("check", "Check: every route gives the same numbers",
                [f"{verdict}: the windows, the 4-D Jacobians with the chain rule, the lectures' shortcut "
                 "convolutions, the library's conv_*_grad_by_conv routes, the fast path (im2col/col2im) "
                 "and the reference loops."], checks=checks)

    title = "Backprop through a convolution, the lectures' way"
    shape = lambda *dims: "x".join(str(v) for v in dims)  # noqa: E731
    cx, kk = (f"{C} channels of " if C > 1 else ""), (f"{K} filters of " if K > 1 else "")
    intro = [f"x: {cx}{shape(H, W)} ({sources['x']}); w: {kk}{shape(*w.shape[1 if C > 1 else 2:])} ({sources['w']}); "
             f"dJ/dv: {shape(*dy.shape[0 if K > 1 else 1:])} ({sources['dJ/dv']}).",
             f"stride {ax(s)}, padding {ax(tuple(p[0] for p in pads))}, dilation {ax(d)}  ->  "
             f"v = conv(x, w) is {shape(*v.shape[0 if K > 1 else 1:])}.",
             "conv means cross-correlation, as in the lectures and torch:",
             "  v[i,j] = sum_{a,b} x[i*s + a*d, j*s + b*d] * w[a,b]    (x zero-padded)"]
    if n.multi:
        intro.append("x[c] is input channel c, w[o,c] channel c of filter o, v[o] the output of filter o.")
    if b is not None or activation:
        top = "a" if activation else "z"
        intro[0] = intro[0].replace("dJ/dv:", f"dJ/d{top}:")
        intro.append("The layer, as the lectures' compute graph: x -> conv(w) -> v"
                     + (" -> + b -> z" if b is not None else " -> z = v")
                     + (f" -> {activation} -> a" if activation else "")
                     + f"; the gradient given is dJ/d{top}" + (f"; b = {', '.join(fmt(t) for t in b)}"
                                                              if b is not None else "") + ".")
    if m > 1:
        intro.append(f"A batch of m = {m} samples: sample 0 is the x above, the others random integers "
                     f"(seed {seed or 0}); the walk-through shows sample 0, then what the batch adds.")
    results = {**arrays, **batch_results, "errata": errata, "dJ/db": None if b is None else dvb[0].sum(axis=(1, 2)),
               "batch v": vb, "x": x, "w": w, "dJ/dv": dy, "x padded": xp, "v": v, "dv/dx": jx, "dv/dw": jw,
               "dJ/dx (Jacobian)": dx_jac, "dJ/dw (Jacobian)": dw_jac, "dJ/dw": dw, "dJ/dx": dx,
               "W-dagger": wdag, "dJ/dv padded": dy_padded}
    return Walkthrough(title, intro, steps + [done], results)


def _forward(x, xp, w, geo, n):
    C, K = x.shape[0], w.shape[0]
    (sh, sw), (dh, dw_), (ho, wo) = geo.stride, geo.dilation, geo.out
    fh, fw = w.shape[2:]
    v = np.zeros((K, ho, wo))
    eqs = []
    for o, i, j in itertools.product(range(K), range(ho), range(wo)):
        terms = []
        for c, a, b in itertools.product(range(C), range(fh), range(fw)):
            xv, wv = xp[c, i * sh + a * dh, j * sw + b * dw_], w[o, c, a, b]
            v[o, i, j] += xv * wv
            terms.append(f"{paren(xv)}*{paren(wv)}")
        eqs.append(f"{n.at('v', o, i, j)} = {' + '.join(terms)} = {fmt(v[o, i, j])}")
    padded = any(lo or hi for lo, hi in geo.pads)
    xname = " padded" if padded else ""
    mats = [(n.x(c, "x", xname), xp[c]) for c in range(C)]
    mats += [(n.w(o, c), w[o, c]) for o in range(K) for c in range(C)]
    mats += [(n.v(o), v[o]) for o in range(K)]
    text = [f"Slide the {fh}x{fw} filter over {'the zero-padded ' if padded else ''}x"
            f"{f' in steps of {ax(geo.stride)}' if geo.stride != (1, 1) else ''}"
            f"{f', its taps {ax(geo.dilation)} apart' if geo.dilation != (1, 1) else ''}; "
            "each output is the sum of the products of its window with the filter"
            + (", summed over the input channels." if C > 1 else ".")]
    anims = [sliding_animation(f"forward: the filter{f' {o}' if K > 1 else ''} slides over "
                               f"{'the padded ' if padded else ''}x",
                               [(n.x(c, "x", xname), xp[c]) for c in range(C)],
                               [(n.w(o, c), w[o, c]) for c in range(C)],
                               (n.v(o), v[o]), (fh, fw), geo.stride, geo.dilation,
                               sums=eqs[o * ho * wo:(o + 1) * ho * wo])
             for o in range(min(K, MAX_ANIMATIONS))]
    return v, Step("forward", "Forward: each output is the sum of products of its window", text, mats,
                   cap(eqs), animations=anims)


def _jacobians(x, xp, w, geo, n):
    """dv/dx (K, C, H, W, Ho, Wo) with its structural mask, dv/dw (C, fh, fw, Ho, Wo), and the step."""
    C, H, W = x.shape
    K, _, fh, fw = w.shape
    (sh, sw), (dh, dw_), (ho, wo) = geo.stride, geo.dilation, geo.out
    (ph, _), (pw, _) = geo.pads
    jx, mask = np.zeros((K, C, H, W, ho, wo)), np.zeros((C, H, W, ho, wo), dtype=bool)
    jw = np.zeros((C, fh, fw, ho, wo))
    for i, j, a, b in itertools.product(range(ho), range(wo), range(fh), range(fw)):
        r, q = i * sh + a * dh, j * sw + b * dw_            # position in the padded input
        jw[:, a, b, i, j] = xp[:, r, q]                      # dv[i,j]/dw[a,b] = x[i*s + a*d, j*s + b*d]
        if 0 <= r - ph < H and 0 <= q - pw < W:              # dv[i,j]/dx[r,q] = w[a,b]
            jx[:, :, r - ph, q - pw, i, j] += w[:, :, a, b]
            mask[:, r - ph, q - pw, i, j] = True
    cells = list(itertools.product(range(ho), range(wo)))
    shown = cells[:MAX_SLICES]
    jname_w = "dv/dw" if not n.multi else "dv[o]/dw[o,0]"
    jname_x = "dv/dx" if not n.multi else "dv[0]/dx[0]"
    mats = [(f"{jname_w}[:,:,{i},{j}]", jw[0, :, :, i, j]) for i, j in shown]
    mats += [(f"{jname_x}[:,:,{i},{j}]", jx[0, 0, :, :, i, j]) for i, j in shown]
    text = [f"v depends linearly on w and on x, so the derivatives are 4-D Jacobians: dv/dw has shape "
            f"(fh, fw, Ho, Wo) = ({fh}, {fw}, {ho}, {wo}) and dv/dx has shape (H, W, Ho, Wo) = "
            f"({H}, {W}, {ho}, {wo}).",
            "Shown as slices, one per output (i, j): dv/dw[:,:,i,j] is the window of x that v[i,j] saw "
            "(each slice is the sliding window over x); dv/dx[:,:,i,j] is w placed where that window lies, "
            "zeros elsewhere (entries under the padding fall off the edge).",
            f"Here dv/dw holds {fh * fw * ho * wo} numbers and dv/dx {H * W * ho * wo}; they grow fast: for the "
            f"lectures' example, AlexNet's second conv layer, dv/dw is (5, 5, 256, 27, 27) = {5 * 5 * 256 * 27 * 27:,} "
            "numbers (the slide's ~4.7 million), which is why the shortcuts below never build them."]
    if n.multi:
        text.append(f"With {C} channel(s) and {K} filter(s): dv[o]/dw[o,c] is the same for every filter o "
                    "(and zero across filters), dv[o]/dx[c] places w[o,c]; shown for channel 0 and filter 0, "
                    "the chain rule below uses all of them.")
    if len(cells) > len(shown):
        text.append(f"(showing {len(shown)} of the {len(cells)} slices of each)")
    return jx, mask, jw, Step("jacobians", "The 4-D Jacobians dv/dw and dv/dx, slice by slice", text, mats)


def _chain_rule(x, w, dy, dx_jac, dw_jac, jx, mask, jw, geo, n):
    C, H, W = x.shape
    K, _, fh, fw = w.shape
    ho, wo = geo.out
    eqs = []
    for o, c, a, b in itertools.product(range(K), range(C), range(fh), range(fw)):
        terms = [f"{paren(jw[c, a, b, i, j])}*{paren(dy[o, i, j])}"
                 for i, j in itertools.product(range(ho), range(wo))]
        eqs.append(f"{n.at('dJ/dw', o, c, a, b)} = {' + '.join(terms)} = {fmt(dw_jac[o, c, a, b])}")
    for c, p, q in itertools.product(range(C), range(H), range(W)):
        terms = [f"{paren(jx[o, c, p, q, i, j])}*{paren(dy[o, i, j])}"
                 for o, i, j in itertools.product(range(K), range(ho), range(wo)) if mask[c, p, q, i, j]]
        eqs.append(f"{n.at('dJ/dx', c, p, q)} = {' + '.join(terms) or '0 (no window covers it)'}"
                   f"{f' = {fmt(dx_jac[c, p, q])}' if terms else ''}")
    mats = [(n.v(o, "dJ/dv"), dy[o]) for o in range(K)]
    mats += [(n.w(o, c, "dJ/dw"), dw_jac[o, c]) for o in range(K) for c in range(C)]
    mats += [(n.x(c, "dJ/dx"), dx_jac[c]) for c in range(C)]
    text = ["The chain rule contracts each Jacobian with the upstream gradient dJ/dv over the output axes:",
            "  dJ/dw[a,b] = sum_{i,j} dv/dw[a,b,i,j] * dJ/dv[i,j]    = tensordot(dv/dw, dJ/dv, axes=([2,3],[0,1]))",
            "  dJ/dx[p,q] = sum_{i,j} dv/dx[p,q,i,j] * dJ/dv[i,j]    = tensordot(dv/dx, dJ/dv, axes=([2,3],[0,1]))",
            "i.e. multiply every Jacobian slice elementwise with dJ/dv[i,j] and add the slices up"
            + (" (and sum over the filters o for dJ/dx)." if K > 1 else ".")]
    return Step("chain_rule", "The chain rule as a tensor contraction", text, mats, cap(eqs))


def _shortcut_dw(xp, dy, geo, n):
    """dJ/dw = conv(x_padded, dilate(dJ/dv, s)) with the window stepping by the dilation d."""
    C, K = xp.shape[0], dy.shape[0]
    s, d, (ho, wo) = geo.stride, geo.dilation, geo.out
    fh, fw = geo.kernel
    used = [(o - 1) * st + dl * (f - 1) + 1 for o, st, dl, f in zip(geo.out, s, d, geo.kernel)]
    xw = xp[:, :used[0], :used[1]]                          # rows/cols beyond the last window never matter
    dyd = upsample_zeros(dy[None], s)[0]                    # (K, (Ho-1)s+1, (Wo-1)s+1)
    # the input channels play the batch, dJ/dv's filters play the filters
    dw = F.conv_general(xw[:, None], dyd[:, None], stride=d)[:, :, :fh, :fw].transpose(1, 0, 2, 3)
    eqs = []
    for o, c, a, b in itertools.product(range(K), range(C), range(fh), range(fw)):
        terms = [f"{paren(xw[c, a * d[0] + i * s[0], b * d[1] + j * s[1]])}*{paren(dy[o, i, j])}"
                 for i, j in itertools.product(range(ho), range(wo))]
        eqs.append(f"{n.at('dJ/dw', o, c, a, b)} = {' + '.join(terms)} = {fmt(dw[o, c, a, b])}")
    padded = any(lo or hi for lo, hi in geo.pads)
    xname = " padded" if padded else ""
    cropped = xw.shape[1:] != xp.shape[1:]
    dname = " dilated" if s != (1, 1) else ""
    mats = [(n.x(c, "x", xname + (" (used part)" if cropped else "")), xw[c]) for c in range(C)]
    mats += [(n.v(o, "dJ/dv"), dy[o]) for o in range(K)]
    if s != (1, 1):
        mats += [(n.v(o, "dJ/dv", dname), dyd[o]) for o in range(K)]
    mats += [(n.w(o, c, "dJ/dw"), dw[o, c]) for o in range(K) for c in range(C)]
    text = ["No Jacobian needed: the contraction above is itself a convolution of the input with the "
            "upstream gradient, dJ/dv acting as the filter:  dJ/dw = conv(x, dJ/dv)."]
    if s != (1, 1):
        text.append(f"Stride {ax(s)}: dJ/dv is first dilated with stride-1 = {ax(tuple(t - 1 for t in s))} zero(s) "
                    "between its entries (products with those zeros are left out of the sums below).")
    if d != (1, 1):
        text.append(f"Kernel dilation {ax(d)}: the dJ/dv window moves in steps of {ax(d)} over x.")
    if padded:
        text.append("x is zero-padded exactly as in the forward pass.")
    if cropped:
        text.append("The last rows/columns of the padded x that no forward window reached are left out.")
    text.append("Each filter's dJ/dw[o,c] pairs input channel c with gradient map o." if n.multi else "")
    anims = [sliding_animation("dJ/dw: dJ/dv acts as the filter and slides over x",
                               [(n.x(c, "x", xname), xw[c])], [(n.v(o, "dJ/dv", dname), dyd[o])],
                               (n.w(o, c, "dJ/dw"), dw[o, c]),
                               dyd.shape[1:], d, (1, 1),
                               sums=eqs[(o * C + c) * fh * fw:(o * C + c + 1) * fh * fw])
             for o, c in list(itertools.product(range(K), range(C)))[:MAX_ANIMATIONS]]
    step = Step("shortcut_dw", "Shortcut: dJ/dw = conv(x, dJ/dv)", [t for t in text if t], mats, cap(eqs),
                animations=anims)
    return dw, step


def _shortcut_dx(x, w, dy, geo, n):
    """dJ/dx = conv(pad(dilate(dJ/dv, s), d(f-1) - p), W-dagger) with stride 1, kernel dilation d."""
    C, H, W = x.shape
    K, _, fh, fw = w.shape
    s, d = geo.stride, geo.dilation
    dyd = upsample_zeros(dy[None], s)[0]
    pads = vjp_padding((H, W), geo.kernel, s, d, geo.pads, geo.out)      # d(f-1) - p (+ rows the stride skipped)
    padded = pad_or_crop(dyd, pads)
    real = pad_or_crop(upsample_zeros(np.ones_like(dy)[None], s)[0], pads) > 0  # where dJ/dv entries sit
    wdag = flip_swap(w, 1)                                          # (C, K, fh, fw): W-dagger_c[o] = rot180(w[o,c])
    dx = F.conv_general(padded[None], wdag, rhs_dilation=d)[0]      # (C, H, W)
    eqs = []
    for c, p, q in itertools.product(range(C), range(H), range(W)):
        terms = [f"{paren(padded[o, p + a * d[0], q + b * d[1]])}*{paren(wdag[c, o, a, b])}"
                 for o, a, b in itertools.product(range(K), range(fh), range(fw))
                 if real[o, p + a * d[0], q + b * d[1]]]
        eqs.append(f"{n.at('dJ/dx', c, p, q)} = {' + '.join(terms) or '0'} = {fmt(dx[c, p, q])}")
    mats = [(n.v(o, "dJ/dv"), dy[o]) for o in range(K)]
    if s != (1, 1):
        mats += [(n.v(o, "dJ/dv", " dilated"), dyd[o]) for o in range(K)]
    mats += [(n.v(o, "dJ/dv", " padded"), padded[o]) for o in range(K)]
    mats += [(n.w(o, c, "w"), w[o, c]) for o in range(K) for c in range(C)]
    if n.multi:
        mats += [(f"W-dagger[{c}][{o}] = rot180(w[{o},{c}])", wdag[c, o]) for c in range(C) for o in range(K)]
    else:
        mats.append(("rot180(w)", wdag[0, 0]))
    if K > 1:
        part = {(o, c): F.conv_general(padded[o][None, None], wdag[c, o][None, None], rhs_dilation=d)[0, 0]
                for o in range(K) for c in range(C)}
        mats += [(f"conv(dJ/dv padded[{o}], W-dagger[{c}][{o}])", part[(o, c)]) for c in range(C) for o in range(K)]
    mats += [(n.x(c, "dJ/dx"), dx[c]) for c in range(C)]
    pad_txt = ax(tuple(lo for lo, _ in pads))
    text = ["The input gradient is a 'full' convolution: pad dJ/dv with f-1 = "
            f"{ax(tuple(f - 1 for f in geo.kernel))} zero(s) on every side and convolve it with the filter "
            "rotated by 180 degrees:  dJ/dx = conv(pad(dJ/dv, f-1), rot180(w))."]
    if s != (1, 1):
        text.append(f"Stride {ax(s)}: first dilate dJ/dv with stride-1 = {ax(tuple(t - 1 for t in s))} zero(s) "
                    "between its entries, then pad.")
    if d != (1, 1) or any(lo for lo, _ in geo.pads):
        text.append(f"With dilation d = {ax(d)} and padding p = {ax(tuple(lo for lo, _ in geo.pads))} the padding "
                    f"is d*(f-1) - p = {pad_txt} (negative means crop) and the rotated filter keeps its dilation.")
    if any(hi - lo for lo, hi in pads):
        text.append("Rows/columns of x that no forward window reached get extra zeros at the bottom/right "
                    "(their gradient is 0).")
    if n.multi:
        text.append(f"Several filters: the lectures' W-dagger. For input channel c, collect channel c of all {K} "
                    f"filters, each rotated by 180 degrees: W-dagger[c] = [rot180(w[0,c]) ... rot180(w[{K - 1},c])] "
                    "(flip_swap(w) swaps the in/out channel axes). Each input channel's gradient sums over the "
                    "filters o: dJ/dx[c] = sum_o conv(pad(dJ/dv[o]), W-dagger[c][o]).")
    text.append("Sums below leave out the products with padded/inserted zeros.")
    anims = [sliding_animation(f"dJ/dx{f'[{c}]' if n.multi else ''}: rot180(w) slides over the padded"
                               f"{' and dilated' if s != (1, 1) else ''} dJ/dv",
                               [(n.v(o, "dJ/dv", " padded"), padded[o]) for o in range(K)],
                               [(f"W-dagger[{c}][{o}]" if n.multi else "rot180(w)", wdag[c, o]) for o in range(K)],
                               (n.x(c, "dJ/dx"), dx[c]), (fh, fw), (1, 1), d,
                               sums=eqs[c * H * W:(c + 1) * H * W])
             for c in range(min(C, MAX_ANIMATIONS))]
    step = Step("shortcut_dx", "Shortcut: dJ/dx = conv(pad(dJ/dv, f-1), rot180(w))", text, mats, cap(eqs),
                animations=anims)
    return dx, wdag, padded, step
