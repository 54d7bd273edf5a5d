"""Weights in and out: a flat {name: array} state dict as .safetensors or .npz.

    convgrad.save(model.state_dict(), "w.safetensors")     # or "w.npz"
    model.load_state_dict(convgrad.load("w.safetensors"))

Names are the state_dict's, which follow torch's ("0.weight", "3.bn1.running_mean", ...), so
`safetensors.torch.load_file` + torch's `load_state_dict` reads these weights into the same
torch architecture, and a file torch wrote with `safetensors.torch.save_file` loads here.
The format follows the file's extension. .safetensors needs the `safetensors` package (the
optional extra `pip install 'convgrad[safetensors]'`); .npz is read with allow_pickle=False.
Files are written to a temporary file and renamed (checkpoint.atomic_write_bytes).
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from .checkpoint import CheckpointError, atomic_write_bytes, read_npz_members

FORMATS = (".safetensors", ".npz")


def _format(path) -> str:
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"weights file {str(path)!r}: expected a name ending in {' or '.join(FORMATS)}, "
                         f"got {ext or 'no extension'!r}")
    return ext


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError("reading or writing .safetensors needs the safetensors package: "
                          "pip install 'convgrad[safetensors]'") from exc
    return safetensors.numpy


def _flat_arrays(state_dict, path) -> dict:
    if not isinstance(state_dict, dict):
        raise TypeError(f"weights file {str(path)!r}: expected a state dict {{name: array}}, "
                        f"got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"weights file {str(path)!r}: state dict keys must be strings, got {name!r}")
        data = getattr(value, "data", value)          # a Parameter or an array
        try:
            arrays[name] = np.require(np.asarray(data), requirements="C")   # (ascontiguousarray makes 0-d 1-d)
        except ValueError as exc:                     # a ragged list
            raise TypeError(f"weights file {str(path)!r}: {name!r} is not a numeric array ({exc})") from None
        if arrays[name].dtype.kind not in "biuf":     # strings, objects, None, complex: not weights
            raise TypeError(f"weights file {str(path)!r}: {name!r} is not a numeric array "
                            f"(bool, int or float), got {type(value).__name__} of dtype {arrays[name].dtype}")
    return arrays


def save(state_dict: dict, path) -> None:
    """Write a flat {name: ndarray or Parameter} dict to path (.safetensors or .npz), atomically."""
    ext = _format(path)
    arrays = _flat_arrays(state_dict, path)
    if ext == ".safetensors":
        data = _safetensors_numpy().save(arrays)
    else:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
    atomic_write_bytes(str(path), data)


def load(path) -> dict:
    """Read a weights file written by save() (or by torch's safetensors.torch.save_file, or np.savez)
    into {name: ndarray}, in the file's order. Raises CheckpointError naming the file when it is
    missing, truncated or not of the format its name says."""
    ext = _format(path)
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file {path!r} does not exist")
    if ext == ".safetensors":
        st = _safetensors_numpy()
        with open(path, "rb") as f:
            data = f.read()
        try:
            return dict(st.load(data))
        except Exception as exc:      # safetensors raises its own SafetensorError (an Exception)
            raise CheckpointError(f"weights file {path!r} is not a readable safetensors file "
                                  f"(truncated or of another format): {exc}") from exc
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an archive of named arrays")
        with npz:
            return read_npz_members(npz, path, "weights file")
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"weights file {path!r} is not a readable .npz file "
                              f"(truncated or of another format): {exc}") from exc
