"""DataLoader: shuffled, augmented, normalised mini-batches, resumable mid-epoch.

    loader = DataLoader(x, y, 64, seed=0, transform=standard_augmentation())
    for epoch in range(10):
        for xb, yb in loader:     # xb float32 (B, C, H, W), yb int64 (B,)
            ...
    ckpt = loader.state_dict()    # any time, also mid-epoch; load_state_dict(ckpt) replays exactly
"""
from __future__ import annotations

import copy
import math
from typing import Iterator, Sequence

import numpy as np

from .._checks import check_int
from .._dtype import get_default_dtype
from .transforms import Transform


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of images (N, C, H, W) scaled to [0, 1] (uint8 is divided by 255).

    uint8 input is summarised exactly (and fast) from a 256-bin histogram per channel; the
    std is the population std (ddof=0), as the usual published constants are.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"channel_stats: expected a non-empty (N, C, H, W) array, got shape {images.shape}")
    means, stds = [], []
    for c in range(images.shape[1]):
        ch = images[:, c]
        if images.dtype == np.uint8:
            hist = np.bincount(ch.ravel(), minlength=256).astype(np.float64)
            v = np.arange(256) / 255.0
            m = float(hist @ v / hist.sum())
            s = math.sqrt(float(hist @ (v - m) ** 2 / hist.sum()))
        else:
            m, s = float(ch.mean(dtype=np.float64)), float(ch.std(dtype=np.float64))
        means.append(m)
        stds.append(s)
    return tuple(means), tuple(stds)


