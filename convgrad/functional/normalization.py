"""Normalisation: batch, layer and group norm, each a forward function and its backward.

All three standardise x with the mean and the biased variance of some set of m values,

    xhat = (x - mean) * inv_std,      inv_std = 1 / sqrt(var + eps)
    y    = xhat * weight + bias

and share one backward (sums over the same m values the statistics were taken over):

    dxhat   = dy * weight
    dx      = (1/m) * inv_std * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
    dweight = sum(dy * xhat),   dbias = sum(dy)     (over everything but the weight's axes)

The last two terms of dx are the paths through mean and var: every x moves the statistics
of its own set, so the gradient of one element depends on the whole set. In eval mode
batch norm uses fixed running statistics, those paths vanish and dx = dy * weight * inv_std.

Layouts: batch norm takes its statistics per channel over (N, *spatial), viewed as
(N, C, L); layer norm per row of (M, 1, K) (K = prod(normalized_shape)); group norm per
row of (N, G, K) (K = C/G * L): the same "row" code serves both. Big arrays stay in the
input's dtype; statistics are accumulated in float64 from float32 partial sums of rows.

Speed: these layers are memory-bound, and NumPy is ~3x slower at broadcasting a (C, 1)
column over (N, C, L) than at a contiguous operand. So the arrays are walked in blocks of
about _BLOCK elements (256 KiB of float32) that stay in L2, with per-channel vectors
expanded once to contiguous (channels, L) "planes" shared by all blocks; every big array
is read or written once per pass, and the caches hold arrays of their own, so that a caller
writing into x before backward cannot change the gradients: batch norm keeps x - mean (written
by the pass that computes the variance from it; its backward would otherwise subtract the
mean itself), layer and group norm the normalised xhat (y = xhat * weight + bias is computed
from it, so keeping it costs nothing when there is a weight).
NaN and inf propagate as in torch: a non-finite value makes its own set's statistics (a batch
norm channel, a layer norm row, a group) non-finite and nothing else.
Measured forward + backward on 4M float32 values against whole-array expressions: batch
norm ~1.4x faster, group norm ~1.4x, layer norm ~1.2x (its per-row columns remain).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import check_float_array, check_grad, check_int, check_real, check_same_dtype

_BLOCK = 1 << 16
_LONG_ROW = 1 << 12


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------
def _check_vector(v, size: int, x: np.ndarray, where: str, name: str):
    """weight / bias / running statistic: None, or a float array of shape (size,) in x's dtype."""
    if v is None:
        return
    check_float_array(v, where, name)
    check_same_dtype(x, v, where, "input", name)
    if v.shape != (size,):
        raise ValueError(f"{where}: expected {name} of shape ({size},), got {v.shape}")


def _inv_std(var: np.ndarray, eps: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):     # NaN/inf propagate, as torch
        return 1.0 / np.sqrt(var + eps)


def _eps(eps, where: str) -> float:
    return check_real(where, "eps", eps, minimum=0.0)


