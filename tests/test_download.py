"""convgrad.data downloads against a local HTTP server on 127.0.0.1 (no internet needed):
verified atomic placement, checksum mismatch, server down, mirrors, the CIFAR-10 archive."""
import dataclasses
import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from convgrad.data import ChecksumError, DownloadError, download_file, load_dataset, write_cifar_batch, write_idx
from convgrad.data import download as dl
from convgrad.data.datasets import DATASETS
from convgrad.data.download import parse_checksum

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def sha256(path):
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.endswith("/short"):  # promises more than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """(base URL, served directory, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, httpd.requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    """A URL on a local port that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVGRAD_DATA", raising=False)
    monkeypatch.delenv("CONVGRAD_DATA_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dl, "SYSTEM_DATA_DIRS", [tmp_path / "system"])
    return tmp_path / "cache" / "convgrad"


def serve_mnist(www, name="fashion-mnist", seed=0):
    """Tiny IDX files under www/<name>/; returns ({file: checksum}, arrays)."""
    rng = np.random.default_rng(seed)
    d = www / name
    d.mkdir(parents=True)
    arrays = (rng.integers(0, 256, (9, 28, 28), dtype=np.uint8), rng.integers(0, 10, 9, dtype=np.uint8),
              rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), rng.integers(0, 10, 4, dtype=np.uint8))
    for f, a in zip(MNIST_FILES, arrays):
        write_idx(d / f, a)
    return {f: sha256(d / f) for f in MNIST_FILES}, arrays


def leftovers(d):
    return sorted(p.name for p in Path(d).rglob("*")) if Path(d).exists() else []


# ---- download_file ----------------------------------------------------------------------------
def test_download_file_verified_and_placed(server, tmp_path):
    url, www, _ = server
    (www / "blob").write_bytes(b"hello world" * 1000)
    dest = tmp_path / "out" / "blob"
    assert download_file(f"{url}/blob", dest, sha256(www / "blob")) == dest
    assert dest.read_bytes() == b"hello world" * 1000
    assert leftovers(dest.parent) == ["blob"]  # no temporary file left
    md5 = hashlib.md5(dest.read_bytes()).hexdigest()
    dest.unlink()
    download_file(f"{url}/blob", dest, md5)  # bare 32-digit hex: MD5
    assert dest.is_file() and oct(dest.stat().st_mode & 0o777) == oct(0o644)


def test_download_file_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, www, _ = server
    (www / "blob").write_bytes(b"payload")
    dest = tmp_path / "out" / "blob"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumError) as e:
        download_file(f"{url}/blob", dest, wrong)
    msg = str(e.value)
    assert "checksum mismatch" in msg and "0" * 64 in msg and hashlib.sha256(b"payload").hexdigest() in msg
    assert leftovers(dest.parent) == []


def test_download_file_server_down(dead_url, tmp_path):
    dest = tmp_path / "out" / "blob"
    with pytest.raises(DownloadError, match=f"could not download blob from {dead_url}/blob: .*refused") as e:
        download_file(f"{dead_url}/blob", dest, "0" * 64, hint=" Put it somewhere.")
    assert str(e.value).endswith("Put it somewhere.")
    assert leftovers(dest.parent) == []


def test_download_file_http_error_and_short_read(server, tmp_path):
    url, _, _ = server
    with pytest.raises(DownloadError, match="404"):
        download_file(f"{url}/missing", tmp_path / "out" / "missing", "0" * 64)
    with pytest.raises(DownloadError, match="could not download short"):
        download_file(f"{url}/short", tmp_path / "out" / "short", "0" * 64)
    assert leftovers(tmp_path / "out") == []


def test_parse_checksum():
    h = "ab" * 32
    assert parse_checksum(h) == ("sha256", h) == parse_checksum("SHA256:" + h.upper())
    assert parse_checksum("md5:" + "c" * 32) == ("md5", "c" * 32)
    for bad in ("sha256:" + "a" * 63, "crc32:00000000", "z" * 64, "abc"):
        with pytest.raises(ValueError, match="bad checksum"):
            parse_checksum(bad)


# ---- datasets -----------------------------------------------------------------------------------
def test_load_dataset_downloads_to_cache(server, isolated):
    url, www, requests = server
    sums, arrays = serve_mnist(www)
    ds = load_dataset("fashion-mnist", mirror=url, checksums=sums)
    assert ds.path == isolated / "fashion-mnist"
    assert leftovers(ds.path) == sorted(MNIST_FILES)
    np.testing.assert_array_equal(ds.train.images[:, 0], arrays[0])
    np.testing.assert_array_equal(ds.test.labels, arrays[3])
    assert sorted(requests) == sorted(f"/fashion-mnist/{f}" for f in MNIST_FILES)
    load_dataset("fashion-mnist", mirror=url, checksums=sums)  # cached: no new request
    assert len(requests) == 4