def _check_arrays(images, labels) -> None:
    """images: a uint8/float ndarray (N, C, H, W); labels: an integer ndarray (N,)."""
    for name, value in (("images", images), ("labels", labels)):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"DataLoader: {name} must be a numpy.ndarray, got {type(value).__name__}")
    if images.dtype.kind not in "uif" or images.dtype == np.bool_:
        raise TypeError(f"DataLoader: images must be uint8 or float, got dtype {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"DataLoader: expected images of shape (N, C, H, W), got {images.shape}")
    if labels.dtype.kind not in "ui":
        raise TypeError(f"DataLoader: labels must be integers, got dtype {labels.dtype}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"DataLoader: expected labels of shape ({images.shape[0]},), got {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"DataLoader: labels are class indices, >= 0; got {labels.min()}")


class DataLoader:
    """Iterate over (images, labels) in mini-batches: (x (B, C, H, W) `dtype`, y int64 (B,)).

    images: (N, C, H, W) uint8 in 0..255 (scaled by 1/255) or float already in [0, 1].
    labels: (N,) integers (converted once to int64).
    batch_size, drop_last: the last batch is smaller unless `drop_last`.
    shuffle, seed: each epoch draws a permutation from one numpy Generator, seeded with `seed`
    (an int, a SeedSequence, or None for fresh entropy).
    transform: ``t(x_uint8_batch, rng) -> batch`` applied before scaling (see transforms.py),
    e.g. RandomCrop / RandomHorizontalFlip; it draws from the same Generator.
    normalize, mean, std: x -> (x/255 - mean) / std per channel; mean/std default to the
    statistics of `images` (pass the training set's to a test loader: `loader.mean`).
    With normalize=False x -> x/255 only.
    dtype: output float dtype, default get_default_dtype() (float32).

    One iteration at a time: `iter(loader)` starts the next epoch (or, after load_state_dict of
    a mid-epoch state, finishes that epoch from where it stopped).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 64, shuffle: bool = True,
                 seed=None, drop_last: bool = False, transform: Transform | None = None, *,
                 normalize: bool = True, mean: Sequence[float] | float | None = None,
                 std: Sequence[float] | float | None = None, dtype=None):
        _check_arrays(images, labels)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last), ("normalize", normalize)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {type(flag).__name__}")
        if seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence)) \
                or isinstance(seed, bool):
            raise TypeError(f"DataLoader: seed must be an int, a SeedSequence or None, got {type(seed).__name__}")
        if dtype is not None and np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"DataLoader: dtype must be float32 or float64, got {np.dtype(dtype)}")
        for name, value in (("mean", mean), ("std", std)):
            if value is not None:
                arr = np.asarray(value)
                if arr.dtype.kind not in "fiu":
                    raise TypeError(f"DataLoader: {name} must be numbers, got {value!r}")
                if not np.isfinite(arr.astype(np.float64)).all():
                    raise ValueError(f"DataLoader: {name} must be finite, got {value!r}")
                if arr.ndim > 1 or arr.size not in (1, images.shape[1]):
                    raise ValueError(f"DataLoader: {name} must be one number or one per channel "
                                     f"({images.shape[1]}), got {value!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be a callable t(batch, rng) or None, "
                            f"got {transform!r} ({type(transform).__name__})")
        self.images, self.labels = images, labels.astype(np.int64)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        if len(self) == 0:
            raise ValueError(f"DataLoader: {len(images)} samples give no batch of {batch_size} (drop_last={drop_last})")
        self.transform = transform
        self.dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        c = images.shape[1]
        if normalize:
            if mean is None or std is None:
                m, s = channel_stats(images)
                mean = m if mean is None else mean
                std = s if std is None else std
            self.mean = tuple(float(v) for v in np.broadcast_to(np.asarray(mean, dtype=np.float64), (c,)))
            self.std = tuple(float(v) for v in np.broadcast_to(np.asarray(std, dtype=np.float64), (c,)))
            if min(self.std) <= 0:
                raise ValueError(f"DataLoader: std must be > 0, got {self.std}")
        else:
            self.mean, self.std = (0.0,) * c, (1.0,) * c
        unit = 255.0 if images.dtype == np.uint8 else 1.0
        std_arr, mean_arr = np.asarray(self.std), np.asarray(self.mean)
        self._scale = (1.0 / (unit * std_arr)).astype(self.dtype).reshape(1, c, 1, 1)
        self._shift = (-mean_arr / std_arr).astype(self.dtype).reshape(1, c, 1, 1)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._epoch, self._batch = 0, 0        # current epoch, batches of it already yielded
        self._epoch_state = None               # rng state when the current epoch began
        self._resume = False

    def __len__(self) -> int:
        n, b = len(self.images), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    @property
    def epoch(self) -> int:
        """The epoch in progress (or the next one, between epochs); starts at 0."""
        return self._epoch

    def convert(self, x: np.ndarray) -> np.ndarray:
        """Scale and normalise a raw batch (B, C, H, W) -> `dtype`, as the loader does."""
        out = x.astype(self.dtype)
        out *= self._scale
        out += self._shift
        return out

    def _order(self) -> np.ndarray:
        n = len(self.images)
        return self.rng.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._resume:
            self._resume = False
            now = self.rng.bit_generator.state
            self.rng.bit_generator.state = self._epoch_state
            order = self._order()                  # the same permutation as before the checkpoint
            self.rng.bit_generator.state = now
        else:
            if self._batch:                        # the previous epoch was abandoned part-way
                self._epoch, self._batch = self._epoch + 1, 0
            self._epoch_state = self.rng.bit_generator.state
            order = self._order()
        return self._batches(order, self._batch)

    def _batches(self, order: np.ndarray, start: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n_batches, bs = len(self), self.batch_size
        for b in range(start, n_batches):
            idx = order[b * bs:(b + 1) * bs]
            x, y = self.images[idx], self.labels[idx]
            if self.transform is not None:
                x = self.transform(x, self.rng)
                if not isinstance(x, np.ndarray) or x.ndim != 4 or len(x) != len(idx):
                    raise TypeError(f"DataLoader: transform {self.transform!r} must return a batch (B, C, H, W) "
                                    f"of {len(idx)} images, got {type(x).__name__}"
                                    f"{f' of shape {x.shape}' if isinstance(x, np.ndarray) else ''}")
            x = self.convert(x)
            self._batch = b + 1
            if self._batch == n_batches:           # roll over before yielding: a checkpoint taken
                self._epoch, self._batch = self._epoch + 1, 0  # after the last batch is "next epoch"
                self._epoch_state = None
            yield x, y

    def state_dict(self) -> dict:
        """Epoch, position in it and the Generator's states: enough to replay the run exactly."""
        return copy.deepcopy({
            "epoch": self._epoch, "batch": self._batch,
            "rng_state": self.rng.bit_generator.state,
            "epoch_rng_state": self._epoch_state if self._batch else self.rng.bit_generator.state,
            "num_samples": len(self.images), "batch_size": self.batch_size,
            "shuffle": self.shuffle, "drop_last": self.drop_last})

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(); the next iteration continues exactly where it was taken."""
        if not isinstance(state, dict):
            raise TypeError(f"DataLoader.load_state_dict: expected the dict of state_dict(), got {type(state).__name__}")
        for key in ("epoch", "batch"):
            check_int("DataLoader.load_state_dict", key, state.get(key), minimum=0)
        for key in ("num_samples", "batch_size", "shuffle", "drop_last"):
            mine = len(self.images) if key == "num_samples" else getattr(self, key)
            if state.get(key) != mine:
                raise ValueError(f"DataLoader.load_state_dict: {key} is {mine} here but {state.get(key)} "
                                 "in the state (a different dataset or loader configuration)")
        if not 0 <= int(state["batch"]) < len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch {state['batch']} out of range 0..{len(self) - 1}")
        self.rng.bit_generator.state = copy.deepcopy(state["rng_state"])
        self._epoch, self._batch = int(state["epoch"]), int(state["batch"])
        self._epoch_state = copy.deepcopy(state["epoch_rng_state"])
        self._resume = self._batch > 0

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.images)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, transform={self.transform!r}, dtype={self.dtype.name})")
