"""Element-wise activations and softmax, each a forward and a backward function.

For every activation `f` there are three functions:

    y = f(x, ...)                       # just the value
    y, cache = f_forward(x, ...)        # the value and what the backward needs
    dx = f_backward(dy, cache)          # dy, dx: the shape of x

x, y, dy and dx share one shape (any) and one dtype (float32 or float64). The caches hold
outputs where the derivative is cheapest in terms of them (sigmoid, tanh, softmax), a 0/1
mask for the ReLUs, and inputs elsewhere — always arrays of their own, never the caller's x
or the returned y, so a caller writing into either between forward and backward cannot
change the gradient (torch refuses such a backward; a copy costs one pass, measured in
docs/architecture.md). Also here: `erf` and `erfc` in NumPy (W. J. Cody's rational
approximations, float64-accurate), which exact GELU needs.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._checks import check_float_array, check_grad, check_real

__all__ = [
    "erf", "erfc",
    "relu", "relu_forward", "relu_backward",
    "leaky_relu", "leaky_relu_forward", "leaky_relu_backward",
    "elu", "elu_forward", "elu_backward",
    "gelu", "gelu_forward", "gelu_backward",
    "sigmoid", "sigmoid_forward", "sigmoid_backward",
    "tanh", "tanh_forward", "tanh_backward",
    "softplus", "softplus_forward", "softplus_backward",
    "silu", "silu_forward", "silu_backward",
    "softmax", "softmax_forward", "softmax_backward",
    "log_softmax", "log_softmax_forward", "log_softmax_backward",
    "resolve_softmax_dim",
]


# ---------------------------------------------------------------------------------------
# erf / erfc: W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969), as in Netlib SPECFUN's CALERF. Max relative error ~1e-16.
# ---------------------------------------------------------------------------------------
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1   # 1/sqrt(pi)
_THRESH = 0.46875


_CHUNK = 1 << 14   # elements per pass: the temporaries stay in cache (~10x fewer page faults)


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 0.46875: x * P(x^2) / Q(x^2) (Horner, in place)."""
    z = x * x
    num, den = z * _A[4], z + _B[0]
    num += _A[0]
    num *= z
    den *= z
    for a, b in zip(_A[1:3], _B[1:3]):
        num += a
        num *= z
        den += b
        den *= z
    num += _A[3]
    den += _B[3]
    num *= x
    num /= den
    return num


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y^2) without the rounding error of y*y: y = s + r with s a multiple of 1/16,
    so s*s is exact and -y^2 = -s^2 - (y - s)(y + s)."""
    s = np.trunc(y * 16.0)
    s *= 1.0 / 16.0
    d = y - s
    d *= y + s
    np.negative(d, out=d)
    np.exp(d, out=d)
    s *= s
    np.negative(s, out=s)
    np.exp(s, out=s)
    s *= d
    return s


def _erfc_mid(y: np.ndarray) -> np.ndarray:
    """erfc(y) for 0.46875 < y <= 4: exp(-y^2) * P(y) / Q(y)."""
    num, den = y * _C[8], y + _D[0]
    num += _C[0]
    num *= y
    den *= y
    for c, d in zip(_C[1:7], _D[1:7]):
        num += c
        num *= y
        den += d
        den *= y
    num += _C[7]
    den += _D[7]
    num /= den
    num *= _exp_minus_square(y)
    return num


def _erfc_far(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y > 4: exp(-y^2)/y * (1/sqrt(pi) - z P(z)/Q(z)), z = 1/y^2."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        z = 1.0 / (y * y)
        num, den = z * _P[5], z + _Q[0]
        num += _P[0]
        num *= z
        den *= z
        for p, q in zip(_P[1:4], _Q[1:4]):
            num += p
            num *= z
            den += q
            den *= z
        num += _P[4]
        den += _Q[4]
        num /= den
        num *= z
        r = (_SQRPI - num) / y
        # erfc(y) underflows to 0 beyond 27.3; the clamp keeps y = inf away from inf - inf
        r *= _exp_minus_square(np.minimum(y, 27.5))
    r[y >= 27.5] = 0.0
    return r


def _erfc_big(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y > 0.46875 (or NaN)."""
    r = _erfc_mid(np.minimum(y, 4.0))
    far = y > 4.0
    if far.any():
        r[far] = _erfc_far(y[far])
    return r


