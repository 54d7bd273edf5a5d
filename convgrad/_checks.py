"""Argument and input validation shared by every layer: clear errors, never silent garbage."""
from __future__ import annotations

import math
import numbers

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_IMAGE_SIZE = 4096              # the largest image side a reader or a run file may ask for


def as_tuple(value, n: int, name: str, where: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a length-n sequence of ints into an n-tuple, each >= minimum."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n:
        values = tuple(value)
    else:
        raise TypeError(f"{where}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
            raise TypeError(f"{where}: {name} must contain integers, got {value!r}")
        if v < minimum:
            raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def check_shape(where: str, name: str, value) -> tuple[int, ...]:
    """A shape: a tuple or list of non-negative ints (a numpy shape is one) -> tuple."""
    if not isinstance(value, (tuple, list)) or not all(is_int(v) and v >= 0 for v in value):
        raise TypeError(f"{where}: expected {name} as a tuple of non-negative ints, got {value!r}")
    return tuple(int(v) for v in value)


def check_float_array(x, where: str, name: str = "input") -> np.ndarray:
    """Require a float32/float64 NumPy array (no silent casts of ints or objects)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: expected {name} as a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{where}: expected {name} of dtype float32 or float64, got {x.dtype}")
    return x


def check_rank(x: np.ndarray, rank: int, where: str, layout: str, name: str = "input") -> None:
    if x.ndim != rank:
        raise ValueError(
            f"{where}: expected {name} of rank {rank} ({layout}), got shape {x.shape} (rank {x.ndim})")


def check_channels(x: np.ndarray, channels: int, where: str, name: str = "input") -> None:
    if x.shape[1] != channels:
        raise ValueError(
            f"{where}: expected {name} with {channels} channels (dim 1), got shape {x.shape}")


class NotFinite(ArithmeticError):
    """Raised by a computation that checks its own operands on the way (chunk by chunk, in
    cache) and met a NaN or inf where it is not NaN-exact: the caller redoes it on a NaN-exact path."""


def all_finite(a: np.ndarray) -> bool:
    """Whether every element is finite: one fast pass (a finite sum of squares, a BLAS dot,
    means finite entries), the exact element test only when it is not (NaN, inf or an
    overflow). Layers use it to pick a NaN-exact path; a NaN or inf input is a value, not an error."""
    with np.errstate(invalid="ignore", over="ignore"):
        if a.flags.c_contiguous and a.dtype.kind == "f" and a.size:
            flat = a.reshape(-1)
            quick = np.dot(flat, flat)          # ~2x faster than np.sum (BLAS)
        else:
            quick = np.sum(a)
        return bool(np.isfinite(quick) or np.isfinite(a).all())


def check_same_dtype(a: np.ndarray, b: np.ndarray, where: str, a_name: str, b_name: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{where}: {a_name} has dtype {a.dtype} but {b_name} has dtype {b.dtype}; "
                        f"convert one (e.g. module.to(np.float64) or x.astype(np.float32))")


# ---- constructor arguments: one rule each, torch's where torch has one ---------------------
def is_int(value) -> bool:
    """An integer: a Python or NumPy int, not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(where: str, name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float) in [minimum, maximum]."""
    if not is_int(value):
        raise TypeError(f"{where}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{where}: {name} must be <= {maximum}, got {value!r}")
    return int(value)


def check_real(where: str, name: str, value, *, minimum: float | None = None, maximum: float | None = None,
               below: float | None = None, positive: bool = False, nonzero: bool = False,
               finite: bool = True) -> float:
    """A real number (not a bool, not a string or array) within the given bounds; finite unless
    finite=False (a fill value may be NaN or inf, as torch's)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if finite and not math.isfinite(v):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    if positive and not v > 0:
        raise ValueError(f"{where}: {name} must be > 0, got {value!r}")
    if nonzero and v == 0:
        raise ValueError(f"{where}: {name} must be non-zero, got {value!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{where}: {name} must be <= {maximum}, got {value!r}")
    if below is not None and not v < below:
        raise ValueError(f"{where}: {name} must be < {below}, got {value!r}")
    return v


def check_bool(where: str, name: str, value) -> bool:
    """True or False (a NumPy bool too); strings, ints and None are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_choice(where: str, name: str, value, choices: tuple) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_float_dtype(where: str, value, name: str = "dtype"):
    """None (the default dtype) or something naming float32/float64 -> a np.dtype or None."""
    if value is None:
        return None
    try:
        dt = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"{where}: {name} must be float32 or float64, got {value!r}") from exc
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{where}: {name} must be float32 or float64, got {value!r}")
    return dt


# ---- backward: the gradient must be the output's ----------------------------------------
def check_grad(grad, shape, dtype, where: str, name: str = "grad_output") -> np.ndarray:
    """A backward's incoming gradient: a float array of the output's shape. A float of the
    other precision is cast to the output's dtype, as torch's engine does; anything else
    (ints, bools, objects, lists, a wrong shape) is refused."""
    shape = tuple(shape)
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"{where} backward: expected {name} as a numpy.ndarray of shape {shape}, "
                        f"got {type(grad).__name__}")
    if grad.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{where} backward: expected {name} of dtype {np.dtype(dtype)} (the output's), "
                        f"got {grad.dtype}")
    if grad.shape != shape:
        raise ValueError(f"{where} backward: expected {name} of shape {shape}, got {grad.shape}")
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad



def check_generator(where: str, value):
    """None, a non-negative int seed or a numpy Generator (what convgrad._rng.make_rng takes)."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if not is_int(value):
        raise TypeError(f"{where}: generator must be None, an int seed or a numpy.random.Generator, "
                        f"got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{where}: generator seed must be >= 0, got {value!r}")
    return value
