"""PNG figures of a training run (matplotlib, Agg backend; an optional dependency).

    curves.png            loss and accuracy per epoch, train and test
    confusion_matrix.png  test-set confusion matrix
    filters.png           the first convolution's filters
    feature_maps.png      the first convolution's output maps for one test image
"""
from __future__ import annotations

import io
import os

import numpy as np

from .checkpoint import atomic_write_bytes


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


def curves(history: list, path: str) -> str:
    """Plot loss and accuracy per epoch (train and test) from history as a PNG at path; returns path."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split, style in (("train", "-o"), ("test", "--s")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], style, label=split)
        ax_acc.plot(epochs, [r[f"{split}_accuracy"] for r in history], style, label=split)
    for ax, title in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch"), ax.set_title(title), ax.grid(alpha=0.3), ax.legend()
    return _save(fig, path)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes, path: str) -> str:
    """Plot the (true class, predicted class) counts of the test set as a PNG at path; returns path."""
    plt = _pyplot()
    k = len(classes)
    matrix = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right"), ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, matrix[i, j], ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.colorbar(im)
    ax.set_title(f"confusion matrix (accuracy {np.trace(matrix) / matrix.sum():.4f})")
    return _save(fig, path)


def _grid(images: np.ndarray, title: str, path: str, cmap="gray") -> str:
    plt = _pyplot()
    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, img in zip(np.ravel(axes), images):
        ax.imshow(img, cmap=cmap)
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
    return _grid(w.mean(axis=1) if w.shape[1] != 1 else w[:, 0], f"first-layer filters {tuple(w.shape)}",
                 path, cmap="RdBu_r")


def feature_maps(model, image: np.ndarray, path: str) -> str:
    """image: (C, H, W) already normalised."""
    conv = first_conv(model)
    maps = conv(image[None].astype(conv.weight.dtype))[0]
    return _grid(maps, f"first-layer feature maps {tuple(maps.shape)}", path, cmap="viridis")


def all_plots(out: str, history, model, labels, predictions, classes, image) -> list:
    """Write curves.png, confusion_matrix.png, filters.png and feature_maps.png into out;
    returns their paths (needs matplotlib)."""
    os.makedirs(out, exist_ok=True)
    return [curves(history, os.path.join(out, "curves.png")),
            confusion_matrix(labels, predictions, classes, os.path.join(out, "confusion_matrix.png")),
            filters(model, os.path.join(out, "filters.png")),
            feature_maps(model, image, os.path.join(out, "feature_maps.png"))]
