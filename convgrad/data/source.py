"""The data of a run, from one recorded description: the tools rebuild exactly what training used.

    spec = DataSpec(data="fashion-mnist", val_split=0.1, seed=0)     # or data="path/to/folder"
    d = load_run_data(spec)        # d.train, d.val (or None), d.test: Splits; d.classes, d.mean, d.std
    d.info                         # JSON-able: the spec plus classes, mean, std, background, image shape

A named dataset (fashion-mnist, mnist, cifar-10) uses its standard normalisation; an image
folder (folder.py) uses the per-channel mean and std of its training images. The validation
split is a seeded random `val_split` fraction of the training images, held out of training.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .._checks import check_int, check_real
from .datasets import DATASETS, Split, dataset_info, load_dataset
from .folder import load_image_folder
from .images import border_mean
from .loader import channel_stats


@dataclass
class DataSpec:
    """What a run's data is: a dataset or folder and how it is cut and preprocessed (recorded in the run)."""
    data: str = "fashion-mnist"           # a dataset name or an image folder
    data_root: str | None = None          # where a named dataset's files are
    image_size: int | None = None         # folders: resize to this (None: the images' own size)
    channels: int | None = None           # folders: 1 or 3 (None: grey when every image is)
    fit: str = "pad"                      # folders: how non-square images become square (pad | crop)
    val_split: float = 0.0
    seed: int = 0
    limit_train: int | None = None
    limit_test: int | None = None


@dataclass(eq=False)
class RunData:
    """A run's splits (uint8 images, int64 labels), class names, normalisation and recorded description."""
    train: Split
    val: Split | None
    test: Split
    classes: list
    mean: tuple
    std: tuple
    info: dict = field(default_factory=dict)


def is_named(data: str) -> bool:
    try:
        dataset_info(data)
        return True
    except ValueError:
        return False


def check_data(data: str) -> str | None:
    """An error message when `data` is neither a dataset name nor a directory, else None."""
    if not data.strip():
        return "must not be empty"
    if is_named(data) or os.path.isdir(data):
        return None
    return f"{data!r} is neither a dataset ({', '.join(sorted(DATASETS))}) nor a directory of class folders"


def split_validation(images, labels, fraction: float, seed: int):
    """(train Split, val Split): a seeded random `fraction` of the images held out, order kept."""
    fraction = check_real("split_validation", "fraction", fraction, minimum=0.0, below=1.0)
    seed = check_int("split_validation", "seed", seed, minimum=0)
    n = len(labels)
    n_val = int(round(fraction * n))
    if not 1 <= n_val < n:
        raise ValueError(f"--val-split {fraction:g} of {n} training images leaves {n_val} for validation "
                         f"and {n - n_val} for training; both need at least one")
    order = np.random.default_rng(seed).permutation(n)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return Split(images[train], labels[train]), Split(images[val], labels[val])


def load_run_data(spec: DataSpec) -> RunData:
    """The train (minus the validation split), validation and test Splits a DataSpec describes, with
    classes, per-channel mean/std and `info` (what a run records to rebuild them)."""
    if is_named(spec.data):
        ds = load_dataset(spec.data, root=spec.data_root)
        (train_x, train_y), (test_x, test_y) = ds.train, ds.test
        classes, mean, std, source = list(ds.classes), tuple(ds.mean), tuple(ds.std), ds.name
    else:
        (train_x, train_y), (test_x, test_y), classes, _ = load_image_folder(
            spec.data, spec.image_size, spec.channels, spec.fit)
        mean = std = None
        source = os.path.abspath(spec.data)
    if spec.limit_train:
        train_x, train_y = train_x[:spec.limit_train], train_y[:spec.limit_train]
    if spec.limit_test:
        test_x, test_y = test_x[:spec.limit_test], test_y[:spec.limit_test]
    train, val = Split(train_x, train_y), None
    if spec.val_split:
        train, val = split_validation(train_x, train_y, spec.val_split, spec.seed)
    if mean is None:
        m, s = channel_stats(train.images)
        mean, std = tuple(float(v) for v in m), tuple(max(float(v), 1e-6) for v in s)
    info = {**asdict(spec), "data": source, "classes": classes, "mean": list(mean), "std": list(std),
            "in_channels": int(train.images.shape[1]), "image_size": int(train.images.shape[2]),
            "background": border_mean(train.images)}
    return RunData(train, val, Split(test_x, test_y), classes, mean, std, info)


def spec_from_info(info: dict, data: str | None = None, data_root: str | None = None) -> DataSpec:
    """The DataSpec a run recorded (its `data` info), optionally with another dataset or root."""
    fields = DataSpec.__dataclass_fields__
    spec = DataSpec(**{k: v for k, v in info.items() if k in fields})
    if data is not None:
        spec.data = data
    if data_root is not None:
        spec.data_root = data_root
    return spec
