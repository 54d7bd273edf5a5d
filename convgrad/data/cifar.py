"""CIFAR-10, binary version: fixed-length records, read with NumPy (never unpickled).

Each record of ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin`` is
1 label byte followed by 3072 pixel bytes: the 1024 red, then green, then blue values
of a 32x32 image in row-major order, i.e. exactly one (3, 32, 32) uint8 array.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # 3073
NUM_CLASSES = 10


def parse_cifar_batch(buf: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Decode CIFAR-10 binary records -> (images uint8 (N, 3, 32, 32), labels int64 (N,))."""
    n = len(buf)
    if n and buf[:1] == b"\x80":
        raise ValueError(f"{name}: expected the CIFAR-10 *binary* version (records of {RECORD_BYTES} bytes), "
                         "got what looks like a Python pickle (the 'python version'); it is never unpickled")
    if n == 0 or n % RECORD_BYTES:
        raise ValueError(f"{name}: expected a positive multiple of the CIFAR-10 record length {RECORD_BYTES} "
                         f"(1 label byte + 3072 pixel bytes), got {n} bytes "
                         f"({n // RECORD_BYTES} whole records and {n % RECORD_BYTES} extra bytes)")
    records = np.frombuffer(buf, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise ValueError(f"{name}: expected label bytes 0..{NUM_CLASSES - 1}, got {labels[bad[0]]} in record "
                         f"{bad[0]} ({bad.size} bad records; wrong file or corrupt data?)")
    images = records[:, 1:].reshape((-1,) + IMAGE_SHAPE).copy()
    return images, labels


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch file -> (images uint8 (N, 3, 32, 32), labels int64 (N,))."""
    return parse_cifar_batch(Path(path).read_bytes(), name=str(path))


def write_cifar_batch(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write uint8 images (N, 3, 32, 32) and labels (N,) in 0..9 as a CIFAR-10 binary batch file."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"write_cifar_batch: expected uint8 images of shape (N, 3, 32, 32), "
                         f"got {images.dtype} {images.shape}")
    if labels.shape != images.shape[:1] or labels.min(initial=0) < 0 or labels.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"write_cifar_batch: expected {images.shape[0]} labels in 0..9, got shape {labels.shape}")
    records = np.empty((images.shape[0], RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(images.shape[0], -1)
    path = Path(path)
    path.write_bytes(records.tobytes())
    return path
