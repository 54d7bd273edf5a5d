"""Parameter initialisation as torch does it by default, reproducible from a seed or Generator."""
from __future__ import annotations

import math

import numpy as np

from .._dtype import get_default_dtype
from .._rng import make_rng, manual_seed  # noqa: F401  (re-exported)

def uniform(shape, bound: float, rng: np.random.Generator, dtype=None) -> np.ndarray:
    """U(-bound, bound) in the default dtype."""
    dtype = dtype or get_default_dtype()
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def default_bound(fan_in: int) -> float:
    """torch's kaiming_uniform_(a=sqrt(5)) bound for weights, also its bias bound: 1/sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
