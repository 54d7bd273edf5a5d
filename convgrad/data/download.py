"""Where dataset files are looked for, and verified atomic downloads (urllib only).

Lookup order for the files of dataset `name` (the first directory holding *all* of them wins):

1. an explicit ``root`` argument (the directory itself, then ``root/<name>/``);
2. ``$CONVGRAD_DATA/<name>/``;
3. the per-user cache ``${XDG_CACHE_HOME:-~/.cache}/convgrad/<name>/``;
4. the system directories in ``SYSTEM_DATA_DIRS`` + ``<name>/`` (``/usr/share/datasets/<name>/``,
   where Debian's ``dataset-fashion-mnist`` installs Fashion-MNIST).

Downloads go to the cache directory: into a temporary file in that directory, which is
``os.replace``-d onto the final name only after its checksum matched, so a half-written
or unverified file never carries the final name.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

#: System-wide dataset directories, searched last (a list, so tests can monkeypatch it).
SYSTEM_DATA_DIRS: list[Path] = [Path("/usr/share/datasets")]
ENV_DATA = "CONVGRAD_DATA"
ENV_MIRROR = "CONVGRAD_DATA_MIRROR"
DEFAULT_TIMEOUT = 60.0


class DownloadError(OSError):
    """A dataset file could not be fetched (network error, HTTP error, short read)."""


class ChecksumError(DownloadError):
    """A downloaded file did not match its expected digest (nothing was kept)."""


def cache_dir(name: str | None = None) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/convgrad[/<name>]`` (not created)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "convgrad"
    return path / name if name else path


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The candidate directories for dataset `name`, in lookup order (existing or not)."""
    dirs = []
    if root is not None:
        dirs += [Path(root), Path(root) / name]
    if os.environ.get(ENV_DATA):
        dirs.append(Path(os.environ[ENV_DATA]) / name)
    dirs.append(cache_dir(name))
    dirs += [Path(d) / name for d in SYSTEM_DATA_DIRS]
    return dirs


def existing(d: Path, f: str) -> Path | None:
    """`d/f` if it is a file, else `d/f` minus its ".gz" (an uncompressed copy) if that is, else None."""
    for p in (d / f, d / f[:-3] if f.endswith(".gz") else None):
        if p is not None and p.is_file():
            return p
    return None


def find_dir(name: str, files: Iterable[str], root: str | os.PathLike | None = None,
             subdirs: Iterable[str] = ("",)) -> Path | None:
    """The first directory holding every one of `files` (a name ending in .gz may also be present
    uncompressed), trying `d/sub` for each of `subdirs` and each d of search_dirs(name, root)."""
    files, subdirs = list(files), list(subdirs)
    for d in search_dirs(name, root):
        for sub in subdirs:
            if all(existing(d / sub, f) is not None for f in files):
                return d / sub
    return None


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"``, ``"md5:<hex>"`` or bare hex (64 digits: SHA-256, 32: MD5) -> (algorithm, hex)."""
    algo, sep, digest = checksum.strip().lower().rpartition(":")
    if not sep:
        algo = {64: "sha256", 32: "md5"}.get(len(digest), "")
    if algo not in ("sha256", "md5") or len(digest) != hashlib.new(algo).digest_size * 2 \
            or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"bad checksum {checksum!r}: expected 'sha256:<64 hex>', 'md5:<32 hex>' or bare hex")
    return algo, digest


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: str | os.PathLike, checksum: str, *,
                  timeout: float = DEFAULT_TIMEOUT, hint: str = "") -> Path:
    """Fetch `url` to `dest`, atomically, only if its digest equals `checksum` (see parse_checksum).

    The bytes go to a hidden temporary file beside `dest`, hashed on the way; it is renamed
    onto `dest` only after the digest matched, and removed on any failure. Raises
    DownloadError (with `hint` appended) when the fetch fails, ChecksumError on a mismatch.
    """
    algo, expected = parse_checksum(checksum)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.new(algo)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length")
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            if length is not None and size != int(length):
                raise DownloadError(f"short read: expected {length} bytes, got {size}")
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
            reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
            err = DownloadError(f"could not download {dest.name} from {url}: {reason}.{hint}")
            err.url, err.reason = url, reason
            raise err from exc
        if h.hexdigest() != expected:
            raise ChecksumError(f"checksum mismatch for {dest.name} downloaded from {url}: expected {algo} "
                                f"{expected}, got {h.hexdigest()} ({size} bytes); the file was discarded")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cached dataset is not secret
        os.replace(tmp, dest)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return dest


def fetch_first(urls: Iterable[str], dest: str | os.PathLike, checksum: str, *,
                timeout: float = DEFAULT_TIMEOUT, hint: str = "") -> Path:
    """download_file from each URL in turn until one succeeds; a checksum mismatch is not retried."""
    urls, failures = list(urls), []
    if not urls:
        raise ValueError("fetch_first: no URL given")
    for url in urls:
        try:
            return download_file(url, dest, checksum, timeout=timeout, hint=hint if len(urls) == 1 else "")
        except ChecksumError:
            raise
        except DownloadError as exc:
            if len(urls) == 1:
                raise
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DownloadError(f"could not download {Path(dest).name} from any of {len(urls)} URLs: "
                        f"{'; '.join(failures)}.{hint}")
