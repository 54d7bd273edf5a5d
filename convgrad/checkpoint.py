"""Checkpoints that cannot execute code on load: one .npz (read with allow_pickle=False)
holding every array, and a JSON document (stored inside it as bytes) holding everything else.

Nested state (model weights, optimiser and scheduler state, RNG states, history) is split:
each array goes to the npz under its path ("model/0.weight", "optimizer/state/0/exp_avg"),
and the JSON keeps {"__array__": path} in its place. Files are written to a temporary file
in the same directory and renamed over the target, so a crash never leaves half a checkpoint.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import zipfile

import numpy as np

from .run_schema import FieldError, check_run_fields

FORMAT = "convgrad-checkpoint-1"
_META = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or from a different model."""


def _split(obj, path: str, arrays: dict):
    """Replace every ndarray in a nested dict/list structure by a reference; collect the arrays."""
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):               # int keys (optimiser state indices) become strings, as in JSON
        return {str(k): _split(v, f"{path}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    return obj


def _join(obj, arrays, path: str, field: str = "state"):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            ref = obj["__array__"]
            if not isinstance(ref, str) or ref not in arrays:
                raise CheckpointError(f"{path!r}: field {field!r} refers to array {ref!r}, which the file lacks")
            return arrays[ref]
        return {k: _join(v, arrays, path, f"{field}.{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays, path, f"{field}[{i}]") for i, v in enumerate(obj)]
    return obj


TEMP_PREFIX = ".tmp-"


# What a model description may hold: the architecture is rebuilt from it before any weight is
# read, so its sizes are bounded here (an image_size of 10**7 would allocate petabytes).
_MODEL_CONFIG_RANGES = {"in_channels": (1, 64), "image_size": (4, 512), "num_classes": (1, 100_000)}


def _validate(state, path: str) -> dict:
    """Schema and ranges of the parts of a checkpoint that are used to allocate or that tools
    read: the model description, the model's weights and a run's recorded fields (run_schema:
    config, data, classes, normalization, history, steps). Raises CheckpointError naming the
    file and the field."""
    from .models import MODELS
    if not isinstance(state, dict):
        raise CheckpointError(f"{path!r}: field 'state' must be a JSON object, got {type(state).__name__}")
    config = state.get("model_config")
    if config is not None:
        if not isinstance(config, dict):
            raise CheckpointError(f"{path!r}: field 'model_config' must be a JSON object, got {type(config).__name__}")
        name = config.get("name")
        if name not in MODELS and not (isinstance(name, str) and ":" in name):
            raise CheckpointError(f"{path!r}: field 'model_config.name' must be one of {MODELS} or a "
                                  f"'module:factory' spec, got {name!r:.80}")
        if not isinstance(config.get("args", {}), dict):
            raise CheckpointError(f"{path!r}: field 'model_config.args' must be a JSON object, got "
                                  f"{type(config['args']).__name__}")
        for key, (low, high) in _MODEL_CONFIG_RANGES.items():
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise CheckpointError(f"{path!r}: field 'model_config.{key}' must be an integer in "
                                      f"[{low}, {high}], got {value!r:.80}")
    weights = state.get("model")
    if weights is not None:
        if not isinstance(weights, dict):
            raise CheckpointError(f"{path!r}: field 'model' must be an object of arrays, got {type(weights).__name__}")
        for key, value in weights.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
                raise CheckpointError(f"{path!r}: field 'model.{key}' must be a numeric array, got "
                                      f"{getattr(value, 'dtype', type(value).__name__)}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise CheckpointError(f"{path!r}: field 'model.{key}' holds NaN or infinite weights")
    try:
        check_run_fields(state)
    except FieldError as exc:
        raise CheckpointError(f"{path!r}: {exc}") from None
    return state


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write data to path via a temporary file in the same directory, os.replace, then fsync the
    directory (so the rename itself survives a power cut). An OSError (unwritable directory, full
    disk) is re-raised naming `path`; the temporary file is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        # The kernel applies the process umask to the mode given here (0666, the usual file
        # permissions); reading the umask would mean setting it, which races with other threads.
        while True:
            tmp = os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(8)}-{os.path.basename(path)}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
                break
            except FileExistsError:
                continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_directory(directory)
    except OSError as exc:
        blocker = _file_in_the_way(directory)
        why = f"{blocker} is a file, not a directory" if blocker else (exc.strerror or exc)
        raise OSError(f"cannot write {path}: {why}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _file_in_the_way(directory: str) -> str | None:
    """The nearest existing ancestor of directory (itself included) if it is not a directory."""
    p = directory
    while p and not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p if os.path.exists(p) and not os.path.isdir(p) else None


def fsync_directory(directory: str) -> None:
    """Flush a directory's entries (a rename into it) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: str) -> list:
    """Delete the temporary files an interrupted atomic write left in `directory`; returns their names."""
    removed = []
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.startswith(TEMP_PREFIX):
                try:
                    os.unlink(os.path.join(directory, name))
                    removed.append(name)
                except OSError:
                    pass
    return removed


def atomic_write_text(path: str, text: str) -> None:
    """Write text as UTF-8 to path through a temporary file and a rename (never half-written)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save(path: str, state: dict) -> None:
    """Save a nested dict of arrays, scalars, strings, lists and dicts to one .npz, atomically."""
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint {path!r}: expected the state as a dict, got {type(state).__name__}")
    arrays: dict = {}
    meta = {"format": FORMAT, "state": _split(state, "", arrays)}
    buffer = io.BytesIO()
    np.savez(buffer, **{_META: np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)},
             **{k.lstrip("/"): v for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def read_npz_members(npz, path: str, what: str = "checkpoint") -> dict:
    """{name: array} of an open NpzFile, each member's .npy header checked first: the bytes its
    shape and dtype declare must be in the member (a header declaring 10**12 elements would make
    NumPy allocate terabytes before reading a byte)."""
    out = {}
    for name in npz.files:
        member = name if name in npz.zip.namelist() else name + ".npy"
        info = npz.zip.getinfo(member)
        with npz.zip.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fp)
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            held = info.file_size - fp.tell()
        if declared > held:
            raise CheckpointError(f"{what} {path!r}: entry {name!r} declares shape {shape} of {dtype} "
                                  f"({declared:,} bytes) but holds {held:,} bytes: truncated or forged")
        out[name] = npz[name]
    return out


def load(path: str) -> dict:
    """Inverse of save(). Raises CheckpointError for a missing, truncated or foreign file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise CheckpointError(f"checkpoint {path!r} is empty (0 bytes): truncated or never written")
    if magic != b"PK\x03\x04":          # every .npz is a zip archive
        raise CheckpointError(f"{path!r} is not a convgrad checkpoint: corrupt or another kind of file "
                              f"(expected an .npz archive, the file starts with {magic!r})")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise CheckpointError(f"{path!r} is not a convgrad checkpoint (no {_META} entry)")
            members = read_npz_members(data, path)
            meta = json.loads(bytes(members.pop(_META)).decode("utf-8"))
            arrays = {"/" + k: v for k, v in members.items()}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, json.JSONDecodeError, RecursionError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path!r}: field {_META!r} must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r}: field 'format': expected {FORMAT!r}, got {meta.get('format')!r:.80}")
    if "state" not in meta:
        raise CheckpointError(f"{path!r}: field 'state' is missing")
    return _validate(_join(meta["state"], arrays, path), path)


def load_model_state(model, state: dict, expected: dict, path: str) -> None:
    """Load state["model"] into model after checking the recorded model description equals expected."""
    recorded = state.get("model_config")
    if recorded != expected:
        raise CheckpointError(f"checkpoint {path!r} was saved from model {recorded}, "
                              f"but the model to load it into is {expected}")
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path!r} does not fit the model: {exc}") from exc
