"""A run directory: what it holds, and the rule that a used one is never silently replaced.

    checkpoint.npz  everything a resume needs (model, optimiser, scheduler, loader and RNG states,
                    position in the epoch, history); written every --checkpoint-every steps, at the
                    end of every epoch and on Ctrl-C / SIGTERM
    best.npz        the same, at the epoch with the best validation accuracy
    config.json     the options, the model spec and the data's preprocessing (tools rebuild from it)
    metrics.csv     one row per epoch;  steps.csv  one row per step;  results.json  the final test
    *.png           curves, confusion matrix, filters, feature maps

claim() decides where a run goes: into `out` when it is unused; with resume=True into `out`
(which must hold a checkpoint); with overwrite=True into `out` after deleting the run files
above; otherwise (a used `out`) into the first unused `out-2`, `out-3`, ... or, when
`refuse=True`, nowhere: RunDirError names --resume and --overwrite.
"""
from __future__ import annotations

import csv
import io
import os

from .checkpoint import atomic_write_text, remove_stale_temporaries

CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"
CONFIG = "config.json"
METRICS = "metrics.csv"
STEPS = "steps.csv"
RESULTS = "results.json"
RUN_FILES = (CHECKPOINT, BEST, CONFIG, METRICS, STEPS, RESULTS, "curves.png", "confusion_matrix.png",
             "filters.png", "feature_maps.png")
STEP_COLUMNS = ("step", "epoch", "loss", "accuracy", "lr", "images_per_s")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked."""


def is_used(out: str) -> bool:
    """Whether `out` holds (part of) a run."""
    return os.path.isdir(out) and any(os.path.exists(os.path.join(out, f)) for f in (CHECKPOINT, CONFIG, METRICS))


def claim(out: str, resume: bool = False, overwrite: bool = False, refuse: bool = False) -> str:
    """The directory a run writes to (see the module docstring); created, stale temporaries removed."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")
    if resume:
        if not os.path.isfile(os.path.join(out, CHECKPOINT)):
            raise RunDirError(f"--resume: no {CHECKPOINT} in {out}")
    elif is_used(out):
        if overwrite:
            for name in RUN_FILES:
                path = os.path.join(out, name)
                if os.path.isfile(path):
                    os.unlink(path)
        elif refuse:
            raise RunDirError(f"{out} already holds a run: pass --resume to continue it, --overwrite to replace "
                              f"it, or another --out")
        else:
            out = next(f"{out}-{i}" for i in range(2, 10 ** 6) if not is_used(f"{out}-{i}"))
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunDirError(f"{out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create the run directory {out}: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise RunDirError(f"the run directory {out} is not writable")
    remove_stale_temporaries(out)
    return out


def write_csv(path: str, columns, rows: list, formats: dict | None = None) -> None:
    """rows (dicts) -> CSV with a header, written atomically; a missing or None value is an empty cell."""
    formats = formats or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("" if v is None else (formats.get(c, "{:.6f}").format(v) if isinstance(v, float) else v))
        writer.writerow(cells)
    atomic_write_text(path, buffer.getvalue())


def read_csv(path: str) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
