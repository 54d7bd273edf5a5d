"""Convolution by loops, and the explicit 4-D Jacobians of the single-channel case.

The lectures' compute graph: v = conv(x, w) (+ b); J a scalar function of v. With
x (h_in, w_in) and a square filter w (f, f), every output v[i, j] is a sum of products
x[i*s + a, j*s + b] * w[a, b], so
    dv[i, j]/dx[p, q] = w[p - i*s, q - j*s]  (zero outside the filter)
    dv[i, j]/dw[a, b] = x[i*s + a, j*s + b]
and the chain rule contracts these 4-D Jacobians with dJ/dv.
"""
from __future__ import annotations

import itertools

import numpy as np

from .._checks import as_tuple


def _pad(x, padding, n_sp):
    """Zero padding given as an int, one int per axis, or one (lo, hi) pair per axis."""
    if isinstance(padding, int):
        pads = [(padding, padding)] * n_sp
    else:
        pads = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
    return np.pad(x, ((0, 0), (0, 0), *pads)), pads


def conv_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, p] = b[o] + sum_{c in group(o), k} w[o, c, k] * xpad[n, c, p*s + k*d], one output at a time.
    x (N, C_in, *S), w (C_out, C_in/g, *k) -> (N, C_out, *out). Padding: ints or (lo, hi) pairs."""
    n_sp = w.ndim - 2
    s = as_tuple(stride, n_sp, "stride", "reference")
    d = as_tuple(dilation, n_sp, "dilation", "reference")
    xp, _ = _pad(x, padding, n_sp)
    kernel = w.shape[2:]
    out = [(xp.shape[2 + i] - d[i] * (kernel[i] - 1) - 1) // s[i] + 1 for i in range(n_sp)]
    c_out, c_in_g = w.shape[:2]
    per_group = c_out // groups
    y = np.zeros((x.shape[0], c_out, *out), dtype=np.result_type(x, w))
    for n, o in itertools.product(range(x.shape[0]), range(c_out)):
        g = o // per_group
        for pos in itertools.product(*(range(m) for m in out)):
            total = 0.0 if b is None else b[o]
            for c in range(c_in_g):
                for k in itertools.product(*(range(m) for m in kernel)):
                    idx = tuple(p * si + ki * di for p, si, ki, di in zip(pos, s, k, d))
                    total += w[(o, c, *k)] * xp[(n, g * c_in_g + c, *idx)]
            y[(n, o, *pos)] = total
    return y


def conv_loops_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """(dx, dw, db) by the same loops run backwards: every product adds into both factors' gradients."""
    n_sp = w.ndim - 2
    s = as_tuple(stride, n_sp, "stride", "reference")
    d = as_tuple(dilation, n_sp, "dilation", "reference")
    xp, pads = _pad(x, padding, n_sp)
    dxp, dw = np.zeros_like(xp, dtype=np.result_type(x, w)), np.zeros_like(w, dtype=np.result_type(x, w))
    c_out, c_in_g = w.shape[:2]
    per_group = c_out // groups
    for n, o in itertools.product(range(x.shape[0]), range(c_out)):
        g = o // per_group
        for pos in itertools.product(*(range(m) for m in dy.shape[2:])):
            grad = dy[(n, o, *pos)]
            for c in range(c_in_g):
                for k in itertools.product(*(range(m) for m in w.shape[2:])):
                    idx = tuple(p * si + ki * di for p, si, ki, di in zip(pos, s, k, d))
                    dw[(o, c, *k)] += grad * xp[(n, g * c_in_g + c, *idx)]
                    dxp[(n, g * c_in_g + c, *idx)] += grad * w[(o, c, *k)]
    crop = tuple(slice(lo, dxp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads))
    return dxp[(slice(None), slice(None), *crop)], dw, dy.sum(axis=(0, *range(2, dy.ndim)))


def _out_hw(x, f, stride):
    return (x.shape[0] - f) // stride + 1, (x.shape[1] - f) // stride + 1


def jacobian_dv_dx(x, w, stride=1):
    """The 4-D Jacobian of v = conv(x, w), single channel, no padding: shape (h_in, w_in, h_out, w_out),
    J[p, q, i, j] = dv[i, j]/dx[p, q] = w[p - i*s, q - j*s] where that lies inside the filter."""
    f = w.shape[0]
    h_out, w_out = _out_hw(x, f, stride)
    jac = np.zeros((*x.shape, h_out, w_out), dtype=np.result_type(x, w))
    for i, j, a, b in itertools.product(range(h_out), range(w_out), range(f), range(f)):
        jac[i * stride + a, j * stride + b, i, j] = w[a, b]
    return jac


def jacobian_dv_dw(x, w, stride=1):
    """The 4-D Jacobian dv/dw: shape (f, f, h_out, w_out), J[a, b, i, j] = x[i*s + a, j*s + b]."""
    f = w.shape[0]
    h_out, w_out = _out_hw(x, f, stride)
    jac = np.zeros((f, f, h_out, w_out), dtype=np.result_type(x, w))
    for i, j, a, b in itertools.product(range(h_out), range(w_out), range(f), range(f)):
        jac[a, b, i, j] = x[i * stride + a, j * stride + b]
    return jac


def chain_rule_dx(jac_dv_dx, dj_dv):
    """dJ/dx[p, q] = sum_{i,j} dv[i,j]/dx[p,q] * dJ/dv[i,j]: a tensor contraction over the output axes."""
    return np.tensordot(jac_dv_dx, dj_dv, axes=([2, 3], [0, 1]))


def chain_rule_dw(jac_dv_dw, dj_dv):
    """dJ/dw[a, b] = sum_{i,j} dv[i,j]/dw[a,b] * dJ/dv[i,j]."""
    return np.tensordot(jac_dv_dw, dj_dv, axes=([2, 3], [0, 1]))
