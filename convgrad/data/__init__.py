"""Datasets and batching: IDX / CIFAR-10 readers, lookup and verified download, DataLoader.

For example::

    from convgrad.data import load_dataset, DataLoader, standard_augmentation
    ds = load_dataset("fashion-mnist")                  # uint8 (N, 1, 28, 28), int64 (N,)
    train = DataLoader(*ds.train, 64, seed=0, mean=ds.mean, std=ds.std,
                       transform=standard_augmentation(padding=4))
    test = DataLoader(*ds.test, 1000, shuffle=False, mean=ds.mean, std=ds.std)
    d = load_run_data(DataSpec("path/to/images", image_size=64, val_split=0.1))   # a folder of class folders
"""
from .cifar import read_cifar_batch, write_cifar_batch
from .datasets import (CIFAR10_CLASSES, DATASETS, FASHION_MNIST_CLASSES, MNIST_CLASSES, NORMALIZATION,
                       DatasetInfo, DatasetSplits, Split, dataset_info, fetch, load_cifar10, load_dataset,
                       load_fashion_mnist, load_mnist, locate)
from .download import ChecksumError, DownloadError, cache_dir, download_file, search_dirs
from .idx import read_idx, write_idx
from .loader import DataLoader, channel_stats
from .transforms import Compose, RandomCrop, RandomHorizontalFlip, standard_augmentation
from .folder import load_image_folder
from .images import load_image
from .source import DataSpec, RunData, load_run_data

__all__ = [
    "read_idx", "write_idx", "read_cifar_batch", "write_cifar_batch",
    "load_dataset", "load_fashion_mnist", "load_mnist", "load_cifar10", "fetch", "locate",
    "dataset_info", "DatasetInfo", "DatasetSplits", "Split", "DATASETS", "NORMALIZATION",
    "FASHION_MNIST_CLASSES", "MNIST_CLASSES", "CIFAR10_CLASSES",
    "cache_dir", "search_dirs", "download_file", "DownloadError", "ChecksumError",
    "DataLoader", "channel_stats", "Compose", "RandomCrop", "RandomHorizontalFlip", "standard_augmentation",
    "load_image_folder", "load_image", "DataSpec", "RunData", "load_run_data",
]
