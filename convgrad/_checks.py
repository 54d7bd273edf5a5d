"""Argument and input validation shared by every layer: clear errors, never silent garbage."""
from __future__ import annotations

import numbers

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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


def check_finite(x: np.ndarray, where: str, name: str = "input") -> None:
    """NaN/inf check; cheap relative to any layer that does real work (one pass, no copy)."""
    # A sum is finite iff every element is, barring overflow, so the exact test runs only then.
    if not np.isfinite(np.sum(x)) and not np.isfinite(x).all():
        raise ValueError(f"{where}: {name} contains NaN or infinity")


def check_same_dtype(a: np.ndarray, b: np.ndarray, where: str, a_name: str, b_name: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{where}: {a_name} has dtype {a.dtype} but {b_name} has dtype {b.dtype}; "
                        f"convert one (e.g. module.to(np.float64) or x.astype(np.float32))")
