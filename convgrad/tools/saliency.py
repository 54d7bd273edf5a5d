"""`convgrad saliency`: which pixels the predicted class's score is most sensitive to.

The saliency map of Simonyan et al. (2014): one backward pass of the model with the upstream
gradient one-hot at the predicted class k gives d score_k / dz, the chain rule through the
normalisation gives d score_k / dx = (d score_k / dz) / std, and the map is its absolute
value, maximised over colour channels: (C, H, W) -> (H, W). score_k is the logit (before the
softmax), so the map does not shrink as the prediction grows confident.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..cli_args import HelpFormatter, existing_files, run_path, non_empty
from ._common import PixelModel, check_image_shape, guarded, load_model


def saliency(pm: PixelModel, x: np.ndarray, classes=None):
    """x (N, C, H, W) pixels in [0, 1] -> (maps (N, H, W) = max_c |d score / d x|, the classes (N,)
    whose scores were differentiated (default: the predicted ones), softmax probabilities (N,) of them)."""
    if classes is None:
        classes = pm.predict(x)
    classes = np.asarray(classes, dtype=np.int64)
    logits, grad = pm.score_grad(x, classes)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return np.abs(grad).max(axis=1), classes, probs[np.arange(len(x)), classes]


def _cmd(args) -> int:
    from ..checkpoint import atomic_write_bytes
    from ..data.images import load_image
    from .figures import saliency_grid
    model, state = load_model(args.checkpoint)
    pm = PixelModel.from_state(model, state)
    mc, classes = state["model_config"], state.get("classes")
    fit = args.fit or (state.get("data") or {}).get("fit", "pad")
    img = load_image(args.image, mc["in_channels"], mc["image_size"], invert=args.invert, fit=fit)
    check_image_shape(state, img.shape, f"the image read from {args.image!r}")
    x = img[None].astype(np.float64) / 255.0
    maps, pred, probs = saliency(pm, x)
    png = saliency_grid(x, maps, pred, classes, probs=probs, title=os.path.basename(args.image))
    out = args.out or os.path.splitext(args.image)[0] + "_saliency.png"
    atomic_write_bytes(out, png)
    name = classes[pred[0]] if classes else str(pred[0])
    print(f"{args.image}: predicted {name} ({probs[0]:.3f}); saliency map -> {out}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `saliency` to an argparse subparsers object."""
    p = subparsers.add_parser("saliency", help="|d score / d pixel| heat map of an image (PNG)",
                              description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", help="checkpoint.npz or a run directory")
    p.add_argument("image", help="a PNG/JPEG image (resized to the model's input size)")
    p.add_argument("--out", default=None, help="output PNG (default: IMAGE_saliency.png beside the image)")
    p.add_argument("--invert", action="store_true",
                   help="invert grey levels (dark object on light background, unlike Fashion-MNIST)")
    p.add_argument("--fit", default=None, choices=("pad", "crop"),
                   help="non-square images: pad or centre-crop (default: as the run's data, else pad)")
    p.set_defaults(func=lambda a: guarded("saliency", _cmd, a, {"checkpoint": run_path, "image": lambda v:
                                                                existing_files([v]), "out": non_empty},
                                          positional=("checkpoint", "image")))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.saliency CKPT IMAGE` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