def test_env_mirror_and_partial_cache(server, isolated, monkeypatch):
    url, www, requests = server
    sums, _ = serve_mnist(www, "mnist")
    monkeypatch.setenv("CONVGRAD_DATA_MIRROR", url + "/")
    (isolated / "mnist").mkdir(parents=True)
    for f in MNIST_FILES[:2]:
        (isolated / "mnist" / f).write_bytes((www / "mnist" / f).read_bytes())
    assert len(load_dataset("mnist", checksums=sums).train) == 9
    assert sorted(requests) == sorted(f"/mnist/{f}" for f in MNIST_FILES[2:])


def test_builtin_checksums_enforced(server, isolated):
    url, www, _ = server
    serve_mnist(www)  # not the official bytes, so the official digests must reject them
    with pytest.raises(ChecksumError, match="3aede38d|a04f1713|346e55b9|67da17c7"):
        load_dataset("fashion-mnist", mirror=url)
    assert leftovers(isolated) in ([], ["fashion-mnist"])


def test_dataset_checksum_mismatch_leaves_nothing(server, isolated):
    url, www, _ = server
    sums, _ = serve_mnist(www)
    sums[MNIST_FILES[2]] = "sha256:" + "f" * 64
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", mirror=url, checksums=sums)
    assert MNIST_FILES[2] not in leftovers(isolated)
    assert not [n for n in leftovers(isolated) if n.startswith(".") or n.endswith(".part")]


def test_offline_message(dead_url, isolated):
    with pytest.raises(DownloadError) as e:
        load_dataset("fashion-mnist", mirror=dead_url, timeout=5)
    msg = str(e.value)
    assert msg.startswith(f"could not download train-images-idx3-ubyte.gz from {dead_url}/fashion-mnist/")
    assert "Install the Debian package dataset-fashion-mnist" in msg
    assert str(isolated / "fashion-mnist") in msg and "CONVGRAD_DATA" in msg
    assert leftovers(isolated) in ([], ["fashion-mnist"])
    with pytest.raises(DownloadError) as e:
        load_dataset("mnist", mirror=dead_url, timeout=5)
    assert "Debian" not in str(e.value)


def serve_cifar(www, n=2):
    """A tiny cifar-10-binary.tar.gz under www/cifar-10/; returns ({archive: checksum}, {file: (x, y)})."""
    rng = np.random.default_rng(0)
    buf, expected = io.BytesIO(), {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]:
            p = www / f
            if f.endswith(".bin"):
                expected[f] = (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
                write_cifar_batch(p, *expected[f])
            else:
                p.write_text("airplane\n")
            tar.add(p, arcname=f"cifar-10-batches-bin/{f}")
    (www / "cifar-10").mkdir()
    (www / "cifar-10" / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    return {"cifar-10-binary.tar.gz": "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()}, expected


def test_cifar10_archive_download(server, isolated):
    url, www, _ = server
    sums, expected = serve_cifar(www)
    ds = load_dataset("cifar-10", mirror=url, checksums=sums)
    assert ds.path == isolated / "cifar-10" / "cifar-10-batches-bin"
    assert ds.train.images.shape == (10, 3, 32, 32) and ds.test.labels.shape == (2,)
    np.testing.assert_array_equal(ds.train.images[2:4], expected["data_batch_2.bin"][0])
    np.testing.assert_array_equal(ds.test.labels, expected["test_batch.bin"][1])
    # only the six batches were extracted, and the archive was removed afterwards
    assert leftovers(isolated / "cifar-10") == sorted(["cifar-10-batches-bin"] + list(expected))


def test_cifar10_archive_mismatch_leaves_nothing(server, isolated):
    url, www, _ = server
    serve_cifar(www)
    with pytest.raises(ChecksumError, match="cifar-10-binary.tar.gz"):
        load_dataset("cifar-10", mirror=url, checksums={"cifar-10-binary.tar.gz": "md5:" + "0" * 32})
    assert leftovers(isolated) in ([], ["cifar-10"])


def test_missing_checksum_refused(server, isolated, monkeypatch):
    url, www, requests = server
    serve_mnist(www)
    info = DATASETS["fashion-mnist"]
    monkeypatch.setitem(DATASETS, "fashion-mnist", dataclasses.replace(info, checksums={}))
    with pytest.raises(ValueError, match="no checksum known for train-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", mirror=url)
    assert requests == []


def test_official_urls_tried_in_order(server, dead_url, isolated, monkeypatch):
    url, www, requests = server
    sums, _ = serve_mnist(www, "mnist")
    info = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(info, urls=(dead_url + "/", url + "/mnist/")))
    assert len(load_dataset("mnist", checksums=sums).test) == 4
    assert len(requests) == 4
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(info, urls=(dead_url + "/a/", dead_url + "/b/")))
    (isolated / "mnist" / MNIST_FILES[0]).unlink()
    with pytest.raises(DownloadError, match=f"from any of 2 URLs: {dead_url}/a/.*; {dead_url}/b/.*Put the files"):
        load_dataset("mnist", checksums=sums)
