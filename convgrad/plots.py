"""PNG figures of a training run (matplotlib, Agg backend; an optional dependency).

The files::

    curves.png            loss and accuracy by step (every step, and a moving average), with the
                          validation and test evaluations at the steps where they were made
    confusion_matrix.png  test-set confusion matrix
    filters.png           the first convolution's filters, numbered, on a diverging map centred on zero
    feature_maps.png      the input image and the first convolution's output maps, numbered, same map
"""
from __future__ import annotations

import io
import os

import numpy as np

from .checkpoint import atomic_write_bytes
from .metrics import confusion_counts

DIVERGING = "RdBu_r"


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'convgrad[cli]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[:window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def curves(history: list, path: str, steps: list | None = None) -> str:
    """Loss and accuracy against the step; without steps (old runs) against the epoch."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if steps:
        x = np.array([r["step"] for r in steps])
        window = max(1, len(steps) // 25)
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            y = np.array([r[key] for r in steps], dtype=np.float64)
            ax.plot(x, y, color="tab:blue", alpha=0.25, lw=0.8, label="train (each step)")
            ax.plot(x, _moving_average(y, window), color="tab:blue", lw=1.8,
                    label=f"train (mean of {window} steps)" if window > 1 else "train")
        ends = {}
        for r in steps:
            ends[r["epoch"]] = r["step"]
        at = lambda epoch: ends.get(epoch, epoch)         # noqa: E731  (the step an epoch ended at)
        ax_loss.set_xlabel("step"), ax_acc.set_xlabel("step")
    else:
        at = lambda epoch: epoch                           # noqa: E731
        for ax, key in ((ax_loss, "train_loss"), (ax_acc, "train_accuracy")):
            ax.plot([r["epoch"] for r in history], [r[key] for r in history], "-o", label="train")
        ax_loss.set_xlabel("epoch"), ax_acc.set_xlabel("epoch")
    for split, style, colour in (("val", "s--", "tab:orange"), ("test", "D:", "tab:green")):
        rows = [r for r in history if r.get(f"{split}_loss") not in (None, "")]
        if rows:
            xs = [at(r["epoch"]) for r in rows]
            ax_loss.plot(xs, [r[f"{split}_loss"] for r in rows], style, color=colour, label=split, ms=6)
            ax_acc.plot(xs, [r[f"{split}_accuracy"] for r in rows], style, color=colour, label=split, ms=6)
    for ax, title in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy")):
        ax.set_title(title), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes, path: str) -> str:
    """Plot the (true class, predicted class) counts of the test set as a PNG at path; returns path."""
    plt = _pyplot()
    k = len(classes)
    matrix = confusion_counts(labels, predictions, k)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * k + 2), max(4.5, 0.55 * k + 1.5)))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right"), ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, matrix[i, j], ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.colorbar(im)
    ax.set_title(f"confusion matrix (accuracy {np.trace(matrix) / max(matrix.sum(), 1):.4f})")
    return _save(fig, path)


def _numbered_grid(maps: np.ndarray, title: str, path: str, first=None, first_title: str = "input") -> str:
    """Maps (n, H, W) numbered 0..n-1 on one diverging colour scale centred on zero, with its colour bar;
    `first` (H, W) grey or (H, W, 3) RGB in [0, 1] is drawn before them, in its own colours."""
    plt = _pyplot()
    n = len(maps) + (first is not None)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.35 + 1.0, rows * 1.4 + 0.5), squeeze=False)
    axes = list(np.ravel(axes))
    for ax in axes:
        ax.axis("off")
    if first is not None:
        ax = axes.pop(0)
        ax.imshow(first, cmap="gray" if first.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(first_title, fontsize=8)
    limit = max(float(np.abs(maps).max(initial=0.0)), 1e-12)
    im = None
    for i, (ax, m) in enumerate(zip(axes, maps)):
        im = ax.imshow(m, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=np.ravel(fig.axes).tolist(), shrink=0.8, label="value (0 = white)")
    fig.suptitle(title)
    return _save(fig, path)


def first_conv(model):
    """The model's first Conv2d (in module order)."""
    from .nn import Conv2d
    for m in model.modules():
        if isinstance(m, Conv2d):
            return m
    raise ValueError("the model has no Conv2d layer")


def filters(model, path: str) -> str:
    """Plot the first Conv2d's filters (averaged over input channels) as a grid PNG at path."""
    w = first_conv(model).weight.data
    maps = w[:, 0] if w.shape[1] == 1 else w.mean(axis=1)
    what = "" if w.shape[1] == 1 else f", mean over the {w.shape[1]} input channels"
    return _numbered_grid(maps, f"first-layer filters {tuple(w.shape)}{what}", path)


def feature_maps(model, image: np.ndarray, path: str, pixels: np.ndarray | None = None) -> str:
    """image: (C, H, W) normalised as the model sees it; pixels: the same image as uint8 (C, H, W), shown first."""
    conv = first_conv(model)
    maps = np.asarray(conv(image[None].astype(conv.weight.dtype)))[0]
    if pixels is None:
        shown = image[0] if image.shape[0] == 1 else None
        lo, hi = (float(shown.min()), float(shown.max())) if shown is not None else (0, 1)
        shown = (shown - lo) / max(hi - lo, 1e-12) if shown is not None else None
    else:
        p = np.asarray(pixels, dtype=np.float64) / 255.0
        shown = p[0] if p.shape[0] == 1 else p.transpose(1, 2, 0)
    return _numbered_grid(maps, f"first-layer feature maps {tuple(maps.shape)}", path, first=shown)


def all_plots(out: str, history, steps, model, labels, predictions, classes, image, pixels=None) -> list:
    """Every figure that the inputs allow (no confusion matrix without predictions, no filters
    without a Conv2d); returns the paths written."""
    os.makedirs(out, exist_ok=True)
    written = [curves(history, os.path.join(out, "curves.png"), steps)]
    if predictions is not None and labels is not None:
        k = len(classes) if classes else int(max(labels.max(), predictions.max())) + 1
        written.append(confusion_matrix(labels, predictions, classes or [str(i) for i in range(k)],
                                        os.path.join(out, "confusion_matrix.png")))
    try:
        first_conv(model)
    except ValueError:
        return written
    written.append(filters(model, os.path.join(out, "filters.png")))
    if image is not None:
        written.append(feature_maps(model, image, os.path.join(out, "feature_maps.png"), pixels))
    return written