def _erf_chunk(x: np.ndarray, complement: bool) -> np.ndarray:
    out = _erf_small(np.clip(x, -_THRESH, _THRESH))     # exact where |x| <= 0.46875
    if complement:
        np.subtract(1.0, out, out=out)
    big = np.flatnonzero(~(np.abs(x) <= _THRESH))     # NaN counts as big and stays NaN
    if big.size:
        xb = x[big]
        r = _erfc_big(np.abs(xb))
        out[big] = np.where(xb < 0, 2.0 - r, r) if complement else np.copysign(1.0 - r, xb)
    return out


def _erf_chunked(x, complement: bool) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{'erfc' if complement else 'erf'}: expected real numbers, got an array of dtype {x.dtype}")
        x = x.astype(np.float64)
    flat = x.reshape(-1)
    if flat.size <= _CHUNK:
        return _erf_chunk(flat, complement).reshape(x.shape)
    out = np.empty_like(flat)
    for i in range(0, flat.size, _CHUNK):
        out[i:i + _CHUNK] = _erf_chunk(flat[i:i + _CHUNK], complement)
    return out.reshape(x.shape)


def erf(x) -> np.ndarray:
    """The error function, element-wise; float64-accurate to ~1e-16 relative. Any shape;
    float32 stays float32, other dtypes compute in float64."""
    return _erf_chunked(x, complement=False)


def erfc(x) -> np.ndarray:
    """1 - erf(x) without cancellation (relative accuracy kept deep into the tail). Any shape."""
    return _erf_chunked(x, complement=True)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _check_input(x, where: str) -> np.ndarray:
    return check_float_array(x, where, "input")


def _check_grad(dy, like: np.ndarray, where: str) -> np.ndarray:
    """dy must be a float array of the output's shape; the other float precision is cast."""
    return check_grad(dy, like.shape, like.dtype, where)


# ---------------------------------------------------------------------------------------
# ReLU family
# ---------------------------------------------------------------------------------------
_BLOCK = 1 << 15          # elements per block of a two-output pass (a block of x, y and the mask stays in cache)


def relu_forward(x, *, where="relu", keep=True):
    """y = max(x, 0). Cache: the 0/1 mask of where the gradient passes, y != 0 (a NaN passes,
    as in torch). y and the mask are written block by block, so the mask reads y from cache
    rather than memory. keep=False (no backward will follow: no_grad, or y alone wanted):
    no mask, the cache is None."""
    _check_input(x, where)
    if not keep:
        return np.maximum(x, 0), None
    if x.ndim == 0 or not x.flags.c_contiguous:
        y = np.maximum(x, 0)
        return y, (np.asarray(np.not_equal(y, 0)), y.dtype, where)   # asarray: 0-d gives a scalar
    y, passes = np.empty(x.shape, x.dtype), np.empty(x.shape, bool)
    xf, yf, pf = x.reshape(-1), y.reshape(-1), passes.reshape(-1)
    for i in range(0, xf.size, _BLOCK):
        block = np.maximum(xf[i:i + _BLOCK], 0, out=yf[i:i + _BLOCK])
        np.not_equal(block, 0, out=pf[i:i + _BLOCK])
    return y, (passes, y.dtype, where)


def relu_backward(dy, cache):
    """dx = dy except where y <= 0 (the subgradient at 0 is 0; a NaN passes its gradient, as
    in torch). A multiply by the 0/1 mask: the fastest exact-for-finite-dy form NumPy has
    (np.where is ~6x slower), so an infinite dy where y <= 0 gives NaN (torch gives 0)."""
    passes, dtype, where = cache
    dy = check_grad(dy, passes.shape, dtype, where)
    return np.multiply(dy, passes, dtype=dtype)


def leaky_relu_forward(x, negative_slope=0.01, *, where="leaky_relu"):
    """y = x if x > 0 else negative_slope * x. Cache: the mask x > 0."""
    _check_input(x, where)
    s = check_real(where, "negative_slope", negative_slope)
    positive = x > 0
    return np.where(positive, x, x * s), (positive, x.dtype, s, where)


