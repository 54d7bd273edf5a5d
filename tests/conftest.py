import numpy as np
import pytest


def rel_err(actual, expected) -> float:
    """max |a - e| / max |e| (absolute when e is all zeros)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
