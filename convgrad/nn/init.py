"""Parameter initialisation as torch does it by default, reproducible from a seed or Generator."""
from __future__ import annotations

import math

import numpy as np

from .._dtype import get_default_dtype

_GLOBAL_RNG = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator layers use when they are given none (like torch.manual_seed)."""
    global _GLOBAL_RNG
    _GLOBAL_RNG = np.random.default_rng(seed)


def make_rng(generator=None) -> np.random.Generator:
    """None -> the library's global generator; int -> a fresh seeded one; a Generator as is."""
    if generator is None:
        return _GLOBAL_RNG
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"expected generator as None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def uniform(shape, bound: float, rng: np.random.Generator, dtype=None) -> np.ndarray:
    """U(-bound, bound) in the default dtype."""
    dtype = dtype or get_default_dtype()
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def default_bound(fan_in: int) -> float:
    """torch's kaiming_uniform_(a=sqrt(5)) bound for weights, also its bias bound: 1/sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
