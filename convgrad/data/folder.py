"""A folder of images as a dataset (the ImageFolder convention): one subfolder per class.

    DIR/<class>/*.png|jpg|jpeg                   all images; a seeded test_fraction is held out as test
    DIR/train/<class>/..., DIR/test/<class>/...  given splits

    splits = load_image_folder("photos", image_size=64)     # uint8 (N, C, 64, 64), classes by folder name

Classes are the subfolder names in sorted order. Images are grey (C = 1) when every image is,
else RGB (C = 3), unless `channels` says; they keep their size when all share one square size,
else `image_size` is required (non-square ones are padded or cropped, see images.py).
"""
from __future__ import annotations

import os

import numpy as np

from .._checks import check_real
from .images import ImageError, check_image_options, is_grey, open_image, to_pixels

EXTENSIONS = (".png", ".jpg", ".jpeg")
TEST_SEED = 0                      # the held-out test images of a plain folder do not move with --seed


class FolderError(ValueError):
    """A folder that is not a usable image dataset."""


def class_folders(root: str) -> list:
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))


def has_splits(root: str) -> bool:
    return all(os.path.isdir(os.path.join(root, s)) for s in ("train", "test"))


def list_images(root: str, classes: list | None = None) -> tuple[list, np.ndarray, list]:
    """(image paths, labels (N,) int64, class names) of root/<class>/*.{png,jpg,jpeg}."""
    if not os.path.isdir(root):
        raise FolderError(f"{root} is not a directory")
    found = class_folders(root)
    classes = classes or found
    if not classes:
        raise FolderError(f"{root} has no class subfolders (expected {root}/<class>/<image>.png)")
    if len(classes) < 2:                 # one class: every prediction right, nothing learnt
        raise FolderError(f"{root} has one class subfolder ({classes[0]!r}); a classifier needs at least 2 "
                          f"(expected {root}/<class>/<image>.png for each class)")
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise FolderError(f"{root} has class folders {unknown} that the training split does not have")
    paths, labels = [], []
    for k, name in enumerate(classes):
        d = os.path.join(root, name)
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(EXTENSIONS)) if os.path.isdir(d) else []
        paths += [os.path.join(d, f) for f in files]
        labels += [k] * len(files)
    if not paths:
        raise FolderError(f"{root} has no PNG/JPEG images in its class folders {classes}")
    return paths, np.asarray(labels, dtype=np.int64), list(classes)


def read_images(paths: list, image_size: int | None = None, channels: int | None = None,
                fit: str = "pad") -> tuple[np.ndarray, int, int]:
    """uint8 (N, C, S, S) and the (channels, size) used; see the module docstring."""
    images = []
    for p in paths:
        try:
            images.append(open_image(p))
        except ImageError as exc:
            raise FolderError(str(exc)) from exc
    if channels is None:
        channels = 1 if all(is_grey(im) for im in images) else 3
    if image_size is None:
        first = images[0].size
        odd = next(((p, im.size) for p, im in zip(paths, images) if im.size != first), None)
        if odd is not None or first[0] != first[1]:
            sizes = f"{paths[0]} is {first[0]}x{first[1]}" + (f", {odd[0]} is {odd[1][0]}x{odd[1][1]}" if odd else "")
            raise FolderError(f"the images are not all of one square size ({sizes}): pass --image-size")
        image_size = first[0]
    out = np.stack([to_pixels(im, channels, image_size, fit) for im in images])
    return out, channels, image_size


def load_image_folder(root: str, image_size: int | None = None, channels: int | None = None, fit: str = "pad",
                      test_fraction: float = 0.2):
    """((train images, labels), (test images, labels), classes, (channels, image_size)) of a folder."""
    check_image_options("load_image_folder", channels, image_size, fit)
    test_fraction = check_real("load_image_folder", "test_fraction", test_fraction, minimum=0.0, below=1.0)
    if has_splits(root):
        train_paths, train_y, classes = list_images(os.path.join(root, "train"))
        test_paths, test_y, _ = list_images(os.path.join(root, "test"), classes)
    else:
        paths, labels, classes = list_images(root)
        n_test = int(round(test_fraction * len(paths)))
        if not 1 <= n_test < len(paths):
            raise FolderError(f"{root}: {len(paths)} images cannot give a test split of {test_fraction:g} "
                              f"(put train/ and test/ subfolders there, or add images)")
        order = np.random.default_rng(TEST_SEED).permutation(len(paths))
        test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
        train_paths, train_y = [paths[i] for i in train_idx], labels[train_idx]
        test_paths, test_y = [paths[i] for i in test_idx], labels[test_idx]
    train_x, channels, image_size = read_images(train_paths, image_size, channels, fit)
    test_x, _, _ = read_images(test_paths, image_size, channels, fit)
    return (train_x, train_y), (test_x, test_y), classes, (channels, image_size)