def _block_grid(shape):
    """Cover (N, C, L) with blocks of about _BLOCK elements: yield (channel slice, list of
    sample slices). Several samples per block only when a block spans all channels."""
    n, c, l = shape[0], shape[1], max(shape[2], 1)
    kc = min(c, max(1, _BLOCK // l))
    kn = max(1, _BLOCK // (kc * l))
    for c0 in range(0, c, kc):
        yield slice(c0, min(c0 + kc, c)), [slice(n0, min(n0 + kn, n)) for n0 in range(0, n, kn)]


def _work(workspace: dict | None, key: str, shape, dtype):
    """block_shape -> a contiguous work array of that shape: views of one buffer, big enough
    for any block of an (N, C, L) `shape`, kept in `workspace` (a layer's dict) if given."""
    n, c, l = shape[0], shape[1], max(shape[2], 1)
    kc = min(c, max(1, _BLOCK // l))
    size = min(n, max(1, _BLOCK // (kc * l))) * kc * l
    buf = None if workspace is None else workspace.get(key)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = np.empty(size, dtype)
        if workspace is not None:
            workspace[key] = buf
    return lambda block_shape: buf[:math.prod(block_shape)].reshape(block_shape)


def _plane(v: np.ndarray, l: int, dtype) -> np.ndarray:
    """A per-channel vector (C,) repeated along a row: (C, L), contiguous, in dtype."""
    return np.repeat(np.asarray(v, dtype)[:, None], l, axis=1)


# ---------------------------------------------------------------------------------------
# Batch norm: statistics per channel over (N, *spatial)
# ---------------------------------------------------------------------------------------
@dataclass
class BatchNormCache:
    """What batch_norm_backward needs. batch_stats: the statistics were the batch's own
    (training), so dx has the paths through mean and var; otherwise they were fixed."""
    shape: tuple                 # the input's shape (N, C, *spatial)
    batch_stats: bool
    centred: np.ndarray          # x - mean as (N, C, L), in x's dtype (backward's own array)
    mean: np.ndarray             # (C,) float64
    inv_std: np.ndarray          # (C,) float64
    weight: np.ndarray | None    # (C,)
    has_bias: bool
    where: str = "batch_norm"
    count: int = 0               # values per channel the statistics were taken over (all processes)
    reduce: object = None        # the cross-process sum the statistics used (SyncBatchNorm), or None


def _as_ncl(x: np.ndarray, where: str) -> np.ndarray:
    """(N, C, *spatial) -> (N, C, L) with L = prod(spatial) (1 for (N, C))."""
    if x.ndim < 2:
        raise ValueError(f"{where}: expected input of shape (N, C, *spatial), got shape {x.shape}")
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _channel_blocks(shape, vectors, dtype):
    """Walk (N, C, L) block by block: yield (index, planes), index = (samples, channels)
    slices and planes = each (C,) vector of `vectors` as (channels in the block, L), or
    as (channels, 1) columns when rows are so long that NumPy's per-row overhead vanishes."""
    width = shape[2] if shape[2] < _LONG_ROW else 1
    for cs, sample_slices in _block_grid(shape):
        planes = [_plane(v[cs], width, dtype) for v in vectors]
        for ns in sample_slices:
            yield (ns, cs), planes


def batch_norm_forward(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
                       momentum=0.1, eps=1e-5, workspace: dict | None = None, *, where: str = "batch_norm",
                       reduce=None, keep: bool = True):
    """Batch norm forward: x (N, C, *spatial) -> (y of x's shape and dtype, cache).

    training=True normalises with the batch's mean and biased variance over (N, *spatial)
    and, when running_mean/running_var are given, updates them in place as torch does:
    r = (1 - momentum) * r + momentum * batch statistic, the variance unbiased (m/(m-1)).
    training=False uses running_mean/running_var. weight, bias, running_mean, running_var: (C,) or None.
    workspace: a dict in which a layer keeps its small work array across calls.
    where: the name errors give (the layer's).
    reduce: for statistics over a batch spread across processes (SyncBatchNorm), a function
    returning the element-wise sum of a float64 vector over all processes; the statistics
    (and the backward's sums) are then those of the whole batch.
    keep=False: no backward will follow (no_grad, or y alone wanted): no copy of x is kept
    and the cache is None.
    """
    check_float_array(x, where)
    eps = _eps(eps, where)
    momentum = check_real(where, "momentum", momentum, minimum=0.0, maximum=1.0)
    x3 = _as_ncl(x, where)
    n, c, l = x3.shape
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_vector(v, c, x, where, name)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{where}: give both running_mean and running_var, or neither")
    m = n * l
    centred = np.empty(x3.shape, x.dtype) if keep else None   # backward's own array: x - mean
    if training:
        mean, var, m = _batch_statistics(x, x3, workspace, where, reduce, centred_out=centred)
        if running_mean is not None and m:            # an empty batch leaves them, as torch
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
            running_var *= 1.0 - momentum
            running_var += momentum * var * (m / (m - 1))
    elif running_mean is None:
        raise ValueError(f"{where}: training=False needs running_mean and running_var")
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    inv_std = _inv_std(var, eps)
    # y = (x - mean) * inv_std * weight + bias = x * alpha + beta, as torch computes it
    alpha = inv_std if weight is None else inv_std * weight
    beta = -mean * alpha if bias is None else bias - mean * alpha
    y = np.empty(x3.shape, x.dtype)
    centre_here = keep and not training           # (training: the statistics pass wrote it)
    vectors = (alpha, beta, mean) if centre_here else (alpha, beta)
    for index, (alpha_plane, beta_plane, *mean_plane) in _channel_blocks(x3.shape, vectors, x.dtype):
        block = x3[index]
        if centre_here:
            np.subtract(block, mean_plane[0], out=centred[index])
        out = np.multiply(block, alpha_plane, out=y[index])
        out += beta_plane
    if not keep:
        return y.reshape(x.shape), None
    return y.reshape(x.shape), BatchNormCache(x.shape, bool(training), centred, mean, inv_std, weight,
                                              bias is not None, where, m, reduce if training else None)


def _batch_statistics(x, x3, workspace, where, reduce=None, centred_out=None):
    """Per-channel mean and biased variance over (N, L), float64 (C,) each, and the count m.
    Two passes: the mean, then the squares of x - mean (no cancellation as in
    E[x^2] - E[x]^2), x - mean written into centred_out (N, C, L) if given. With reduce, sums
    and count are over every process's batch."""
    n, c, l = x3.shape
    m = n * l
    sums = np.einsum("ncl->nc", x3).sum(axis=0, dtype=np.float64)
    if reduce is not None:
        total = reduce(np.append(sums, float(m)))
        sums, m = total[:c], int(round(total[c]))
    if m == 1:
        raise ValueError(f"{where}: Expected more than 1 value per channel when training, "
                         f"got input size {x.shape}" + (" (1 value over all processes)" if reduce else ""))
    if m == 0:                                    # an empty batch: nothing to normalise
        return np.zeros(c), np.ones(c), 0
    mean = sums / m
    squares = np.empty((n, c), x.dtype)
    work = _work(workspace, "block", x3.shape, x.dtype)
    for index, (mean_plane,) in _channel_blocks(x3.shape, (mean,), x.dtype):
        block = x3[index]
        out = work(block.shape) if centred_out is None else centred_out[index]
        centred = np.subtract(block, mean_plane, out=out)
        np.einsum("ncl,ncl->nc", centred, centred, out=squares[index])
    squares = squares.sum(axis=0, dtype=np.float64)
    if reduce is not None:
        squares = reduce(squares)
    return mean, squares / m, m


def batch_norm_backward(dy, cache: BatchNormCache, workspace: dict | None = None):
    """Gradients of batch_norm_forward: dy (N, C, *spatial) -> (dx, dweight, dbias);
    dweight/dbias are None where the forward had no weight/bias."""
    centred = cache.centred
    dy = check_grad(dy, cache.shape, centred.dtype, cache.where)
    dtype = dy.dtype
    dy3 = dy.reshape(centred.shape)
    n, c, l = centred.shape
    m = max(cache.count or n * l, 1)              # an empty batch: every sum below is 0
    inv_std, weight = cache.inv_std, cache.weight
    a = inv_std if weight is None else inv_std * weight           # dx = a * dy when the stats are fixed
    dx = np.empty(centred.shape, dtype)
    work = _work(workspace, "block", centred.shape, dtype)
    sums, dots = np.empty((n, c), dtype), np.empty((n, c), dtype)
    for index, (a_plane,) in _channel_blocks(centred.shape, (a,), dtype):
        dy_block = dy3[index]
        np.einsum("ncl->nc", dy_block, out=sums[index])
        np.einsum("ncl,ncl->nc", dy_block, centred[index], out=dots[index])
        if not cache.batch_stats:
            np.multiply(dy_block, a_plane, out=dx[index])
    sum_dy = sums.sum(axis=0, dtype=np.float64)
    sum_dy_xhat = dots.sum(axis=0, dtype=np.float64) * inv_std
    dweight = sum_dy_xhat.astype(dtype) if weight is not None else None     # this process's part
    dbias = sum_dy.astype(dtype) if cache.has_bias else None
    if cache.reduce is not None:            # dx depends on the sums over the whole batch
        total = cache.reduce(np.concatenate([sum_dy, sum_dy_xhat]))
        sum_dy, sum_dy_xhat = total[:c], total[c:]
    if cache.batch_stats:
        # dx = a * (dy - sum(dy)/m - xhat * sum(dy * xhat)/m),  xhat = (x - mean) * inv_std
        #    = a * dy - (k * (x - mean) + k0)
        k, k0 = a * inv_std * sum_dy_xhat / m, a * sum_dy / m
        for index, (a_plane, k_plane, k0_plane) in _channel_blocks(centred.shape, (a, k, k0), dtype):
            block = centred[index]
            correction = np.multiply(block, k_plane, out=work(block.shape))
            correction += k0_plane
            out = np.multiply(dy3[index], a_plane, out=dx[index])
            out -= correction
    return dx.reshape(cache.shape), dweight, dbias


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm: x (N, C, *spatial) -> y, same shape and dtype."""
    return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps, keep=False)[0]


# ---------------------------------------------------------------------------------------
# Row normalisation: layer norm and group norm
# ---------------------------------------------------------------------------------------
@dataclass
class RowNormCache:
    """What layer_norm_backward / group_norm_backward need. The input is viewed as rows
    (N, G, K), each row standardised on its own; the affine terms are per (g, p) for a
    row split as (P, K/P): layer norm (G, P) = (1, K), group norm (G, C/G)."""
    shape: tuple                 # the input's shape
    xhat: np.ndarray             # (N, G, K), (x - mean) * inv_std in x's dtype (backward's own array)
    inv_std: np.ndarray          # (N, G) float64
    weight_plane: np.ndarray | None   # (G, K), the weight repeated along each row
    param_shape: tuple | None    # the weight's own shape (None: no weight)
    bias_shape: tuple | None     # the bias's shape (None: no bias)
    p: int                       # affine entries per row
    where: str


def _column(v: np.ndarray, dtype) -> np.ndarray:
    """Per-row statistics (n, g) -> (n, g, 1) in dtype, to broadcast along rows."""
    return v.astype(dtype)[..., None]


def _row_norm_forward(x3, eps, w_plane, b_plane, workspace=None, keep=True):
    """x3 (N, G, K): each row standardised with its own mean and biased variance, then
    * w_plane[g] + b_plane[g] ((G, K) or None). One pass over x, a block of rows at a time.
    Returns y (N, G, K), xhat (N, G, K) (None unless keep) and inv_std (N, G) float64.
    With an affine weight, y = xhat * weight is one operation whether xhat is kept or not."""
    n, g, k = x3.shape
    dtype = x3.dtype
    y = np.empty(x3.shape, dtype)
    xhat = np.empty(x3.shape, dtype) if keep else None
    inv_std = np.empty((n, g))
    work = _work(workspace, "block", x3.shape, dtype)
    for gs, sample_slices in _block_grid(x3.shape):
        for ns in sample_slices:
            block = x3[ns, gs]
            mu = np.einsum("ngk->ng", block).astype(np.float64) / k
            centred = np.subtract(block, _column(mu, dtype), out=work(block.shape))
            inv = _inv_std(np.einsum("ngk,ngk->ng", centred, centred).astype(np.float64) / k, eps)
            inv_std[ns, gs] = inv
            if keep and w_plane is not None:
                normalised = np.multiply(centred, _column(inv, dtype), out=xhat[ns, gs])
                out = np.multiply(normalised, w_plane[gs], out=y[ns, gs])
            else:
                out = np.multiply(centred, _column(inv, dtype), out=y[ns, gs])
                if keep:
                    np.copyto(xhat[ns, gs], out)
                if w_plane is not None:
                    out *= w_plane[gs]
            if b_plane is not None:
                out += b_plane[gs]
    return y, xhat, inv_std


def _row_norm_backward(dy3, cache: RowNormCache, workspace=None):
    """dy (N, G, K) -> (dx (N, G, K), dweight (G, P) float64 or None, dbias (G, P) or None)."""
    xhat_all, w_plane = cache.xhat, cache.weight_plane
    n, g, k = xhat_all.shape
    dtype, p = dy3.dtype, cache.p
    dx = np.empty(xhat_all.shape, dtype)
    dweight = np.zeros((g, p)) if cache.param_shape is not None else None
    dbias = np.zeros((g, p)) if cache.bias_shape is not None else None
    work_x, work_dy = _work(workspace, "block", xhat_all.shape, dtype), _work(workspace, "block2", xhat_all.shape, dtype)
    for gs, sample_slices in _block_grid(xhat_all.shape):
        for ns in sample_slices:
            xhat, dy_block = xhat_all[ns, gs], dy3[ns, gs]
            inv = _column(cache.inv_std[ns, gs], dtype)
            affine_view = (*xhat.shape[:2], p, k // p)
            if dweight is not None:
                dweight[gs] += np.einsum("ngpl,ngpl->gp", dy_block.reshape(affine_view), xhat.reshape(affine_view))
            if dbias is not None:
                dbias[gs] += np.einsum("ngpl->gp", dy_block.reshape(affine_view))
            dxhat = dy_block if w_plane is None else np.multiply(dy_block, w_plane[gs], out=work_dy(xhat.shape))
            # dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), per row
            mean_dxhat = np.einsum("ngk->ng", dxhat).astype(np.float64) / k
            mean_dxhat_xhat = np.einsum("ngk,ngk->ng", dxhat, xhat).astype(np.float64) / k
            correction = np.multiply(xhat, _column(mean_dxhat_xhat, dtype), out=work_x(xhat.shape))
            correction += _column(mean_dxhat, dtype)
            out = np.subtract(dxhat, correction, out=dx[ns, gs])
            out *= inv
    return dx, dweight, dbias


def _row_norm_grads(dy, cache: RowNormCache, where: str, workspace):
    dy = check_grad(dy, cache.shape, cache.xhat.dtype, cache.where)
    dx, dweight, dbias = _row_norm_backward(dy.reshape(cache.xhat.shape), cache, workspace)
    dtype = dy.dtype
    dweight = None if dweight is None else dweight.astype(dtype).reshape(cache.param_shape)
    dbias = None if dbias is None else dbias.astype(dtype).reshape(cache.bias_shape)
    return dx.reshape(cache.shape), dweight, dbias


def as_normalized_shape(normalized_shape, where: str) -> tuple:
    """An int or a sequence of positive ints (a tuple, list or 1-d array) -> a tuple (torch accepts each)."""
    if isinstance(normalized_shape, np.ndarray) and normalized_shape.ndim == 1:
        normalized_shape = tuple(normalized_shape.tolist())
    if not isinstance(normalized_shape, (tuple, list)):
        return (check_int(where, "normalized_shape", normalized_shape, minimum=1),)
    if not normalized_shape:
        raise ValueError(f"{where}: normalized_shape must be a positive int or a non-empty tuple of them, got ()")
    return tuple(check_int(where, f"normalized_shape[{i}]", s, minimum=1) for i, s in enumerate(normalized_shape))


def layer_norm_forward(x, normalized_shape, weight=None, bias=None, eps=1e-5, workspace: dict | None = None,
                       *, where: str = "layer_norm", keep: bool = True):
    """Layer norm: statistics per sample over the trailing dims normalized_shape.
    x (*, *normalized_shape) -> (y of x's shape and dtype, cache); weight, bias: normalized_shape.
    keep=False: no backward will follow; nothing is kept and the cache is None."""
    shape = as_normalized_shape(normalized_shape, where)
    eps = _eps(eps, where)
    check_float_array(x, where)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"{where}: normalized_shape={shape} expects input of shape (*, {', '.join(map(str, shape))}), "
                         f"got shape {x.shape}")
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None:
            check_float_array(v, where, name)
            check_same_dtype(x, v, where, "input", name)
            if v.shape != shape:
                raise ValueError(f"{where}: expected {name} of shape {shape}, got {v.shape}")
    k = math.prod(shape)
    x3 = x.reshape(-1, 1, k)
    w_plane = None if weight is None else weight.reshape(1, k)
    y, xhat, inv_std = _row_norm_forward(x3, eps, w_plane, None if bias is None else bias.reshape(1, k), workspace,
                                         keep)
    if not keep:
        return y.reshape(x.shape), None
    cache = RowNormCache(x.shape, xhat, inv_std, w_plane, None if weight is None else shape,
                         None if bias is None else shape, k, where)
    return y.reshape(x.shape), cache


def layer_norm_backward(dy, cache: RowNormCache, workspace: dict | None = None):
    """Gradients of layer_norm_forward: (dx, dweight, dbias), the last two None when absent."""
    return _row_norm_grads(dy, cache, "layer_norm", workspace)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm: x (*, *normalized_shape) -> y, same shape and dtype."""
    return layer_norm_forward(x, normalized_shape, weight, bias, eps, keep=False)[0]


def group_norm_forward(x, num_groups, weight=None, bias=None, eps=1e-5, workspace: dict | None = None,
                       *, where: str = "group_norm", keep: bool = True):
    """Group norm: statistics per sample and group of C/G channels over those channels and
    all positions. x (N, C, *spatial) -> (y of x's shape and dtype, cache); weight, bias: (C,).
    keep=False: no backward will follow; nothing is kept and the cache is None."""
    check_float_array(x, where)
    eps = _eps(eps, where)
    if x.ndim < 2:
        raise ValueError(f"{where}: expected input of shape (N, C, *spatial), got shape {x.shape}")
    n, c = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1 \
            or c % num_groups:
        raise ValueError(f"{where}: the {c} channels of input shape {x.shape} must divide into "
                         f"num_groups={num_groups!r} groups")
    for name, v in (("weight", weight), ("bias", bias)):
        _check_vector(v, c, x, where, name)
    g = int(num_groups)
    l = math.prod(x.shape[2:])
    x3 = x.reshape(n, g, c // g * l)
    w_plane = None if weight is None else _plane(weight, l, x.dtype).reshape(g, -1)
    b_plane = None if bias is None else _plane(bias, l, x.dtype).reshape(g, -1)
    y, xhat, inv_std = _row_norm_forward(x3, eps, w_plane, b_plane, workspace, keep)
    if not keep:
        return y.reshape(x.shape), None
    cache = RowNormCache(x.shape, xhat, inv_std, w_plane, None if weight is None else (c,),
                         None if bias is None else (c,), c // g, where)
    return y.reshape(x.shape), cache


def group_norm_backward(dy, cache: RowNormCache, workspace: dict | None = None):
    """Gradients of group_norm_forward: (dx, dweight, dbias), the last two None when absent."""
    return _row_norm_grads(dy, cache, "group_norm", workspace)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.group_norm: x (N, C, *spatial) -> y, same shape and dtype."""
    return group_norm_forward(x, num_groups, weight, bias, eps, keep=False)[0]
