"""What the attack, saliency and report tools share: a trained model seen from pixel space.

A checkpoint's model takes normalised inputs z = (x - mean) / std per channel, where x are
pixels scaled to [0, 1]. The tools work on x, so every input gradient goes through the
chain rule once more: dL/dx = dL/dz * dz/dx = dL/dz / std.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .. import nn
from ..cli_args import UsageError, check_args
from ..stepping import input_grad, logits as model_logits


class ToolError(ValueError):
    """Bad input found while a tool works (wrong image shape, ...): printed, exit status 1."""


class PixelModel:
    """A model in eval mode plus its normalisation: pixel images x (N, C, H, W) in [0, 1] -> logits.

    logits(x)                      -> (N, K) float64
    loss_grad(x, labels)           -> (summed cross-entropy, dL/dx (N, C, H, W) float64, logits (N, K))
    score_grad(x, classes)         -> (logits (N, K), d logit[n, classes[n]] / dx (N, C, H, W))

    Gradients come from one backward pass (the model's own, or the recorded graph of a forward-only
    model; see stepping.py): dz = dL/dz, dx = dz / std.
    The loss is summed over the batch, so each image's gradient is that of its own loss.
    """

    def __init__(self, model, mean, std):
        self.model = model.eval()
        self.dtype = next(iter(model.parameters())).dtype
        self.mean = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
        self.criterion = nn.CrossEntropyLoss(reduction="sum")

    @classmethod
    def from_state(cls, model, state: dict) -> "PixelModel":
        norm = state.get("normalization")
        if not norm or "mean" not in norm or "std" not in norm:
            raise ToolError("the checkpoint records no normalization {mean, std}")
        return cls(model, norm["mean"], norm["std"])

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) pixels in [0, 1] -> the model's input z = (x - mean) / std, in its dtype."""
        return ((x - self.mean) / self.std).astype(self.dtype)

    def logits(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        out = [model_logits(self.model, self.normalise(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(out).astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)

    def _grad(self, x: np.ndarray, dlogits_fn) -> tuple[np.ndarray, np.ndarray]:
        """(logits (N, K) float64, dL/dx) for dL/dlogits = dlogits_fn(logits): one backward, through
        the normalisation (dx = dz / std)."""
        logits, dz = input_grad(self.model, self.normalise(x), dlogits_fn)
        return logits.astype(np.float64), np.asarray(dz, dtype=np.float64) / self.std

    def loss_grad(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Summed cross-entropy of (x, labels), its gradient dL/dx (x's shape) and the logits (N, K)."""
        labels = np.asarray(labels, dtype=np.int64)
        loss = []

        def dlogits(out):
            loss.append(float(self.criterion(out, labels)))
            return self.criterion.backward()
        logits, dx = self._grad(x, dlogits)
        return loss[0], dx, logits

    def score_grad(self, x: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d logit[n, classes[n]] / dx: the backward of a one-hot upstream gradient."""
        def onehot(out):
            g = np.zeros(out.shape, dtype=np.float64)
            g[np.arange(len(x)), classes] = 1.0
            return g
        return self._grad(x, onehot)


def load_model(path: str, with_path: bool = False):
    """(model in eval mode, checkpoint state[, the file read]) from a checkpoint file or a run directory
    (its best.npz when there is one, else its checkpoint.npz)."""
    from ..checkpoint import CheckpointError
    from ..train_config import checkpoint_file, load_for_inference
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint or run directory at {path!r}")
    model, state = load_for_inference(path)
    return (model, state, checkpoint_file(path)) if with_path else (model, state)


def run_dir(path: str) -> str:
    """The run directory of a checkpoint path (the path itself when it is a directory)."""
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def load_test_split(state: dict, data: str | None = None, data_root: str | None = None, limit: int | None = None):
    """(uint8 images (N, C, H, W), int64 labels (N,), class names) of the test split of the data the
    run trained on (the same dataset or folder and preprocessing; `data`/`data_root` override it),
    checked against the image shape the checkpoint's model expects."""
    from ..data.source import DataSpec, load_run_data, spec_from_info
    cfg = state.get("config", {})
    if state.get("data"):
        spec = spec_from_info(state["data"], data, data_root)
    else:                                   # a run from before runs recorded their data
        spec = DataSpec(data or cfg.get("data", "fashion-mnist"),
                        data_root if data_root is not None else cfg.get("data_root"))
    if data is not None:
        spec.val_split, spec.limit_train, spec.limit_test = 0.0, None, None
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        spec.limit_test = min(limit, spec.limit_test or limit)
    ds = load_run_data(spec)
    x, y = ds.test
    check_image_shape(state, x.shape[1:], f"the {spec.data} test images")
    return x, y.astype(np.int64), list(state.get("classes") or ds.classes)


def check_image_shape(state: dict, shape, what: str) -> None:
    mc = state["model_config"]
    want = (mc["in_channels"], mc["image_size"], mc["image_size"])
    if tuple(shape) != want:
        raise ToolError(f"the checkpoint's model expects images of shape (C, H, W) = {want}, "
                        f"but {what} have shape {tuple(shape)}")


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float64 in [0, 1]."""
    return np.asarray(images, dtype=np.float64) / 255.0


def eps_message(eps: float) -> str | None:
    """None for an eps in [0, 1] (pixel units), else the error message (with a hint for 0-255 units)."""
    eps = float(eps)
    if not 0.0 <= eps <= 1.0 or not np.isfinite(eps):
        hint = f" (pixel units; did you mean {eps:g}/255 = {eps / 255:.4f}?)" if 1 < eps <= 255 else \
            " (pixel units, images scaled to [0, 1])"
        return f"must be in [0, 1]{hint}, got {eps:g}"
    return None


def check_eps(eps: float, name: str = "eps") -> float:
    message = eps_message(eps)
    if message:
        raise UsageError(f"{name} {message}")
    return float(eps)


def eps_rule(values):
    values = values if isinstance(values, (list, tuple)) else [values]
    return next((m for m in map(eps_message, values) if m), None)


def class_index(target, classes) -> int:
    """A class given as an index ('3') or a name ('Dress', case-insensitive) -> its index."""
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        k = int(text)
        if not 0 <= k < len(classes):
            raise UsageError(f"--target {k} is out of range: the model has {len(classes)} classes (0..{len(classes) - 1})")
        return k
    names = [c.lower() for c in classes]
    if text.lower() in names:
        return names.index(text.lower())
    raise UsageError(f"--target {text!r} is neither a class index nor one of the class names {list(classes)}")


def guarded(command: str, fn, args, rules: dict | None = None, positional=()) -> int:
    """Check args against `rules` (see cli_args), then run a tool command. A bad argument prints one
    line `convgrad COMMAND: error: ...` and returns 2; a user error found while working (a missing
    or corrupt file, an unreadable image, a missing dataset) likewise, returning 1."""
    try:
        check_args(args, rules or {}, positional)
    except UsageError as exc:
        print(f"convgrad {command}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return fn(args)
    except UsageError as exc:
        print(f"convgrad {command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError, ImportError) as exc:
        print(f"convgrad {command}: error: {exc}", file=sys.stderr)
        return 1
