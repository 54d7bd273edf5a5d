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
import tempfile
import zipfile

import numpy as np

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
    if isinstance(obj, dict):
        return {str(k): _split(v, f"{path}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    return obj


def _join(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write data to path via a temporary file in the same directory and os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str, text: str) -> None:
    """Write text as UTF-8 to path through a temporary file and a rename (never half-written)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save(path: str, state: dict) -> None:
    """Save a nested dict of arrays, scalars, strings, lists and dicts to one .npz, atomically."""
    arrays: dict = {}
    meta = {"format": FORMAT, "state": _split(state, "", arrays)}
    buffer = io.BytesIO()
    np.savez(buffer, **{_META: np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)},
             **{k.lstrip("/"): v for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def load(path: str) -> dict:
    """Inverse of save(). Raises CheckpointError for a missing, truncated or foreign file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise CheckpointError(f"{path!r} is not a convgrad checkpoint (no {_META} entry)")
            meta = json.loads(bytes(data[_META]).decode("utf-8"))
            arrays = {"/" + k: data[k] for k in data.files if k != _META}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r}: expected format {FORMAT!r}, got {meta.get('format')!r}")
    return _join(meta["state"], arrays)


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
