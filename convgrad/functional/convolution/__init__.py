"""The convolution engine: geometry, routes, the lectures' routes and transposed convolution.

    geometry.py       ConvGeometry: arguments normalised and validated once; conv_output_shape
    workspace.py      the cache, layer workspaces, the per-thread scratch pool and its budget
    channel_major.py  route: one GEMM per group over batch chunks (any convolution)
    per_sample.py     route: a batch of N GEMMs in N, C order (groups == 1, short patches)
    depthwise.py      route: banded matrices (banded.py) per (sample, channel)
    routes.py         the named routes, the choice between them, conv_route() to force one
    dispatch.py       conv_general / conv_forward / conv_backward on top of the routes
    lectures.py       each gradient as another conv_general call, literally
    transposed.py     transposed convolution as the adjoint of a convolution

The public API is re-exported here and from convgrad.functional.
"""
from .dispatch import conv, conv_backward, conv_forward, conv_general
from .geometry import ConvGeometry, conv_geometry, conv_output_shape, flip_swap, gradient_geometry
from .lectures import conv_input_grad_by_conv, conv_weight_grad_by_conv
from .routes import ROUTES, Route, choose_route, conv_route
from .transposed import conv_transpose, conv_transpose_backward, conv_transpose_forward, conv_transpose_geometry
from .workspace import ConvCache, budget, kept_budget, set_kept_budget, set_workspace_budget, workspace_budget
from . import channel_major as _cm


def conv_input_grad(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dx of a convolution, fast path (col2im). dy (N, C_out, *out) -> (N, C_in, *x_shape[2:])."""
    geo = gradient_geometry(dy, w, x_shape, "input", stride, padding, dilation, groups, "conv_input_grad")
    return _cm.grads(dy, None, w, geo, input_grad=True, weight_grad=False)[0]


def conv_weight_grad(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dJ/dw of a convolution, fast path (dY @ cols^T) -> (C_out, C_in/g, *kernel)."""
    geo = gradient_geometry(dy, x, w_shape, "weight", stride, padding, dilation, groups, "conv_weight_grad")
    return _cm.grads(dy, x, None, geo, input_grad=False, weight_grad=True)[1]
