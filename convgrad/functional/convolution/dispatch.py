"""The convolution on top of its routes: validation, padding modes, the route choice, the cache.

    conv_general(x, w, stride, padding, lhs_dilation, rhs_dilation, groups)   the one primitive
    conv_forward(x, w, b, ...) -> (y, cache);  conv_backward(dy, cache) -> (dx, dw, db)

Like torch and JAX it computes a cross-correlation: y[n, o, p] = sum_{c,k} w[o, c, k] *
xpad[n, c, p*s + k*d].
"""
from __future__ import annotations

import numpy as np

from ..._checks import NotFinite, all_finite, as_tuple, check_grad
from ..padding import pad as pad_mode, pad_backward, resolve_padding
from .geometry import check_inputs, conv_geometry
from .routes import ROUTES, choose_route
from .workspace import ConvCache, claim, claimed, is_callers, private_input


def conv_general(x, w, stride=1, padding=0, lhs_dilation=1, rhs_dilation=1, groups=1):
    """x (N, C_in, *S), w (C_out, C_in/g, *k) -> (N, C_out, *out). padding: int, per-axis ints,
    or per-axis (lo, hi), may be negative (crops); lhs_dilation inserts lhs_dilation-1 zeros
    between input elements; rhs_dilation spaces the kernel taps (torch's dilation)."""
    check_inputs(x, w, None, "conv_general")
    geo = conv_geometry(x.shape, w.shape, stride, padding, rhs_dilation, groups, lhs_dilation,
                        where="conv_general", allow_negative_padding=True)
    return choose_route(geo).forward(x, w, None, geo, None)[0]


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d convolution as torch.nn.functional.convNd (N = w.ndim - 2).
    x (N, C_in, *S), w (C_out, C_in/g, *k), b (C_out,) or None -> (N, C_out, *out)."""
    return conv_forward(x, w, b, stride, padding, dilation, groups, padding_mode, keep=False)[0]


def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                 workspace: dict | None = None, where: str | None = None, keep: bool = True):
    """Forward pass that also returns the cache conv_backward needs: (y, cache).
    x (N, C_in, *S), w (C_out, C_in/g, *k), b (C_out,) or None -> y (N, C_out, *out).
    `workspace`: a dict the caller keeps between calls (one per layer) for the work buffers;
    its buffers back the cache until conv_backward consumes it; a forward that finds the
    workspace still backing a live, unconsumed cache (a layer called twice before its
    backward) takes fresh buffers instead. The cache keeps its own copy of x (private_input)
    unless keep=False (no backward follows: no_grad, or y alone wanted), which also leaves the
    workspace alone (nothing is kept for a backward); `where` names the caller in messages."""
    if where is None:
        where = f"conv{w.ndim - 2}d" if isinstance(w, np.ndarray) else "conv"
    check_inputs(x, w, b, where)
    if padding_mode != "zeros":
        n_sp = w.ndim - 2
        pads = resolve_padding(padding, w.shape[2:], as_tuple(stride, n_sp, "stride", where),
                               as_tuple(dilation, n_sp, "dilation", where), where)
        conv_geometry(x.shape, w.shape, stride, pads, dilation, groups, where=where)     # validates
        x_in = pad_mode(x, pads, padding_mode, where)
        geo = conv_geometry(x_in.shape, w.shape, stride, 0, dilation, groups, where=where)
    else:
        pads, x_in = None, x
        geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, where=where)
    # An empty batch takes the channel-major route, whose loops over batch chunks simply do
    # nothing (an empty y; in backward an empty dx and zero dw, db: sums over no sample).
    route = ROUTES["channel-major"] if geo.in_shape[0] == 0 else choose_route(geo)
    private = None
    if not keep:                  # no backward follows: no copy of x, nothing kept in a workspace
        workspace = None
    else:
        if route.copies_input and is_callers(x_in, x):
            private = np.empty(x_in.shape, x_in.dtype)      # the route copies x into it (the cache's)
        else:
            x_in = private_input(x_in, x)
        if workspace is not None and claimed(workspace):
            workspace = {}            # its buffers back a cache still waiting for its backward
    try:
        if private is None:
            y, saved = route.forward(x_in, w, b, geo, workspace)
        else:
            y, saved = route.forward(x_in, w, b, geo, workspace, private=private)
        finite = not route.finite_only or route.checks_finite(geo) or all_finite(y)
    except NotFinite:                 # raised once the route's work (and copy of x) is done
        finite = False
    if private is not None:
        x_in = private
    if not finite:                    # NaN/inf stay in their windows, as in torch
        route = ROUTES["channel-major"]
        y, saved = route.forward(x_in, w, b, geo, workspace)
    cache = ConvCache(geo, w, x_in, route.name, saved, b is not None, padding_mode, pads, x.shape, workspace, where)
    claim(workspace, cache)
    return y, cache


def conv_backward(dy, cache, input_grad: bool = True, weight_grad: bool = True):
    """Gradients of conv_forward: (dx, dw, db); db is None when there was no bias.
    dy (N, C_out, *out) -> dx (N, C_in, *S), dw (C_out, C_in/g, *k), db (C_out,).
    input_grad=False: dx is not needed (the input is data, as torch's requires_grad=False)
    and is returned as None, saving the col2im. weight_grad=False: dw is returned as None
    and its GEMM skipped (a frozen weight)."""
    geo, w = cache.geo, cache.w
    dy = check_grad(dy, geo.out_shape, w.dtype, cache.where)
    route = ROUTES[cache.route]
    if route.finite_only and not route.checks_finite(geo) and not all_finite(dy):
        route = ROUTES["channel-major"]               # NaN/inf stay in their windows (above),
        cache.saved = None                            # from x: the saved matrix is the other route's
    try:
        dx, dw, db = route.backward(dy, cache, input_grad, weight_grad)
    except NotFinite:
        cache.saved = None
        dx, dw, db = ROUTES["channel-major"].backward(dy, cache, input_grad, weight_grad)
    if cache.workspace is not None:
        cache.saved = None        # the workspace is free again; another backward rebuilds from x
    if not input_grad:
        return None, dw, db
    if cache.padding_mode != "zeros":
        dx = pad_backward(dx, cache.pads, cache.padding_mode, cache.x_shape)
    return dx, dw, db
