"""The routes a convolution can take, by name, and the choice between them.

Every route computes the same identity, y = W @ patches(x), laid out to suit the shape
(Winograd factors the same sums per 2x2 block of outputs):

    channel-major   one GEMM per group over a chunk of the batch; any convolution
    per-sample      a batch of N GEMMs in N, C order; groups == 1 (chosen for a short patch)
    depthwise       banded matrices per (sample, channel); 2-d, groups == C_in == C_out
    winograd        F(2x2, 3x3): 16 GEMMs on transformed 4x4 tiles (2.25x fewer products);
                    2-d, groups == 1, 3x3, stride 1, dilation 1 (chosen inside DataParallel
                    parts for C_in, C_out >= 32 and outputs >= 14 x 14: winograd.suits)

choose_route(geo) picks the fastest that applies; `with conv_route("per-sample"):` forces
one, process-wide (tests run every oracle check through every route this way), and a forward whose
geometry the forced route cannot compute raises ValueError.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

from . import channel_major, depthwise, per_sample, winograd
from .geometry import ConvGeometry

PER_SAMPLE_MAX_PATCH = 64  # C_in/g * K up to which N small GEMMs beat one wide GEMM (measured)


@dataclass(frozen=True)
class Route:
    """One way to compute a convolution: forward(x, w, b, geo, workspace) -> (y, saved);
    backward(dy, cache, input_grad, weight_grad) -> (dx, dw, db); rebuild(x, w, geo) -> saved
    (for a second backward); applies(geo) -> whether it can compute this geometry.
    finite_only: a NaN or inf may reach outputs whose window does not hold it (banded
    matrices multiply it by their zeros); the dispatch then uses channel-major instead.
    checks_finite(geo): a finite_only route checks y and dy itself for this geometry (chunk by
    chunk, in cache) and raises _checks.NotFinite once its work is done; the dispatch then
    skips its whole-array checks. copies_input: forward(..., private=array) also fills
    `private` with a copy of x (the cache's own copy, made chunk by chunk while x is in cache)
    instead of the dispatch."""
    name: str
    applies: Callable[[ConvGeometry], bool]
    forward: Callable
    backward: Callable
    rebuild: Callable
    finite_only: bool = False
    checks_finite: Callable[[ConvGeometry], bool] = lambda geo: False
    copies_input: bool = False


def _route(m) -> Route:
    return Route(m.NAME, m.applies, m.forward, m.backward, m.rebuild, getattr(m, "FINITE_ONLY", False),
                 getattr(m, "checks_finite", lambda geo: False), getattr(m, "COPIES_INPUT", False))


ROUTES = {m.NAME: _route(m) for m in (channel_major, per_sample, depthwise, winograd)}
_forced = {"name": None}


def choose_route(geo: ConvGeometry) -> Route:
    """The forced route (conv_route) if any, else 'depthwise' or 'winograd' where it suits,
    'per-sample' for groups == 1 with a short patch (1x1 or tiny C_in), else 'channel-major'."""
    name = _forced["name"]
    if name is not None:
        route = ROUTES[name]
        if not route.applies(geo):
            raise ValueError(f"conv: the forced route {name!r} cannot compute this convolution "
                             f"(input {geo.in_shape}, weight {geo.w_shape}, groups {geo.groups}): "
                             f"{route.applies.__doc__.strip()}")
        return route
    if depthwise.suits(geo):
        return ROUTES["depthwise"]
    if winograd.suits(geo):
        return ROUTES["winograd"]
    if per_sample.applies(geo) and geo.w_shape[1] * math.prod(geo.kernel) <= PER_SAMPLE_MAX_PATCH:
        return ROUTES["per-sample"]
    return ROUTES["channel-major"]


@contextlib.contextmanager
def conv_route(name: str | None):
    """Force every convolution forward (process-wide) through the named route while the
    block runs (None: the usual choice)."""
    if name is not None and name not in ROUTES:
        raise ValueError(f"conv_route: expected one of {tuple(ROUTES)} or None, got {name!r}")
    old = _forced["name"]
    _forced["name"] = name
    try:
        yield ROUTES.get(name)
    finally:
        _forced["name"] = old
