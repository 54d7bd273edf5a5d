"""IDX files (the MNIST / Fashion-MNIST format): a strict reader and a writer.

Layout: magic ``0x00 0x00 <type code> <ndim>``, then ``ndim`` big-endian uint32 sizes,
then the data, big-endian, C order. A file is gzip-compressed when it starts with the
gzip magic bytes ``1f 8b`` (the name does not matter). Every malformed file raises a
ValueError that names the file, what was expected and what was found.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> NumPy dtype (big-endian as stored on disk).
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str: code for code, dt in IDX_TYPES.items()}
_CODE_LIST = ", ".join(f"0x{c:02x} ({dt.newbyteorder('=').name})" for c, dt in IDX_TYPES.items())


MAX_PAYLOAD = 2 ** 34      # bytes an IDX header may declare (16 GiB; MNIST's largest file holds 47 MB)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes.

    Decompression is bounded by the size the IDX header declares (plus one byte, to report
    trailing garbage): a gzip bomb stops there instead of filling the memory. Raises
    ValueError (naming the file) for a corrupt or truncated gzip stream, or one that
    decompresses to more than its header declares.
    """
    raw = Path(path).read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return _gunzip_bounded(raw, path)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{path}: corrupt gzip stream ({len(raw)} bytes compressed): expected a complete "
            f"gzip file, got {type(exc).__name__}: {exc}") from None


def _declared_size(head: bytes, name) -> int | None:
    """Header + payload bytes an IDX header declares; None until the header is complete,
    -1 when it is not an IDX header (parse_idx then names the problem)."""
    if len(head) < 4:
        return None
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or head[3] == 0:
        return -1
    header = 4 + 4 * head[3]
    if len(head) < header:
        return None
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=head[3], offset=4))
    payload = math.prod(shape) * IDX_TYPES[head[2]].itemsize
    if payload > MAX_PAYLOAD:
        raise ValueError(f"{name}: the IDX header declares shape {shape} ({payload} bytes): expected at most "
                         f"{MAX_PAYLOAD} bytes")
    return header + payload


def _gunzip_bounded(raw: bytes, name) -> bytes:
    """gzip members decompressed in steps, never past the declared size + 1 byte."""
    out, limit, data = bytearray(), None, raw
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    while True:
        room = 1 << 16 if limit is None else limit + 1 - len(out)
        if room <= 0:
            raise ValueError(f"{name}: the gzip stream decompresses to more than the {limit} bytes its IDX "
                             f"header declares (trailing garbage or a decompression bomb)")
        chunk = inflater.decompress(data, room)
        out += chunk
        data = inflater.unconsumed_tail
        if limit is None:
            limit = _declared_size(bytes(out[:4 + 4 * 255]), name)
            if limit == -1:
                return bytes(out)                          # not IDX: parse_idx names the problem
        if inflater.eof:
            if inflater.unused_data.startswith(GZIP_MAGIC):  # a further gzip member
                data, inflater = inflater.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS)
                continue
            return bytes(out)
        if not chunk and not data:
            raise EOFError("the compressed stream ends before its end-of-stream marker")


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an IDX byte string into a native-endian array of its stored dtype and shape."""
    n = len(buf)
    if n < 4:
        raise ValueError(f"{name}: too short for an IDX header: expected at least 4 bytes, got {n}")
    if buf[0] != 0 or buf[1] != 0:
        got = " ".join(f"0x{b:02x}" for b in buf[:4])
        raise ValueError(f"{name}: bad IDX magic number: expected 0x00 0x00 <type> <ndim>, got {got}")
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{name}: unknown IDX data type code: expected one of {_CODE_LIST}, got 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{name}: bad IDX header: expected at least 1 dimension, got 0")
    header = 4 + 4 * ndim
    if n < header:
        raise ValueError(f"{name}: truncated IDX header: expected {header} bytes for {ndim} dimensions, got {n}")
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    got = n - header
    what = f"shape {shape} {dtype.newbyteorder('=').name}"
    if got < expected:
        raise ValueError(f"{name}: truncated IDX payload: expected {expected} data bytes for {what}, got {got}")
    if got > expected:
        raise ValueError(f"{name}: trailing garbage after IDX payload: expected {expected} data bytes for "
                         f"{what}, got {got} ({got - expected} extra)")
    data = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable native-endian copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array with the stored dtype and shape.

    Example: ``read_idx("train-images-idx3-ubyte.gz")`` -> uint8 array of shape (60000, 28, 28).
    """
    return parse_idx(read_bytes(path), name=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of `array` (dtype uint8, int8, int16, int32, float32 or float64; ndim 1..255)."""
    a = np.asarray(array)
    code = _CODES.get(a.dtype.newbyteorder("=").str)
    if code is None:
        raise TypeError(f"encode_idx: expected dtype uint8, int8, int16, int32, float32 or float64, got {a.dtype}")
    if not 1 <= a.ndim <= 255:
        raise ValueError(f"encode_idx: expected 1 to 255 dimensions, got {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"encode_idx: every dimension must be < 2**32, got shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(a, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file; gzip it when `compress` (default: the name ends in .gz).

    The gzip header carries no name and mtime 0, so equal arrays give equal bytes.
    """
    path = Path(path)
    data = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
