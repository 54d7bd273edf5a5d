"""matplotlib figures of the tools, returned as PNG bytes (write them with atomic_write_bytes,
or embed them in a page). Images are pixels in [0, 1], (C, H, W) with C = 1 or 3."""
from __future__ import annotations

import io

import numpy as np

from ..plots import _pyplot


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _show(ax, img: np.ndarray, title: str = "", **kwargs) -> None:
    """img (C, H, W) in [0, 1] (grey or RGB), or (H, W) with a colour map from kwargs."""
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.clip(img.transpose(1, 2, 0), 0, 1)
        kwargs = {"cmap": "gray", "vmin": 0, "vmax": 1, **kwargs} if img.ndim == 2 else kwargs
    ax.imshow(img, interpolation="nearest", **kwargs)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def _name(classes, k: int, width: int = 11) -> str:
    name = str(classes[k]) if classes is not None and 0 <= k < len(classes) else str(k)
    return name if len(name) <= width else name[:width - 1] + "."


def adversarial_grid(x: np.ndarray, labels, clean_pred, adversarial: list, classes=None, title: str = "",
                     per_row: int = 1) -> bytes:
    """Per image: original | (perturbation, adversarial image) for each eps; `per_row` images side by side.

    x: (n, C, H, W) originals; adversarial: [(eps, x_adv (n, C, H, W), predictions (n,)), ...].
    The perturbation x_adv - x is drawn on a diverging map from -eps (blue) to +eps (red)
    (grey images; RGB ones as 0.5 + delta / 2 eps), so a perturbation of size eps is fully saturated.
    A prediction that differs from the true label is titled in red.
    """
    plt = _pyplot()
    n, width = len(x), 1 + 2 * len(adversarial)
    rows = -(-n // per_row)
    fig, axes = plt.subplots(rows, width * per_row, figsize=(1.25 * width * per_row, 1.35 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c0 = divmod(i, per_row)
        row = axes[r, c0 * width:(c0 + 1) * width]
        for ax in row:
            ax.axis("on")
        _show(row[0], x[i], f"true {_name(classes, labels[i])}\npred {_name(classes, clean_pred[i])}")
        for j, (eps, x_adv, pred) in enumerate(adversarial):
            delta = x_adv[i] - x[i]
            scale = max(eps, 1e-12)
            if delta.shape[0] == 1:
                _show(row[1 + 2 * j], delta[0], f"perturbation\neps={eps:g}", cmap="RdBu_r", vmin=-scale, vmax=scale)
            else:
                _show(row[1 + 2 * j], 0.5 + delta / (2 * scale), f"perturbation\neps={eps:g}")
            _show(row[2 + 2 * j], x_adv[i], f"adversarial\npred {_name(classes, pred[i])}")
            if pred[i] != labels[i]:
                row[2 + 2 * j].title.set_color("crimson")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def image_attack_figure(x, x_adv, eps: float, before: str, after: str, title: str = "") -> bytes:
    """One image: original | perturbation amplified 1/eps times (|delta| = eps saturates) | result.
    x, x_adv: (C, H, W) in [0, 1]; before/after: the two predictions as text."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.6))
    delta = x_adv - x
    gain = 1.0 / max(eps, 1e-12)
    _show(axes[0], x, f"original\n{before}")
    if delta.shape[0] == 1:
        _show(axes[1], delta[0] * gain, f"perturbation x {gain:g}\n(blue -{eps:g} .. red +{eps:g})", cmap="RdBu_r",
              vmin=-1, vmax=1)
    else:
        _show(axes[1], 0.5 + 0.5 * delta * gain, f"perturbation x {gain:g}\n(grey 0, +-{eps:g} saturates)")
    _show(axes[2], x_adv, f"adversarial\n{after}")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def saliency_grid(x: np.ndarray, saliency: np.ndarray, pred, classes=None, labels=None, probs=None,
                  title: str = "") -> bytes:
    """One row per image: the image, its saliency |d score / d pixel| (max over channels) as a heat map
    with a colour bar, and the map laid over the image. x: (n, C, H, W) in [0, 1]; saliency: (n, H, W),
    drawn per image from 0 to its max. Panels are about 2.4 inches, so a 28-pixel map is legible."""
    plt = _pyplot()
    n = len(x)
    fig, axes = plt.subplots(n, 3, figsize=(8.2, 2.6 * n), squeeze=False)
    for i in range(n):
        head = f"pred {_name(classes, pred[i], 14)}"
        if probs is not None:
            head += f" {probs[i]:.2f}"
        if labels is not None:
            head = f"true {_name(classes, labels[i], 14)}, " + head
        _show(axes[i, 0], x[i], head)
        vmax = max(float(saliency[i].max()), 1e-12)
        _show(axes[i, 1], saliency[i], "|d score / d pixel|", cmap="inferno", vmin=0, vmax=vmax)
        fig.colorbar(axes[i, 1].images[0], ax=axes[i, 1], fraction=0.046, pad=0.04)
        grey = x[i].mean(axis=0)
        _show(axes[i, 2], grey, "overlay", cmap="gray", vmin=0, vmax=1)
        axes[i, 2].imshow(saliency[i], cmap="inferno", alpha=0.55, vmin=0, vmax=vmax, interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)
