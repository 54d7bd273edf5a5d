"""Fashion-MNIST, MNIST and CIFAR-10: find (or download) the files, read and validate them.

    ds = load_dataset("fashion-mnist")           # see download.py for where files are looked for
    (x, y), (xt, yt) = ds.train, ds.test         # uint8 (N, 1, 28, 28), int64 (N,)
    ds.classes, ds.mean, ds.std                  # class names, normalisation constants

Checksums: the digests below are those of the *official* downloads and are checked only
on download (files found locally are validated structurally instead; Debian's
Fashion-MNIST .gz files hold the same data but were recompressed, so their bytes differ).
Fashion-MNIST and MNIST SHA-256: as listed by tensorflow-datasets (sizes 26421880 ... and
9912422 ..., the upstream ones); upstream also publishes MD5s (Fashion-MNIST README,
torchvision), given in the comments. CIFAR-10 binary tarball: SHA-256 per tensorflow-datasets,
MD5 c32a1d4ab5d03f1284b67883e8d87530 per the CIFAR page.
"""
from __future__ import annotations

import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .._checks import check_bool, check_real
from .cifar import read_cifar_batch
from .download import (DEFAULT_TIMEOUT, ENV_MIRROR, cache_dir, existing, fetch_first, file_digest, find_dir,
                       parse_checksum, search_dirs)
from .idx import read_idx

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR10_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)

#: Fashion-MNIST's ten class names, in label order.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: MNIST's class names: the digits "0" to "9".
MNIST_CLASSES = tuple(str(i) for i in range(10))
#: CIFAR-10's ten class names, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset: files, official URLs and digests, classes, statistics.

    `mean`/`std` are per channel, of the training images scaled to [0, 1].
    """
    name: str
    files: tuple[str, ...]
    urls: tuple[str, ...]                 # base URLs tried in order
    checksums: Mapping[str, str]          # download file name -> "sha256:<hex>" / "md5:<hex>"
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    subdir: str = ""                      # the files may sit in this subdirectory
    archive: str | None = None            # a single download holding the files
    debian_package: str | None = None


#: The datasets convgrad can find and download: name -> DatasetInfo (files, mirrors, SHA-256 sums,
#: class names, normalisation constants).
DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", MNIST_FILES, ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {  # upstream MD5: 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...
            "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        FASHION_MNIST_CLASSES, (0.2860,), (0.3530,), debian_package="dataset-fashion-mnist"),
    "mnist": DatasetInfo(
        "mnist", MNIST_FILES,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        {  # upstream MD5: f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...
            "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        MNIST_CLASSES, (0.1307,), (0.3081,)),
    "cifar-10": DatasetInfo(
        "cifar-10", CIFAR10_FILES, ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-10-binary.tar.gz": "sha256:c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"},
        CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        subdir="cifar-10-batches-bin", archive="cifar-10-binary.tar.gz"),
}
_ALIASES = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar10": "cifar-10"}

#: Standard normalisation constants (mean, std) per channel, of training images in [0, 1].
NORMALIZATION = {name: (info.mean, info.std) for name, info in DATASETS.items()}


@dataclass(eq=False)
class Split:
    """One split: `images` uint8 (N, C, H, W), `labels` int64 (N,). Unpacks as (images, labels)."""
    images: np.ndarray
    labels: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.images, self.labels))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(eq=False)
class DatasetSplits:
    """The result of load_dataset: train and test splits plus what describes them."""
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    path: Path = field(default=None)  # the directory the files were read from


def dataset_info(name: str) -> DatasetInfo:
    """The DatasetInfo of "fashion-mnist", "mnist" or "cifar-10" (aliases like "cifar10" accepted)."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string (one of {sorted(DATASETS)}), got {name!r} ({type(name).__name__})")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key.replace("-", ""), key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}")
    return DATASETS[key]


