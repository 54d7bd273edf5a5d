"""The steps around the convolution of a whole conv layer, the lectures' compute graph
x -> conv(w) -> v -> + b (broadcast) -> z -> f -> a, over a batch of m samples:

    output size   Ho = floor((H + 2P - d(f-1) - 1) / S) + 1, with the user's numbers; the
                  dilated kernel as a kernel with zeros between its taps
    bias, f       forward z = v + b[o], a = f(z); backward dJ/dz = dJ/da * f'(z) (elementwise),
                  dJ/dv = dJ/dz (the broadcast add passes it through), dJ/db[o] = sum of dJ/dz[o]
    batch         the samples share w and b: dJ/dw and dJ/db are sums over the samples, dJ/dx is
                  per sample

Shapes: x (m, C, H, W), w (K, C, fh, fw), b (K,), v/z/a and their gradients (m, K, Ho, Wo).
Each function returns arrays plus a steps.Step; conv.py puts them in order.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as F
from .steps import ExplainError, Step, cap, check, fmt, paren

ACTIVATIONS = ("relu", "sigmoid", "tanh")
_DERIVATIVE = {"relu": "f'(z) = 1 if z > 0 else 0",
               "sigmoid": "f'(z) = a * (1 - a)  with a = sigmoid(z)",
               "tanh": "f'(z) = 1 - a^2  with a = tanh(z)"}


def activation(name):
    """(forward, backward) of convgrad.functional for an activation name, or ExplainError."""
    if name not in ACTIVATIONS:
        raise ExplainError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")


def derivative(name, z, a):
    """f'(z) elementwise, from the formula (independent of the library's backward)."""
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "sigmoid":
        return a * (1 - a)
    return 1 - a * a


# ---------------------------------------------------------------------------------------
# Output size and the dilated kernel
# ---------------------------------------------------------------------------------------
def output_size_step(x_hw, kernel, stride, pads, dilation, out, w2d) -> Step:
    """floor((W - K + 2P) / S) + 1 per axis with the numbers filled in; K is the dilated extent."""
    eqs = []
    for axis, size, f, s, (lo, hi), d, o in zip(("rows (H)", "columns (W)"), x_hw, kernel, stride, pads,
                                                dilation, out):
        extent = d * (f - 1) + 1
        pad_txt = f"2*{lo}" if lo == hi else f"{lo} + {hi}"
        num = size - extent + lo + hi
        eqs.append(f"{axis}: floor(({size} - {extent} + {pad_txt}) / {s}) + 1 = floor({num} / {s}) + 1 = "
                   f"{num // s} + 1 = {o}")
        if d != 1:
            eqs.append(f"    (the {f}-tap kernel with dilation {d} spans d*(f-1) + 1 = {d}*{f - 1} + 1 = {extent})")
        if num % s:
            eqs.append(f"    ({num} is not a multiple of {s}: the last {num % s} row(s)/column(s) of the padded "
                       "input are never reached by a window)")
    text = ["The output size, per axis: Ho = floor((H - K + 2P) / S) + 1 (the recitation's formula), with "
            "H the input size, K the kernel extent, P the padding and S the stride."]
    mats = []
    if any(d != 1 for d in dilation):
        text.append("Dilation d spreads the filter's taps d apart: a dilated convolution is an ordinary one "
                    "with a kernel that has d-1 zeros between its taps, so its extent is K = d*(f-1) + 1.")
        wd = np.zeros(tuple(dd * (f - 1) + 1 for dd, f in zip(dilation, kernel)))
        wd[::dilation[0], ::dilation[1]] = w2d
        mats = [("w", w2d), ("w dilated (zeros between taps)", wd)]
    return Step("output_size", "Output size" + (" and the dilated kernel" if mats else ""), text, mats, eqs)


def dilated_kernel_check(x, w, stride, pads, dilation):
    """The dilated convolution equals the plain one with the zero-inserted kernel."""
    if all(d == 1 for d in dilation):
        return None
    K, C, fh, fw = w.shape
    wd = np.zeros((K, C, dilation[0] * (fh - 1) + 1, dilation[1] * (fw - 1) + 1))
    wd[:, :, ::dilation[0], ::dilation[1]] = w
    kw = dict(stride=stride, padding=pads)
    return check("dilated kernel", {"conv with dilation": F.conv(x, w, dilation=dilation, **kw),
                                    "plain conv with the zero-inserted kernel": F.conv(x, wd, **kw)})


# ---------------------------------------------------------------------------------------
# Bias and activation
# ---------------------------------------------------------------------------------------
def bias_activation(v, b, act, upstream, names):
    """Forward z = v + b, a = f(z) and backward to dJ/dv, dJ/db for the whole batch.
    v, upstream (m, K, Ho, Wo); b (K,) or None; act a name or None. Returns
    (dJ/dv, dJ/db or None, arrays dict, forward Step, backward Step). `names(o, what)` names a map
    of sample 0."""
    K = v.shape[1]
    bb = np.zeros(K) if b is None else b
    z = v + bb[None, :, None, None]
    arrays = {"z": z}
    fwd_eqs, bwd_eqs, fmats, bmats = [], [], [], []
    out_name = "a" if act else "z"
    if act:
        fwd_fn, bwd_fn = activation(act)
        a, cache = fwd_fn(z)
        dz = upstream * derivative(act, z, a)
        arrays.update(a=a, **{"dJ/dz": dz, "f'(z)": derivative(act, z, a)})
        lib_dz = bwd_fn(upstream, cache)
    else:
        a, dz, lib_dz = z, upstream, upstream
    for o, i, j in itertools.product(range(K), range(v.shape[2]), range(v.shape[3])):
        at = names.at
        line = f"{at('z', o, i, j)} = {at('v', o, i, j)} + b{'[' + str(o) + ']' if K > 1 else ''} = " \
               f"{fmt(v[0, o, i, j])} + {paren(bb[o])} = {fmt(z[0, o, i, j])}"
        if act:
            line += f";  {at('a', o, i, j)} = {act}({fmt(z[0, o, i, j])}) = {fmt(a[0, o, i, j])}"
            fprime = derivative(act, z[0, o, i, j], a[0, o, i, j])
            bwd_eqs.append(f"{at('dJ/dz', o, i, j)} = {at('dJ/da', o, i, j)} * f'(z) = {paren(upstream[0, o, i, j])}"
                           f" * {paren(fprime)} = {fmt(dz[0, o, i, j])}")
        fwd_eqs.append(line)
    db = None
    if b is not None:
        db = dz.sum(axis=(0, 2, 3))
        for o in range(K):
            terms = " + ".join(paren(t) for t in dz[0, o].ravel())
            total = fmt(dz[0, o].sum())
            bwd_eqs.append(f"dJ/db{'[' + str(o) + ']' if K > 1 else ''} = sum of dJ/dz{names.v(o, '', '')} = "
                           f"{terms} = {total}" + ("   (sample 0; the batch adds its other samples below)"
                                                   if v.shape[0] > 1 else ""))
    for o in range(K):
        fmats.append((names.v(o, "v"), v[0, o]))
        fmats.append((names.v(o, "z = v + b" if b is not None else "z"), z[0, o]))
        if act:
            fmats.append((names.v(o, f"a = {act}(z)"), a[0, o]))
        bmats.append((names.v(o, f"dJ/d{out_name}"), upstream[0, o]))
        if act:
            bmats.append((names.v(o, "f'(z)"), arrays["f'(z)"][0, o]))
            bmats.append((names.v(o, "dJ/dz = dJ/da * f'(z)"), dz[0, o]))
        bmats.append((names.v(o, "dJ/dv = dJ/dz"), dz[0, o]))
    ftext = []
    if b is not None:
        ftext.append("The bias adds one number per filter to every position of its map (the lectures' "
                     "'implied broadcasting'):  z[o,i,j] = v[o,i,j] + b[o].")
    if act:
        ftext.append(f"The activation acts elementwise:  a = {act}(z).")
    btext = []
    if act:
        btext.append(f"Backward through the activation: dJ/dz = dJ/da * f'(z), elementwise, with {_DERIVATIVE[act]}.")
    btext.append("Backward through the broadcast add: dJ/dv = dJ/dz (each v[o,i,j] feeds exactly one z[o,i,j]).")
    if b is not None:
        btext.append("b[o] feeds every position of map o, so its gradient is the sum of dJ/dz[o] over the positions "
                     + ("and over the samples of the batch." if v.shape[0] > 1 else "(and, in a batch, the samples)."))
    checks = []
    if act:
        checks.append(check("dJ/dz", {"dJ/da * f'(z) from the formula": dz,
                                      f"convgrad.functional.{act}_backward": lib_dz}))
    fwd = Step("bias_activation", "Forward: " + " and ".join(
        t for t in ("bias" if b is not None else "", act or "") if t), ftext, fmats, cap(fwd_eqs))
    bwd = Step("bias_activation_backward", "Backward: " + " and ".join(
        t for t in (f"{act}'" if act else "", "the bias" if b is not None else "") if t) + " to dJ/dv",
        btext, bmats, cap(bwd_eqs), checks)
    arrays["a" if act else "z"] = a
    return dz, db, arrays, fwd, bwd


# ---------------------------------------------------------------------------------------
# A batch of m samples
# ---------------------------------------------------------------------------------------
def batch_step(xb, w, dvb, stride, pads, dilation, has_bias):
    """Per-sample weight (and bias) gradients by the lectures' shortcut, and their sums.
    xb (m, C, H, W), dvb (m, K, Ho, Wo). Returns (dJ/dw sum, dJ/db sum, dJ/dx (m, ...), Step)."""
    m = xb.shape[0]
    K, C = w.shape[:2]
    kw = dict(stride=stride, padding=pads, dilation=dilation)
    per_w = np.stack([F.conv_weight_grad_by_conv(xb[n:n + 1], dvb[n:n + 1], w.shape, **kw) for n in range(m)])
    per_x = np.concatenate([F.conv_input_grad_by_conv(dvb[n:n + 1], w, xb[n:n + 1].shape, **kw) for n in range(m)])
    dw = per_w.sum(axis=0)
    db = dvb.sum(axis=(0, 2, 3)) if has_bias else None
    multi = C > 1 or K > 1
    eqs = []
    for o, c, a, b in itertools.product(range(K), range(C), range(w.shape[2]), range(w.shape[3])):
        name = f"dJ/dw[{o},{c},{a},{b}]" if multi else f"dJ/dw[{a},{b}]"
        eqs.append(f"{name} = " + " + ".join(f"{paren(per_w[n, o, c, a, b])}" for n in range(m))
                   + f" = {fmt(dw[o, c, a, b])}")
    if has_bias:
        for o in range(K):
            per = [dvb[n, o].sum() for n in range(m)]
            eqs.append(f"dJ/db{f'[{o}]' if K > 1 else ''} = " + " + ".join(paren(p) for p in per)
                       + f" = {fmt(db[o])}")
    mats = []
    for n in range(min(m, 4)):
        mats += [(f"x sample {n}" + (f" [{c}]" if C > 1 else ""), xb[n, c]) for c in range(C)]
        mats += [(f"dJ/dv sample {n}" + (f" [{o}]" if K > 1 else ""), dvb[n, o]) for o in range(K)]
        mats += [(f"dJ/dw from sample {n}" + (f" [{o},{c}]" if multi else ""), per_w[n, o, c])
                 for o in range(K) for c in range(C)]
        mats += [(f"dJ/dx sample {n}" + (f" [{c}]" if C > 1 else ""), per_x[n, c]) for c in range(C)]
    mats += [("dJ/dw (sum over the batch)" + (f" [{o},{c}]" if multi else ""), dw[o, c])
             for o in range(K) for c in range(C)]
    text = [f"A batch of m = {m} samples: every sample goes through the same w and b, so (the multivariable chain "
            "rule adds over all paths) dJ/dw = sum over the samples n of conv(x_n, dJ/dv_n)"
            + (", and dJ/db[o] = the sum of dJ/dz[o] over the samples and positions" if has_bias else "") + ".",
            "dJ/dx is not summed: each sample has its own input and its own input gradient."]
    if m > 4:
        text.append(f"(showing the maps of 4 of the {m} samples; the sums use all of them)")
    _, cache = F.conv_forward(xb, w, np.zeros(K) if has_bias else None, **kw)
    fdx, fdw, fdb = F.conv_backward(dvb, cache)
    checks = [check("dJ/dw (batch)", {"sum of per-sample shortcuts": dw, "fast path on the whole batch": fdw}),
              check("dJ/dx (batch)", {"per-sample shortcuts": per_x, "fast path on the whole batch": fdx})]
    if has_bias:
        checks.append(check("dJ/db (batch)", {"sum of dJ/dz over samples and positions": db,
                                              "fast path on the whole batch": fdb}))
    return dw, db, per_x, Step("batch", f"A batch of {m} samples: the gradients of w and b add up", text, mats,
                               cap(eqs), checks)


def check_batch(m):
    if int(m) != m or not 1 <= m <= 8:
        raise ExplainError(f"batch must be an integer between 1 and 8, got {m!r}")
    return int(m)