def leaky_relu_backward(dy, cache):
    """dx = dy if x > 0 else negative_slope * dy (slope at 0, as in torch)."""
    positive, dtype, s, where = cache
    dy = check_grad(dy, positive.shape, dtype, where)
    return np.where(positive, dy, dy * s)


def elu_forward(x, alpha=1.0, *, where="elu"):
    """y = x if x > 0 else alpha * (exp(x) - 1). Cache: x."""
    _check_input(x, where)
    a = check_real(where, "alpha", alpha)
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * a), (x.copy(), a, where)


def elu_backward(dy, cache):
    """dx = dy if x > 0 else alpha * exp(x) * dy. exp(x) is recomputed from x rather than
    taken as y + alpha, which cancels for very negative x."""
    x, a, where = cache
    dy = _check_grad(dy, x, where)
    return np.where(x > 0, dy, dy * (a * np.exp(np.minimum(x, 0))))


# ---------------------------------------------------------------------------------------
# GELU
# ---------------------------------------------------------------------------------------
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def gelu_forward(x, approximate="none", *, where="gelu"):
    """approximate='none': y = x * Phi(x), Phi the standard normal CDF = erfc(-x/sqrt2)/2.
    approximate='tanh': y = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    Cache: x and Phi(x) (or the tanh)."""
    _check_input(x, where)
    if approximate == "none":
        cdf = 0.5 * erfc(x * -_SQRT1_2)
        return x * cdf, (x.copy(), cdf, approximate, where)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * (x * x * x)))
        return 0.5 * x * (1.0 + t), (x.copy(), t, approximate, where)
    raise ValueError(f"{where}: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_backward(dy, cache):
    """exact: dx = dy * (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2)/sqrt(2 pi).
    tanh: dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))."""
    x, aux, approximate, where = cache
    dy = _check_grad(dy, x, where)
    if approximate == "none":
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * (x * x))
        return dy * (aux + x * pdf)
    t = aux
    inner_grad = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * (x * x))
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_grad)


# ---------------------------------------------------------------------------------------
# Sigmoid, tanh, softplus, SiLU
# ---------------------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1 + exp(-x)) with exp only of -|x|: no overflow for any x."""
    e = np.abs(x, out=np.empty_like(x))      # the same operations as exp(-|x|), in place in one array
    np.negative(e, out=e)
    np.exp(e, out=e)
    y = np.where(x >= 0, 1.0, e)
    e += 1.0
    y /= e
    return y


def sigmoid_forward(x, *, where="sigmoid"):
    """y = 1 / (1 + exp(-x)), stable for large |x|. Cache: y."""
    _check_input(x, where)
    y = _sigmoid(x)
    return y, (y.copy(), where)


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y)."""
    y, where = cache
    dy = _check_grad(dy, y, where)
    dx = np.subtract(1.0, y, out=np.empty_like(y))   # one array, updated in place: dy * (1 - y) * y
    dx *= dy
    dx *= y
    return dx


def tanh_forward(x, *, where="tanh"):
    """y = tanh(x). Cache: y."""
    _check_input(x, where)
    y = np.tanh(x)
    return y, (y.copy(), where)


def tanh_backward(dy, cache):
    """dx = dy * (1 - y^2)."""
    y, where = cache
    dy = _check_grad(dy, y, where)
    dx = np.multiply(y, y, out=np.empty_like(y))     # one array, updated in place
    np.subtract(1.0, dx, out=dx)
    dx *= dy
    return dx


def softplus_forward(x, beta=1.0, threshold=20.0, *, where="softplus"):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (as torch).
    Computed as (max(bx, 0) + log1p(exp(-|bx|))) / beta, which never overflows. Cache: x."""
    _check_input(x, where)
    b = check_real(where, "beta", beta, nonzero=True)
    t = check_real(where, "threshold", threshold)
    bx = x * b
    soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / b
    return np.where(bx > t, x, soft), (x.copy(), b, t, where)


def softplus_backward(dy, cache):
    """dx = dy * sigmoid(beta x), and dy where beta x > threshold."""
    x, b, t, where = cache
    dy = _check_grad(dy, x, where)
    bx = x * b
    return np.where(bx > t, dy, dy * _sigmoid(bx))


