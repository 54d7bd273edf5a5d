"""convgrad.data: IDX / CIFAR readers on generated files (valid and corrupt), dataset lookup,
the DataLoader (batching, seeding, normalisation, augmentation, exact resume)."""
import gzip
import time
from pathlib import Path

import numpy as np
import pytest

import convgrad
from convgrad.data import (CIFAR10_CLASSES, FASHION_MNIST_CLASSES, NORMALIZATION, Compose, DataLoader,
                           RandomCrop, RandomHorizontalFlip, channel_stats, dataset_info, load_dataset, locate,
                           read_cifar_batch, read_idx, search_dirs, standard_augmentation, write_cifar_batch,
                           write_idx)
from convgrad.data import download as dl
from convgrad.data.idx import encode_idx

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def make_mnist_dir(d, n_train=12, n_test=5, seed=0, gz=True):
    """Write a tiny MNIST-format dataset into d; returns (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))
    for name, a in zip(MNIST_FILES, arrays):
        write_idx(d / (name if gz else name[:-3]), a)
    return arrays


def make_cifar_dir(d, n=4, seed=0):
    rng = np.random.default_rng(seed)
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for f in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x, y = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)
        write_cifar_batch(d / f, x, y)
        out[f] = (x, y)
    return out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No CONVGRAD_DATA, a private cache, an empty system directory."""
    monkeypatch.delenv("CONVGRAD_DATA", raising=False)
    monkeypatch.delenv("CONVGRAD_DATA_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dl, "SYSTEM_DATA_DIRS", [tmp_path / "system"])
    return tmp_path


# ---- IDX ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_roundtrip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 5).reshape(2, 3, 5) - 7).astype(dtype)
    if dtype == "uint8":
        a = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / name, a)
    raw = (tmp_path / name).read_bytes()
    assert raw.startswith(b"\x1f\x8b") == name.endswith(".gz")
    b = read_idx(tmp_path / name)
    assert b.dtype == a.dtype and b.dtype.isnative and b.shape == a.shape and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_idx_gzip_detected_by_magic_not_name(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain.gz", a, compress=False)
    write_idx(tmp_path / "packed", a, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed"), a)


def test_idx_header_bytes():
    assert encode_idx(np.zeros((2, 3), np.uint8))[:12] == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    assert encode_idx(np.array([1], np.int32))[8:] == b"\x00\x00\x00\x01"  # big-endian data
    with pytest.raises(TypeError, match="uint16"):
        encode_idx(np.zeros(3, np.uint16))


GOOD = encode_idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
CORRUPTIONS = {
    "too short": (GOOD[:3], "too short"),
    "bad magic": (b"\x12\x34" + GOOD[2:], "bad IDX magic"),
    "dtype code": (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX data type code"),
    "zero dims": (GOOD[:3] + b"\x00" + GOOD[4:], "at least 1 dimension"),
    "header": (GOOD[:10], "truncated IDX header"),
    "payload": (GOOD[:-1], "truncated IDX payload"),
    "trailing": (GOOD + b"\x00\x00", "trailing garbage"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
@pytest.mark.parametrize("compressed", [False, True])
def test_idx_corrupt(tmp_path, kind, compressed):
    data, phrase = CORRUPTIONS[kind]
    path = tmp_path / f"bad-{kind.replace(' ', '_')}.idx"
    path.write_bytes(gzip.compress(data) if compressed else data)
    with pytest.raises(ValueError, match=phrase) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "expected" in msg and "got" in msg


@pytest.mark.parametrize("kind", ["truncated", "flipped", "bad crc"])
def test_idx_corrupt_gzip(tmp_path, kind):
    z = bytearray(gzip.compress(encode_idx(np.arange(4000, dtype=np.int32))))
    if kind == "truncated":
        z = z[: len(z) // 2]
    elif kind == "flipped":
        z[15:40] = b"\xff" * 25
    else:
        z[-8] ^= 0xFF
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(z))
    with pytest.raises(ValueError, match="corrupt gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


# ---- CIFAR ----------------------------------------------------------------------------------
def test_cifar_roundtrip_layout(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8), np.array([0, 9, 4])
    write_cifar_batch(tmp_path / "b.bin", x, y)
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 3 * 3073 and raw[3073] == 9 and raw[1:1025] == x[0, 0].tobytes()  # label, then R plane
    x2, y2 = read_cifar_batch(tmp_path / "b.bin")
    assert x2.dtype == np.uint8 and x2.shape == (3, 3, 32, 32) and y2.dtype == np.int64
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("kind,data,phrase", [
    ("short record", bytes(3073 * 2 - 1), "multiple of the CIFAR-10 record length 3073"),
    ("long record", bytes(3073 + 5), "5 extra bytes"),
    ("empty", b"", "got 0 bytes"),
    ("label", bytes([3]) + bytes(3072) + bytes([12]) + bytes(3072), "label bytes 0..9, got 12 in record 1"),
    ("pickle", b"\x80\x02}q\x00" + bytes(3068), "pickle"),
])
def test_cifar_corrupt(tmp_path, kind, data, phrase):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=phrase) as e:
        read_cifar_batch(path)
    assert str(path) in str(e.value) and "expected" in str(e.value)


# ---- datasets and lookup ----------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_root(isolated, gz):
    xtr, ytr, xte, yte = make_mnist_dir(isolated / "mine", gz=gz)
    ds = load_dataset("fashion-mnist", root=isolated / "mine", download=False)
    assert ds.train.images.shape == (12, 1, 28, 28) and ds.train.images.dtype == np.uint8
    assert ds.train.labels.dtype == np.int64 and ds.test.images.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(ds.train.images[:, 0], xtr)
    np.testing.assert_array_equal(ds.test.labels, yte)
    assert ds.classes == FASHION_MNIST_CLASSES and (ds.mean, ds.std) == ((0.2860,), (0.3530,))
    x, y = ds.train  # unpacks
    assert len(ds.train) == 12 and x is ds.train.images
    assert load_dataset("mnist", root=isolated / "mine", download=False).classes[3] == "3"


def test_load_from_root_parent(isolated):
    make_mnist_dir(isolated / "data" / "mnist")
    assert load_dataset("mnist", root=isolated / "data", download=False).path == isolated / "data" / "mnist"


@pytest.mark.parametrize("bad,phrase", [
    ("shape", "expected uint8 images of shape \\(N, 28, 28\\)"),
    ("count", "expected 12 labels"),
    ("label", "expected labels 0..9"),
    ("dtype", "expected uint8 labels"),
])
def test_mnist_validation(isolated, bad, phrase):
    d = isolated / "m"
    make_mnist_dir(d)
    if bad == "shape":
        write_idx(d / MNIST_FILES[0], np.zeros((12, 27, 28), np.uint8))
    elif bad == "count":
        write_idx(d / MNIST_FILES[1], np.zeros(11, np.uint8))
    elif bad == "label":
        write_idx(d / MNIST_FILES[1], np.full(12, 10, np.uint8))
    else:
        write_idx(d / MNIST_FILES[1], np.zeros(12, np.int32))
    with pytest.raises(ValueError, match=phrase) as e:
        load_dataset("mnist", root=d, download=False)
    assert str(d) in str(e.value)


@pytest.mark.parametrize("sub", [True, False])
def test_load_cifar10(isolated, sub):
    d = isolated / "c"
    batches = make_cifar_dir(d / "cifar-10-batches-bin" if sub else d)
    ds = load_dataset("cifar10", root=d, download=False)
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (4, 3, 32, 32)
    assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train.images[4:8], batches["data_batch_2.bin"][0])
    np.testing.assert_array_equal(ds.test.labels, batches["test_batch.bin"][1])
    assert ds.classes == CIFAR10_CLASSES and len(ds.mean) == 3 == len(ds.std)


def test_cifar_bad_record_length_named(isolated):
    d = isolated / "c"
    make_cifar_dir(d)
    (d / "data_batch_3.bin").write_bytes((d / "data_batch_3.bin").read_bytes()[:-1])
    with pytest.raises(ValueError, match="data_batch_3.bin.*record length 3073"):
        load_dataset("cifar-10", root=d, download=False)


def test_lookup_order(isolated, monkeypatch):
    name = "mnist"
    root, env = isolated / "root", isolated / "env"
    cache, system = isolated / "cache" / "convgrad" / name, isolated / "system" / name
    monkeypatch.setenv("CONVGRAD_DATA", str(env))
    for n, d in zip((1, 2, 3, 4), (root, env / name, cache, system)):
        make_mnist_dir(d, n_train=n)
    assert search_dirs(name, root) == [root, root / name, env / name, cache, system]

    def n_train():
        return len(load_dataset(name, root=root, download=False).train)

    assert n_train() == 1
    assert locate(name) == env / name          # without root: the env var's directory
    (root / MNIST_FILES[2]).unlink()           # an incomplete directory does not count
    assert n_train() == 2
    monkeypatch.delenv("CONVGRAD_DATA")
    assert n_train() == 3
    (cache / MNIST_FILES[0]).unlink()
    assert n_train() == 4
    (system / MNIST_FILES[3]).unlink()
    assert locate(name, root) is None


def test_xdg_default(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dl.cache_dir("mnist") == tmp_path / ".cache" / "convgrad" / "mnist"


def test_not_found_without_download(isolated):
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("fashion-mnist", download=False)
    msg = str(e.value)
    assert "dataset-fashion-mnist" in msg and "CONVGRAD_DATA" in msg and str(isolated / "cache") in msg


def test_dataset_names_and_constants():
    assert dataset_info("Fashion_MNIST").name == "fashion-mnist" == dataset_info("fashionmnist").name
    assert dataset_info("CIFAR-10").name == "cifar-10"
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("imagenet")
    assert NORMALIZATION["mnist"] == ((0.1307,), (0.3081,))
    assert NORMALIZATION["fashion-mnist"] == ((0.2860,), (0.3530,))
    m, s = NORMALIZATION["cifar-10"]
    assert len(m) == len(s) == 3


@pytest.mark.skipif(not all((REAL_FMNIST / f).is_file() for f in MNIST_FILES),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    ds = load_dataset("fashion-mnist", root=REAL_FMNIST, download=False)
    assert ds.train.images.shape == (60000, 1, 28, 28) and ds.test.images.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.train.labels), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.test.labels), np.full(10, 1000))
    (m,), (s,) = channel_stats(ds.train.images)
    assert abs(m - 0.2860) < 1e-4 and abs(s - 0.3530) < 1e-4


# ---- DataLoader ------------------------------------------------------------------------------
def toy(n=10, c=3, h=6, w=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, c, h, w), dtype=np.uint8), np.arange(n) % 7


def test_loader_batches_cover_epoch():
    x, y = toy(10)
    loader = DataLoader(x, y, 4, seed=0, normalize=False)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = np.concatenate([b[1] for b in batches])
    assert labels.dtype == np.int64 and sorted(labels) == sorted(y)
    xs = np.concatenate([b[0] for b in batches])
    assert xs.dtype == np.float32 and xs.shape == (10, 3, 6, 5)
    assert len(DataLoader(x, y, 4, drop_last=True)) == 2
    assert [b[0].shape[0] for b in DataLoader(x, y, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="no batch"):
        DataLoader(x, y, 11, drop_last=True)
    with pytest.raises(ValueError, match="labels of shape"):
        DataLoader(x, y[:5], 4)


def test_loader_shuffle_reproducible():
    x, y = toy(50)

    def orders(seed, epochs=2, shuffle=True):
        loader = DataLoader(x, np.arange(50), 8, shuffle=shuffle, seed=seed)
        return [np.concatenate([b[1] for b in loader]) for _ in range(epochs)]

    a, b, c = orders(3), orders(3), orders(4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(orders(0, shuffle=False)[1], np.arange(50))


def test_loader_normalisation():
    x, y = toy(20)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    xb, _ = next(iter(DataLoader(x, y, 20, shuffle=False, mean=mean, std=std)))
    ref = (x / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    assert xb.dtype == np.float32
    np.testing.assert_allclose(xb, ref, rtol=1e-5, atol=1e-5)
    # computed statistics: the batch of the whole set has mean 0, std 1 per channel
    loader = DataLoader(x, y, 20, shuffle=False, dtype=np.float64)
    xb, _ = next(iter(loader))
    assert xb.dtype == np.float64
    np.testing.assert_allclose(xb.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(xb.std(axis=(0, 2, 3)), 1, atol=1e-12)
    m, s = channel_stats(x)
    np.testing.assert_allclose(m, (x / 255).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(s, (x / 255).std(axis=(0, 2, 3)), rtol=1e-12)
    xb, _ = next(iter(DataLoader(x, y, 20, shuffle=False, normalize=False)))
    np.testing.assert_allclose(xb, x / 255, rtol=1e-6)
    xb, _ = next(iter(DataLoader(x[:, :1], y, 20, shuffle=False, mean=0.5, std=0.25)))  # scalars broadcast
    np.testing.assert_allclose(xb, (x[:, :1] / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-5)


def test_loader_default_dtype():
    x, y = toy(4)
    convgrad.set_default_dtype(np.float64)
    try:
        assert next(iter(DataLoader(x, y, 2)))[0].dtype == np.float64
    finally:
        convgrad.set_default_dtype(np.float32)


def test_random_crop_matches_reference():
    x, _ = toy(16, c=2, h=7, w=9)
    p = 3
    out = RandomCrop(p)(x, np.random.default_rng(5))
    offsets = np.random.default_rng(5).integers(0, 2 * p + 1, size=(16, 2))
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ref = np.stack([padded[i, :, oy:oy + 7, ox:ox + 9] for i, (oy, ox) in enumerate(offsets)])
    assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)
    assert len(np.unique(offsets, axis=0)) > 1
    np.testing.assert_array_equal(RandomCrop(0)(x, np.random.default_rng(0)), x)


def test_random_flip():
    x, _ = toy(32)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)
    out = RandomHorizontalFlip(0.5)(x, np.random.default_rng(9))
    flip = np.random.default_rng(9).random(32) < 0.5
    assert 0 < flip.sum() < 32
    np.testing.assert_array_equal(out[flip], x[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], x[~flip])


def test_transform_runs_before_normalisation():
    x, y = toy(8, c=1)
    loader = DataLoader(x, y, 8, shuffle=False, seed=0, mean=0.5, std=0.5, transform=RandomCrop(2))
    xb, _ = next(iter(loader))
    # padded pixels are black in image space: (0/255 - 0.5)/0.5 = -1
    assert np.isclose(xb, -1).any()
    assert isinstance(standard_augmentation(), Compose)


@pytest.mark.parametrize("stop_after", [0, 3, 5, 6, 9])
def test_loader_resume_exactly(stop_after):
    x, y = toy(23, c=1, h=8, w=8)

    def make():
        return DataLoader(x, y, 4, seed=11, transform=standard_augmentation(padding=2))

    full = list(make_iter_epochs(make(), 3))
    loader = make()
    got = []
    it_epochs = make_iter_epochs(loader, 3)
    for _ in range(stop_after):
        got.append(next(it_epochs))
    state = loader.state_dict()
    resumed = make()  # a fresh process: same data and configuration, then the checkpoint
    resumed.load_state_dict(state)
    remaining_epochs = 3 - state["epoch"]
    got += list(make_iter_epochs(resumed, remaining_epochs))
    assert len(got) == len(full) == 18
    for (xa, ya), (xb, yb) in zip(full, got):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert resumed.epoch == 3


def make_iter_epochs(loader, epochs):
    for _ in range(epochs):
        yield from loader


def test_loader_state_dict_validation_and_abandon():
    x, y = toy(10)
    loader = DataLoader(x, y, 4, seed=0)
    it = iter(loader)
    next(it)
    assert loader.state_dict()["batch"] == 1 and loader.epoch == 0
    list(loader)                      # abandoning the partial epoch starts a new one
    assert loader.epoch == 2 and loader.state_dict()["batch"] == 0
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, y, 5).load_state_dict(loader.state_dict())
    with pytest.raises(ValueError, match="num_samples"):
        DataLoader(x[:9], y[:9], 4).load_state_dict(loader.state_dict())


def test_loader_throughput():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (6400, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6400)
    for transform, minimum in ((None, 1000), (standard_augmentation(4), 300)):
        loader = DataLoader(x, y, 64, seed=0, transform=transform)
        t = time.perf_counter()
        n = sum(1 for _ in loader)
        rate = n / (time.perf_counter() - t)
        assert rate > minimum, f"{rate:.0f} batches/s with transform={transform}"
