"""The schema of a training run's recorded fields, checked before any tool uses them.

A training checkpoint carries what the run directory's config.json and metrics.csv hold — the
options (`config`), the data's description (`data`), `classes`, `normalization`, the per-epoch
`history` and per-step `steps` — and eval/predict/report/attack/saliency/export rebuild data
loaders, normalisation and pages from them. A file is untrusted: check_run_fields(state) checks
every one of these fields that is present (types, ranges, lengths that agree with the model
description) and raises FieldError(field, problem); checkpoint.load turns that into one
CheckpointError naming the file and the field. Fields a run does not record are not required.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._checks import MAX_IMAGE_SIZE, is_int

MAX_CLASSES = 100_000
MAX_ROWS = 10_000_000            # history / steps rows
MAX_NAME = 1_000                 # characters of a class name or a path
MAX_LIMIT = 10 ** 9              # limit_train / limit_test


class FieldError(ValueError):
    """field (dotted path) and what is wrong with it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field {field!r} {problem}")
        self.field, self.problem = field, problem


def _got(value) -> str:
    return f"got {value!r:.80} ({type(value).__name__})"


def _is_real(v) -> bool:
    return isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))


def _object(state, field):
    value = state.get(field)
    if value is not None and not isinstance(value, dict):
        raise FieldError(field, f"must be a JSON object, {_got(value)}")
    return value or {}


def _int(obj, key, field, low, high, optional=True):
    v = obj.get(key)
    if v is None and optional:
        return None
    if not is_int(v) or not low <= v <= high:
        raise FieldError(f"{field}.{key}", f"must be an integer in [{low}, {high}]{' or null' if optional else ''}, "
                                           f"{_got(v)}")
    return int(v)


def _real(obj, key, field, low, high, optional=True):
    v = obj.get(key)
    if v is None and optional:
        return None
    if not _is_real(v) or not math.isfinite(float(v)) or not low <= float(v) <= high:
        raise FieldError(f"{field}.{key}", f"must be a number in [{low}, {high}], {_got(v)}")
    return float(v)


def _text(obj, key, field, optional=True):
    v = obj.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or len(v) > MAX_NAME or "\x00" in v:
        raise FieldError(f"{field}.{key}", f"must be a string of at most {MAX_NAME} characters, {_got(v)}")
    return v


def _numbers(value, field, count=None, positive=False):
    """A list of finite numbers (of `count` entries when given)."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) > 4096:
        raise FieldError(field, f"must be a list of numbers, {_got(value)}")
    if count is not None and len(value) != count:
        raise FieldError(field, f"must hold {count} numbers (one per input channel), got {len(value)}")
    for v in value:
        if not _is_real(v) or not math.isfinite(float(v)) or (positive and not float(v) > 0):
            raise FieldError(field, f"must hold finite numbers{' > 0' if positive else ''}, got {v!r:.40}")
    return value


def _check_data(info: dict, field: str, channels, classes_count) -> None:
    """The data description (DataSpec fields plus what load_run_data recorded)."""
    _text(info, "data", field)
    _text(info, "data_root", field)
    _int(info, "image_size", field, 1, MAX_IMAGE_SIZE)
    _int(info, "channels", field, 1, 4)
    if info.get("fit") is not None and info.get("fit") not in ("pad", "crop"):
        raise FieldError(f"{field}.fit", f"must be 'pad' or 'crop', {_got(info.get('fit'))}")
    _real(info, "val_split", field, 0.0, 0.99)
    _int(info, "seed", field, 0, 2 ** 63 - 1)
    _int(info, "limit_train", field, 1, MAX_LIMIT)
    _int(info, "limit_test", field, 1, MAX_LIMIT)
    _int(info, "in_channels", field, 1, 64)
    for key in ("mean", "std"):
        if info.get(key) is not None:
            _numbers(info[key], f"{field}.{key}", channels, positive=key == "std")
    if info.get("classes") is not None:
        _classes(info["classes"], f"{field}.classes", classes_count)


def _classes(value, field, count) -> None:
    if not isinstance(value, list) or len(value) > MAX_CLASSES:
        raise FieldError(field, f"must be a list of class names, {_got(value)}")
    if count is not None and len(value) != count:
        raise FieldError(field, f"must name the model's {count} classes, got {len(value)} names")
    for name in value:
        if not (isinstance(name, str) and len(name) <= MAX_NAME) and not is_int(name):
            raise FieldError(field, f"must hold strings (at most {MAX_NAME} characters), got {name!r:.40}")


def _check_history(history, field="history") -> None:
    """metrics.csv's rows: objects of numbers (or null), an integer epoch."""
    if not isinstance(history, list) or len(history) > MAX_ROWS:
        raise FieldError(field, f"must be a list of per-epoch rows, {_got(history)}")
    for i, row in enumerate(history):
        where = f"{field}[{i}]"
        if not isinstance(row, dict):
            raise FieldError(where, f"must be a JSON object, {_got(row)}")
        _int(row, "epoch", where, 0, MAX_ROWS, optional=False)
        for key, v in row.items():
            if key != "epoch" and v is not None and (not _is_real(v) or math.isnan(float(v)) and key in ("seconds", "lr")):
                raise FieldError(f"{where}.{key}", f"must be a number or null, {_got(v)}")


def _check_steps(steps, field="steps") -> None:
    """steps.csv's columns: equal-length 1-d numeric arrays."""
    if not isinstance(steps, dict):
        raise FieldError(field, f"must be an object of columns, {_got(steps)}")
    length = None
    for key, col in steps.items():
        arr = col if isinstance(col, np.ndarray) else None
        if arr is None or arr.ndim != 1 or arr.dtype.kind not in "fiu" or len(arr) > MAX_ROWS:
            raise FieldError(f"{field}.{key}", f"must be a 1-d numeric array, "
                                               f"got {getattr(col, 'dtype', type(col).__name__)}")
        if length is not None and len(arr) != length:
            raise FieldError(f"{field}.{key}", f"must have as many rows as the other columns ({length}), "
                                               f"got {len(arr)}")
        length = len(arr)


def check_run_fields(state: dict) -> None:
    """Raise FieldError for the first recorded run field that is malformed (see the module)."""
    mc = state.get("model_config") if isinstance(state.get("model_config"), dict) else {}
    channels, n_classes = mc.get("in_channels"), mc.get("num_classes")
    config = _object(state, "config")
    _text(config, "data", "config")
    _text(config, "data_root", "config")
    _int(config, "limit_test", "config", 1, MAX_LIMIT)
    _int(config, "image_size", "config", 1, MAX_IMAGE_SIZE)
    _check_data(_object(state, "data"), "data", channels, n_classes)
    norm = _object(state, "normalization")
    for key in ("mean", "std"):
        if norm and key not in norm:
            raise FieldError(f"normalization.{key}", "is missing")
        if key in norm:
            _numbers(norm[key], f"normalization.{key}", channels, positive=key == "std")
    if state.get("classes") is not None:
        _classes(state["classes"], "classes", n_classes)
    if state.get("history") is not None:
        _check_history(state["history"])
    if state.get("steps") is not None:
        _check_steps(state["steps"])