def silu_forward(x, *, where="silu"):
    """y = x * sigmoid(x). Cache: x and sigmoid(x)."""
    _check_input(x, where)
    s = _sigmoid(x)
    return x * s, (x.copy(), s, where)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s)), s = sigmoid(x)."""
    x, s, where = cache
    dy = _check_grad(dy, x, where)
    return dy * s * (1.0 + x * (1.0 - s))


# ---------------------------------------------------------------------------------------
# softmax and log-softmax along one axis
# ---------------------------------------------------------------------------------------
def resolve_softmax_dim(dim, ndim: int, where: str) -> int:
    """Normalise dim to 0..ndim-1. dim=None follows torch's legacy rule (0 for rank 0, 1
    and 3, else 1) with torch's warning."""
    if dim is None:
        warnings.warn(f"{where}: implicit dimension choice for softmax has been deprecated; "
                      f"pass dim explicitly", UserWarning, stacklevel=3)
        dim = 0 if ndim in (0, 1, 3) else 1
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{where}: dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{where}: dim {dim} is out of range for an input of rank {ndim} "
                         f"(expected {-n} <= dim < {n})")
    return int(dim) % n


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """x - max - log(sum exp(x - max)): the max subtraction keeps exp from overflowing."""
    with np.errstate(over="ignore"):            # -1e308 - 1e308 = -inf is the right answer
        shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_forward(x, dim=None, *, where="softmax"):
    """y = exp(x - max) / sum(exp(x - max)) along dim. Cache: y."""
    _check_input(x, where)
    axis = resolve_softmax_dim(dim, x.ndim, where)
    if x.ndim == 0 or x.size == 0:
        y = np.ones_like(x)
    else:
        with np.errstate(over="ignore"):
            e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        y = e / np.sum(e, axis=axis, keepdims=True)
    return y, (y.copy(), axis, where)


def softmax_backward(dy, cache):
    """dx = y * (dy - sum(dy * y, dim)) — the softmax Jacobian diag(y) - y y^T applied to dy."""
    y, axis, where = cache
    dy = _check_grad(dy, y, where)
    if y.ndim == 0:
        return np.zeros_like(dy)
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def log_softmax_forward(x, dim=None, *, where="log_softmax"):
    """y = x - max - log(sum(exp(x - max))) along dim. Cache: y."""
    _check_input(x, where)
    axis = resolve_softmax_dim(dim, x.ndim, where)
    y = np.zeros_like(x) if x.ndim == 0 or x.size == 0 else _log_softmax(x, axis)
    return y, (y.copy(), axis, where)


def log_softmax_backward(dy, cache):
    """dx = dy - softmax(x) * sum(dy, dim), softmax(x) = exp(y)."""
    y, axis, where = cache
    dy = _check_grad(dy, y, where)
    if y.ndim == 0:
        return np.zeros_like(dy)
    return dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------
# value-only forms (torch.nn.functional names)
# ---------------------------------------------------------------------------------------
def relu(x):
    """torch.nn.functional.relu. Any shape."""
    return relu_forward(x, keep=False)[0]


def leaky_relu(x, negative_slope=0.01):
    """torch.nn.functional.leaky_relu. Any shape."""
    return leaky_relu_forward(x, negative_slope)[0]


def elu(x, alpha=1.0):
    """torch.nn.functional.elu. Any shape."""
    return elu_forward(x, alpha)[0]


def gelu(x, approximate="none"):
    """torch.nn.functional.gelu. Any shape."""
    return gelu_forward(x, approximate)[0]


def sigmoid(x):
    """torch.sigmoid. Any shape."""
    return sigmoid_forward(x)[0]


def tanh(x):
    """torch.tanh. Any shape."""
    return tanh_forward(x)[0]


def softplus(x, beta=1.0, threshold=20.0):
    """torch.nn.functional.softplus. Any shape."""
    return softplus_forward(x, beta, threshold)[0]


def silu(x):
    """torch.nn.functional.silu. Any shape."""
    return silu_forward(x)[0]


def softmax(x, dim=None):
    """torch.nn.functional.softmax along dim. Any shape."""
    return softmax_forward(x, dim)[0]


def log_softmax(x, dim=None):
    """torch.nn.functional.log_softmax along dim. Any shape."""
    return log_softmax_forward(x, dim)[0]
