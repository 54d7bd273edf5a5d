import os

import numpy as np
import pytest

# The lectures' worked example and its known results (shared/seeds/README.md); only tests type them.
X = np.array([[2, -3, 4], [1, -1, 2], [-1, 2, 3]], dtype=np.float64)
W = np.array([[3, -1], [4, 2]], dtype=np.float64)
DJ_DV = np.array([[3, -2], [1, -1]], dtype=np.float64)
V = np.array([[11, -13], [4, 9]])
DJ_DW = np.array([[14, -20], [2, -8]])
DJ_DX = np.array([[9, -9, 2], [15, -6, -3], [4, -2, -2]])

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def rel_err(actual, expected) -> float:
    """max |a - e| / max |e| (absolute when e is all zeros)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def rel(actual, expected) -> float:
    """max |a - e| / max |e|: strictly relative (no floor at 1)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    return float(np.abs(actual - expected).max(initial=0.0) / max(np.abs(expected).max(initial=0.0), 1e-300))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def make_dataset(root, n_train=600, n_test=200, seed=0, bar=220, noise=60):
    """A Fashion-MNIST-shaped IDX dataset in root/fashion-mnist: ten classes, each a bar of grey
    level `bar` at its own rows on uniform noise in [0, noise). Learnable in an epoch."""
    from convgrad.data import write_idx
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, noise, size=(n, 28, 28)).astype(np.uint8)
        for c in range(10):
            images[labels == c, 2 + 2 * c:5 + 2 * c, 4:24] = bar
        return images, labels

    d = os.path.join(root, "fashion-mnist")
    os.makedirs(d, exist_ok=True)
    for (images, labels), (fi, fl) in zip((split(n_train), split(n_test)), (FASHION_FILES[:2], FASHION_FILES[2:])):
        write_idx(os.path.join(d, fi), images)
        write_idx(os.path.join(d, fl), labels)
    return d
