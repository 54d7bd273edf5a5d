"""Batch augmentations, vectorised over the batch (no Python loop over images or pixels).

A transform is a callable ``t(x, rng) -> x`` taking a batch x of shape (B, C, H, W) (any
dtype; the DataLoader passes the raw uint8 batch, before scaling and normalisation, as
torchvision does) and a numpy Generator, and returning a batch of the same shape and dtype.
All randomness comes from `rng`, so a loader's state_dict replays it exactly.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import MAX_IMAGE_SIZE, check_int, check_real

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def check_batch(x, rng, where: str) -> None:
    """A transform's arguments: an image batch (B, C, H, W) and a numpy Generator."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise TypeError(f"{where}: expected a batch of images as an ndarray (B, C, H, W), got "
                        f"{type(x).__name__}{f' of shape {x.shape}' if isinstance(x, np.ndarray) else ''}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{where}: expected rng as a numpy.random.Generator, got {type(rng).__name__}")


class RandomCrop:
    """Zero-pad by `padding` on every side, then crop back to (H, W) at a random offset per image.

    Offsets are uniform in 0..2*padding along each axis, drawn as rng.integers(0, 2p+1, (B, 2)).
    """

    def __init__(self, padding: int = 4):
        self.padding = check_int("RandomCrop", "padding", padding, minimum=0, maximum=MAX_IMAGE_SIZE)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_batch(x, rng, "RandomCrop")
        p = self.padding
        b, c, h, w = x.shape
        offsets = rng.integers(0, 2 * p + 1, size=(b, 2))
        if p == 0:
            return x
        padded = np.zeros((b, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
        padded[:, :, p:p + h, p:p + w] = x
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (B, C, 2p+1, 2p+1, H, W), a view
        return windows[np.arange(b), :, offsets[:, 0], offsets[:, 1]]  # (B, C, H, W)

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability `p` (drawn as rng.random(B) < p)."""

    def __init__(self, p: float = 0.5):
        self.p = check_real("RandomHorizontalFlip", "p", p, minimum=0.0, maximum=1.0)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        check_batch(x, rng, "RandomHorizontalFlip")
        flip = rng.random(x.shape[0]) < self.p
        return np.where(flip[:, None, None, None], x[..., ::-1], x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms in order, each with the same rng."""

    def __init__(self, transforms: Sequence[Transform]):
        if isinstance(transforms, (str, bytes)) or not hasattr(transforms, "__iter__"):
            raise TypeError(f"Compose: expected a sequence of transforms, got {type(transforms).__name__}")
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] must be a callable t(batch, rng), got {t!r} "
                                f"({type(t).__name__})")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def standard_augmentation(padding: int = 4, flip: bool = True) -> Compose:
    """RandomCrop(padding) then (if `flip`) RandomHorizontalFlip(0.5): the usual CIFAR recipe."""
    return Compose([RandomCrop(padding)] + ([RandomHorizontalFlip(0.5)] if flip else []))