def locate(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The directory holding all files of dataset `name` (lookup order: see download.py), else None."""
    info = dataset_info(name)
    return find_dir(info.name, info.files, root, subdirs=(info.subdir, "") if info.subdir else ("",))


def _hint(info: DatasetInfo) -> str:
    where = cache_dir(info.name) / info.subdir if info.subdir else cache_dir(info.name)
    deb = f" Install the Debian package {info.debian_package}, or put" if info.debian_package else " Put"
    return (f"{deb} the files ({', '.join(info.files)}) in {where}, or set CONVGRAD_DATA to a directory "
            f"holding {info.name}/, or set {ENV_MIRROR} to a reachable mirror.")


def fetch(name: str, root: str | os.PathLike | None = None, download: bool = True, *,
          mirror: str | None = None, checksums: Mapping[str, str] | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> Path:
    """The directory holding dataset `name`'s files, downloading them to the cache if needed.

    `mirror` (default $CONVGRAD_DATA_MIRROR) replaces the official URLs: files are fetched
    from ``<mirror>/<name>/<file>``. `checksums` (file name -> "sha256:<hex>", "md5:<hex>" or
    bare hex) overrides the built-in digests. Raises FileNotFoundError when absent and
    `download` is False, DownloadError / ChecksumError when the download fails.
    """
    info = dataset_info(name)
    download = check_bool(f"fetch({info.name!r})", "download", download)
    check_real(f"fetch({info.name!r})", "timeout", timeout, positive=True)
    found = locate(info.name, root)
    if found is not None:
        return found
    if not download:
        dirs = ", ".join(str(d) for d in search_dirs(info.name, root))
        raise FileNotFoundError(f"{info.name}: files {', '.join(info.files)} not found in any of: {dirs}."
                                f"{_hint(info)} Or pass download=True.")
    mirror = mirror or os.environ.get(ENV_MIRROR)
    bases = [f"{mirror.rstrip('/')}/{info.name}/"] if mirror else list(info.urls)
    sums = {**info.checksums, **(checksums or {})}
    target = cache_dir(info.name)
    wanted = [info.archive] if info.archive else list(info.files)
    for f in wanted:
        if f not in sums:
            raise ValueError(f"{info.name}: no checksum known for {f}; pass checksums={{{f!r}: 'sha256:...'}}")
    if info.archive is None:
        for f in info.files:
            if existing(target, f) is None:
                fetch_first([b + f for b in bases], target / f, sums[f], timeout=timeout, hint=_hint(info))
        return target
    archive = target / info.archive
    if not (archive.is_file() and _matches(archive, sums[info.archive])):
        fetch_first([b + info.archive for b in bases], archive, sums[info.archive], timeout=timeout,
                    hint=_hint(info))
    out = target / info.subdir
    _extract(archive, [f"{info.subdir}/{f}" for f in info.files], out)
    archive.unlink()
    return out


def _matches(path: Path, checksum: str) -> bool:
    algo, digest = parse_checksum(checksum)
    return file_digest(path, algo) == digest


def _extract(archive: Path, members: list[str], out: Path) -> None:
    """Extract the named regular-file members of a tar archive into `out` (flat), each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        for name in members:
            try:
                member = tar.getmember(name)
            except KeyError:
                raise ValueError(f"{archive}: expected a member {name}, found none") from None
            if not member.isfile():
                raise ValueError(f"{archive}: expected {name} to be a regular file, got type {member.type!r}")
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{Path(name).name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f, tar.extractfile(member) as src:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        f.write(chunk)
                os.chmod(tmp, 0o644)
                os.replace(tmp, out / Path(name).name)
            except BaseException:
                os.remove(tmp)
                raise


def _read_mnist_pair(images_path: Path, labels_path: Path) -> Split:
    x, y = read_idx(images_path), read_idx(labels_path)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}")
    if y.dtype != np.uint8 or y.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,), got {y.dtype} {y.shape}")
    if len(y) != len(x):
        raise ValueError(f"{labels_path}: expected {len(x)} labels (one per image of {images_path.name}), "
                         f"got {len(y)}")
    if y.size and y.max() >= 10:
        raise ValueError(f"{labels_path}: expected labels 0..9, got {y.max()}")
    return Split(x[:, None], y.astype(np.int64))


def _read_cifar(d: Path, files: tuple[str, ...]) -> Split:
    parts = [read_cifar_batch(d / f) for f in files]
    return Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True, *,
                 mirror: str | None = None, checksums: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> DatasetSplits:
    """Load "fashion-mnist", "mnist" or "cifar-10" -> DatasetSplits.

    train/test images are uint8 (N, 1, 28, 28) or (N, 3, 32, 32) in 0..255; labels int64 (N,)
    in 0..9. Files are found or downloaded by fetch() (same arguments); each is validated and
    a ValueError names the file when it is malformed.
    """
    info = dataset_info(name)
    d = fetch(info.name, root, download, mirror=mirror, checksums=checksums, timeout=timeout)
    if info.name == "cifar-10":
        train, test = _read_cifar(d, info.files[:5]), _read_cifar(d, info.files[5:])
    else:
        tr_x, tr_y, te_x, te_y = (existing(d, f) for f in info.files)
        train, test = _read_mnist_pair(tr_x, tr_y), _read_mnist_pair(te_x, te_y)
    return DatasetSplits(info.name, train, test, info.classes, info.mean, info.std, d)


def load_fashion_mnist(root=None, download: bool = True, **kwargs) -> DatasetSplits:
    """load_dataset("fashion-mnist", ...): uint8 (60000|10000, 1, 28, 28) images, int64 labels."""
    return load_dataset("fashion-mnist", root, download, **kwargs)


def load_mnist(root=None, download: bool = True, **kwargs) -> DatasetSplits:
    """load_dataset("mnist", ...): uint8 (60000|10000, 1, 28, 28) images, int64 labels."""
    return load_dataset("mnist", root, download, **kwargs)


def load_cifar10(root=None, download: bool = True, **kwargs) -> DatasetSplits:
    """load_dataset("cifar-10", ...): uint8 (50000|10000, 3, 32, 32) images, int64 labels."""
    return load_dataset("cifar-10", root, download, **kwargs)
