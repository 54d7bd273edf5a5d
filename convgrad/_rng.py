"""The library's random generators: a global one (seeded by manual_seed) and per-layer ones."""
from __future__ import annotations

import numpy as np

from ._checks import check_int

_GLOBAL_RNG = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator layers use when they are given none (like torch.manual_seed)."""
    global _GLOBAL_RNG
    _GLOBAL_RNG = np.random.default_rng(check_int("manual_seed", "seed", seed, minimum=0))


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
