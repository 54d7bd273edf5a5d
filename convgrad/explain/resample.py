"""Stride as resampling, the lectures' way, as data (see steps.py).

    dSample(x, s) = x[::s, ::s]         backward: uSample (zero insertion), padded to x's size
    uSample(x, s) = s-1 zeros between   backward: dSample
    conv(x, w, stride s) = dSample(conv(x, w, stride 1), s)
    its gradient: dJ/dv -> uSample to the stride-1 output's size -> the stride-1 backward.
Shapes (one channel): x (H, W), w (fh, fw), v (Ho, Wo) with Ho = (H - fh) // s + 1.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional import resample as R
from .steps import ExplainError, Step, Walkthrough, as_map, ax, check, pair, sliding_animation


def _b(m):
    return m[None, None]


def explain_resample(x=None, w=None, grad=None, stride=2, seed=None) -> Walkthrough:
    """Compute the resampling walk-through. Missing x (5x5), w (3x3) and gradients are random
    small integers from `seed` (default 0)."""
    s = pair(stride, "stride", 1)
    rng = np.random.default_rng(0 if seed is None else seed)
    small = lambda shape: rng.integers(-3, 4, size=shape).astype(np.float64)  # noqa: E731
    x = small((5, 5)) if x is None else as_map(x, (2,), "input")
    w = small((3, 3)) if w is None else as_map(w, (2,), "kernel")
    if w.shape[0] > x.shape[0] or w.shape[1] > x.shape[1]:
        raise ExplainError(f"the {w.shape[0]}x{w.shape[1]} kernel is larger than the {x.shape[0]}x{x.shape[1]} input")
    sx = "x"
    # 1. down-sampling and its backward
    z = R.downsample(_b(x), s)[0, 0]
    dz = small(z.shape)
    dx_down = np.zeros_like(x)
    dx_down[::s[0], ::s[1]] = dz                          # dz[i,j]/dx[p,q] = 1 iff (p, q) = (i*s, j*s)
    down = Step("down", f"Down-sampling: z = dSample({sx}, {ax(s)}), and its backward is up-sampling",
                ["z keeps every s-th entry: z[i,j] = x[i*s, j*s]. By the chain rule dz[i,j]/dx[p,q] = 1 only when "
                 "(p, q) = (i*s, j*s), so dJ/dx = uSample(dJ/dz, s): the gradient with s-1 zeros inserted "
                 "(and zero rows/columns at the end for the entries of x that were dropped)."],
                [("x", x), ("z = dSample(x)", z), ("dJ/dz", dz), ("dJ/dx = uSample(dJ/dz)", dx_down)])
    # 2. up-sampling and its backward
    u = R.upsample_zeros(_b(z), s)[0, 0]
    du = small(u.shape)
    dz_up = du[::s[0], ::s[1]]                            # only the copied entries depend on z
    up = Step("up", f"Up-sampling: u = uSample(z, {ax(s)}), and its backward is down-sampling",
              ["u copies z[i,j] to u[i*s, j*s] and fills the rest with zeros, which do not depend on z; "
               "so dJ/dz[i,j] = dJ/du[i*s, j*s]: dJ/dz = dSample(dJ/du, s)."],
              [("z", z), ("u = uSample(z)", u), ("dJ/du", du), ("dJ/dz = dSample(dJ/du)", dz_up)])
    # 3. a strided convolution is a stride-1 convolution followed by down-sampling
    v1 = F.conv(_b(x), _b(w))[0, 0]
    v = R.downsample(_b(v1), s)[0, 0]
    v_fast = F.conv(_b(x), _b(w), stride=s)[0, 0]
    if grad is None:
        grad = small(v.shape)
    else:
        grad = as_map(grad, (2,), "dJ/dv (--grad)")
        if grad.shape != v.shape:
            raise ExplainError(f"dJ/dv must have the output's shape {v.shape[0]}x{v.shape[1]}, got "
                               f"{grad.shape[0]}x{grad.shape[1]}")
    conv = Step("strided", f"A stride-{ax(s)} convolution = a stride-1 convolution, then dSample",
                ["The windows of a strided convolution are a subset of the stride-1 windows: "
                 f"conv(x, w, stride {ax(s)}) = dSample(conv(x, w, stride 1), {ax(s)})."],
                [("x", x), ("w", w), ("v1 = conv(x, w), stride 1", v1), ("v = dSample(v1)", v)],
                animations=[sliding_animation("stride 1: every window (the strided convolution keeps every "
                                              f"{ax(s)}-th)", [("x", x)], [("w", w)], ("v1", v1), w.shape,
                                              (1, 1), (1, 1)),
                            sliding_animation(f"stride {ax(s)}: the same windows, skipping", [("x", x)], [("w", w)],
                                              ("v", v), w.shape, s, (1, 1))])
    # 4. its gradient: up-sample dJ/dv, then the stride-1 backward
    dv1 = R.downsample_backward(_b(grad), s, v1.shape)[0, 0]
    f = w.shape
    padded = np.pad(dv1, ((f[0] - 1, f[0] - 1), (f[1] - 1, f[1] - 1)))
    rot = w[::-1, ::-1]
    dx = F.conv(_b(padded), _b(np.ascontiguousarray(rot)))[0, 0]
    dw = F.conv(_b(x), _b(dv1))[0, 0]
    _, cache = F.conv_forward(_b(x), _b(w), stride=s)
    fdx, fdw, _ = F.conv_backward(_b(grad), cache)
    back = Step("strided_grad", "Its gradient: uSample(dJ/dv), then the stride-1 backward",
                ["Backward through dSample is uSample: dJ/dv1 = dJ/dv with s-1 zeros inserted (padded to v1's size). "
                 "Then the stride-1 rules: dJ/dx = conv(pad(dJ/dv1, f-1), rot180(w)) and dJ/dw = conv(x, dJ/dv1). "
                 "This is the lectures' 'dilate the derivative map with stride-1 zeros'."],
                [("dJ/dv", grad), ("dJ/dv1 = uSample(dJ/dv)", dv1), ("dJ/dv1 padded", padded), ("rot180(w)", rot),
                 ("dJ/dx", dx), ("dJ/dw", dw)],
                animations=[sliding_animation("dJ/dx: rot180(w) slides over the padded, up-sampled dJ/dv",
                                              [("dJ/dv1 padded", padded)], [("rot180(w)", rot)], ("dJ/dx", dx), f,
                                              (1, 1), (1, 1))])
    lib_down = R.downsample_backward(_b(dz), s, x.shape)[0, 0]
    lib_up = R.upsample_zeros_backward(_b(du), s)[0, 0]
    checks = [check("dSample backward", {"zero insertion": dx_down, "resample.downsample_backward": lib_down}),
              check("uSample backward", {"dSample(dJ/du)": dz_up, "resample.upsample_zeros_backward": lib_up}),
              check("v", {"dSample(stride-1 conv)": v, f"fast path conv, stride {ax(s)}": v_fast}),
              check("dJ/dx", {"uSample, then stride-1 backward": dx, f"fast path, stride {ax(s)}": fdx[0, 0],
                              "conv_input_grad_by_conv": F.conv_input_grad_by_conv(_b(grad), _b(w), (1, 1, *x.shape),
                                                                                   stride=s)[0, 0]}),
              check("dJ/dw", {"uSample, then stride-1 backward": dw, f"fast path, stride {ax(s)}": fdw[0, 0]})]
    done = Step("check", "Check: every route gives the same numbers",
                ["all routes agree" if all(c.passed for c in checks) else "ROUTES DISAGREE"], checks=checks)
    src = "random integers (seed %d)" % (seed or 0)
    intro = [f"x {x.shape[0]}x{x.shape[1]}, w {f[0]}x{f[1]}, stride {ax(s)}; unspecified maps are {src}.",
             "Stride is resampling: every forward action has a backward counterpart "
             "(down-sampling <-> up-sampling by zero insertion)."]
    results = {"x": x, "w": w, "z": z, "dJ/dz": dz, "dJ/dx (down)": dx_down, "u": u, "dJ/du": du,
               "dJ/dz (up)": dz_up, "v1": v1, "v": v, "dJ/dv": grad, "dJ/dv1": dv1, "dJ/dx": dx, "dJ/dw": dw}
    return Walkthrough("Stride as resampling: down-sampling and up-sampling are each other's backward",
                       intro, [down, up, conv, back, done], results)
