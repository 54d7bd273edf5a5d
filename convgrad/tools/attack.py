"""`convgrad attack`: adversarial examples (FGSM, PGD) through the model's own backward.

The gradient an attack follows is the one training computes, taken one step further down::

    logits = model((x - mean) / std)            x: pixels in [0, 1], (N, C, H, W)
    dL/dz  = model.backward(CrossEntropyLoss.backward())
    dL/dx  = dL/dz / std                         (chain rule through the normalisation)

The attacks::

    FGSM (Goodfellow et al. 2015):  x' = clip(x + eps * sign(dL/dx), 0, 1)
    PGD  (Madry et al. 2018):       K steps x <- clip(proj_eps(x + alpha * sign(dL/dx)), 0, 1),
                                    proj_eps the projection onto the L-inf ball |x - x_clean| <= eps;
                                    an image stays at the first iterate that fools the model.

Targeted (--target T): minimise the loss of class T instead, x' = x - eps * sign(dL_T/dx).
eps and alpha are in pixel units ([0, 1]); 8/255 ~ 0.031 is the customary "invisible" budget.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from ..cli_args import HelpFormatter, existing_files, integer, non_empty, run_path
from ._common import (PixelModel, ToolError, check_eps, class_index, eps_rule, guarded, load_model, load_test_split,
                      pixels, run_dir)

BATCH = 250


def _direction(pm: PixelModel, x, labels, target):
    """(+sign of dL/dx untargeted, -sign of dL_target/dx targeted), and the logits of x."""
    if target is None:
        _, grad, logits = pm.loss_grad(x, labels)
        return np.sign(grad), logits
    _, grad, logits = pm.loss_grad(x, np.full(len(x), target, dtype=np.int64))
    return -np.sign(grad), logits


def _succeeded(logits, labels, target):
    pred = np.argmax(logits, axis=1)
    return pred == target if target is not None else pred != labels


def fgsm(pm: PixelModel, x: np.ndarray, labels: np.ndarray, eps: float, target: int | None = None) -> np.ndarray:
    """x (N, C, H, W) in [0, 1], labels (N,) -> x' = clip(x +- eps * sign(grad), 0, 1), same shape."""
    direction, _ = _direction(pm, x, labels, target)
    return np.clip(x + eps * direction, 0.0, 1.0)


def pgd(pm: PixelModel, x: np.ndarray, labels: np.ndarray, eps: float, steps: int = 10,
        alpha: float | None = None, target: int | None = None) -> np.ndarray:
    """Projected gradient descent on the L-inf ball of radius eps around x (no random start).

    x (N, C, H, W) in [0, 1] -> x' with |x' - x| <= eps and x' in [0, 1]. alpha defaults to
    2.5 * eps / steps (Madry et al.). Images that already fool the model are not moved further,
    so every image ends at a successful iterate when there was one.
    """
    alpha = 2.5 * eps / steps if alpha is None else alpha
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    x_adv = x.copy()
    for _ in range(steps):
        direction, logits = _direction(pm, x_adv, labels, target)
        active = ~_succeeded(logits, labels, target)
        if not active.any():
            break
        x_adv[active] = np.clip(x_adv[active] + alpha * direction[active], lo[active], hi[active])
    return x_adv


@dataclass
class AttackResult:
    """One eps: adversarial accuracy (against the true labels), targeted success rate (None when
    untargeted), the adversarial predictions (N,) and the largest perturbation max |x' - x|."""
    eps: float
    accuracy: float
    predictions: np.ndarray = field(repr=False)
    max_perturbation: float
    success_rate: float | None = None


def run_attack(pm: PixelModel, x: np.ndarray, labels: np.ndarray, eps_list, method: str = "fgsm",
               steps: int = 10, alpha: float | None = None, target: int | None = None, keep=(), clean=None):
    """Attack every image at every eps, in batches.

    x (N, C, H, W) pixels in [0, 1], labels (N,). Returns (clean predictions (N,),
    [AttackResult per eps], {eps: adversarial images of the indices in `keep`, (len(keep), C, H, W)}).
    `clean`: the clean predictions, when already known.
    """
    if method not in ("fgsm", "pgd"):
        raise ToolError(f"unknown attack method {method!r}; expected fgsm or pgd")
    eps_list = [check_eps(e) for e in eps_list]
    if steps < 1:
        raise ToolError(f"--steps must be >= 1, got {steps}")
    if alpha is not None:
        check_eps(alpha, "--alpha")
    keep = np.asarray(keep, dtype=np.int64)
    clean = pm.predict(x) if clean is None else clean
    results, kept = [], {}
    for eps in eps_list:
        preds, biggest = [], 0.0
        kept[eps] = np.empty((len(keep),) + x.shape[1:])
        for i in range(0, len(x), BATCH):
            xb, yb = x[i:i + BATCH], labels[i:i + BATCH]
            x_adv = fgsm(pm, xb, yb, eps, target) if method == "fgsm" else pgd(pm, xb, yb, eps, steps, alpha, target)
            biggest = max(biggest, float(np.abs(x_adv - xb).max()))
            preds.append(pm.predict(x_adv))
            inside = (keep >= i) & (keep < i + len(xb))
            kept[eps][inside] = x_adv[keep[inside] - i]
        preds = np.concatenate(preds)
        success = None
        if target is not None:
            eligible = labels != target
            success = float(np.mean(preds[eligible] == target)) if eligible.any() else float("nan")
        results.append(AttackResult(eps, float(np.mean(preds == labels)), preds, biggest, success))
    return clean, results, kept


def example_indices(labels, clean_pred, n: int, target: int | None = None) -> np.ndarray:
    """Up to n images to show: correctly classified ones first (and not of the target class)."""
    good = (clean_pred == labels) & (labels != target if target is not None else True)
    order = np.concatenate([np.flatnonzero(good), np.flatnonzero(~good)])
    return order[:n]


def format_table(clean_acc: float, results, target_name: str | None = None) -> str:
    """clean accuracy, then per eps: accuracy under attack, its change in percentage points, the
    largest perturbation and (targeted) the success rate."""
    head = f"{'eps':>8} {'accuracy':>9} {'change':>10} {'max |dx|':>9}"
    if target_name is not None:
        head += f"  success (-> {target_name})"
    rows = [f"clean accuracy: {clean_acc:.4f}", head]
    for r in results:
        row = f"{r.eps:>8.4g} {r.accuracy:>9.4f} {100 * (r.accuracy - clean_acc):>+6.1f} pts {r.max_perturbation:>9.4f}"
        if r.success_rate is not None:
            row += f"  {r.success_rate:.4f}"
        rows.append(row)
    if target_name is not None:
        rows.append(f"success: the fraction classified as {target_name} among the images of other classes")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------
def _cmd_image(args, pm, state) -> int:
    """One image of the user's: original, amplified perturbation with its scale, result, both predictions."""
    from ..checkpoint import atomic_write_bytes
    from ..data.images import load_image
    from ..functional.activation import softmax
    from ._common import check_image_shape
    from .figures import image_attack_figure
    mc, classes = state["model_config"], state.get("classes")
    img = load_image(args.image, mc["in_channels"], mc["image_size"], invert=args.invert,
                     fit=(state.get("data") or {}).get("fit", "pad"))
    check_image_shape(state, img.shape, f"the image read from {args.image!r}")
    x = img[None].astype(np.float64) / 255.0
    target = None if args.target is None else class_index(args.target, classes)
    name = lambda k: str(classes[k]) if classes else str(k)  # noqa: E731
    probs = softmax(pm.logits(x), dim=1)[0]
    clean = int(np.argmax(probs))
    print(f"{args.image}: predicted {name(clean)} ({probs[clean]:.3f}); {args.method.upper()}"
          + (f" targeted at {name(target)}" if target is not None else " away from that prediction"))
    base = os.path.splitext(args.out_image or args.image)[0]
    for eps in args.eps:
        if args.method == "fgsm":
            adv = fgsm(pm, x, np.array([clean]), eps, target)
        else:
            adv = pgd(pm, x, np.array([clean]), eps, args.steps, args.alpha, target)
        p_adv = softmax(pm.logits(adv), dim=1)[0]
        k = int(np.argmax(p_adv))
        fooled = (k == target) if target is not None else (k != clean)
        path = f"{base}_{args.method}_eps{eps:g}.png" if len(args.eps) > 1 or not args.out_image else args.out_image
        png = image_attack_figure(x[0], adv[0], eps, f"{name(clean)} ({probs[clean]:.2f})",
                                  f"{name(k)} ({p_adv[k]:.2f})",
                                  f"{args.method.upper()} eps={eps:g}: max |perturbation| = "
                                  f"{np.abs(adv - x).max():.3g} (amplified x{1 / eps:g} in the middle)")
        atomic_write_bytes(path, png)
        print(f"  eps {eps:g}: max |x' - x| = {np.abs(adv - x).max():.4g}; prediction {name(clean)} "
              f"({probs[clean]:.3f}) -> {name(k)} ({p_adv[k]:.3f}), {'fooled' if fooled else 'not fooled'}; "
              f"figure {path}")
    return 0


def _cmd(args) -> int:
    from ..checkpoint import atomic_write_bytes
    from .figures import adversarial_grid
    model, state = load_model(args.checkpoint)
    pm = PixelModel.from_state(model, state)
    if args.image:
        return _cmd_image(args, pm, state)
    images, labels, classes = load_test_split(state, args.data, args.data_root, args.limit)
    target = None if args.target is None else class_index(args.target, classes)
    x = pixels(images)
    data = args.data or (state.get("data") or {}).get("data") or state.get("config", {}).get("data")
    print(f"{args.method.upper()} attack on {len(x)} {data} test images, checkpoint {args.checkpoint}"
          + (f", {args.steps} steps of alpha {args.alpha if args.alpha is not None else '2.5 eps/steps'}"
             if args.method == "pgd" else "")
          + (f", targeted at class {target} ({classes[target]})" if target is not None else ""))
    clean = pm.predict(x)
    show = example_indices(labels, clean, args.examples, target)
    clean, results, kept = run_attack(pm, x, labels, args.eps, args.method, args.steps, args.alpha, target,
                                      keep=show, clean=clean)
    print(format_table(float(np.mean(clean == labels)), results, None if target is None else classes[target]))
    adversarial = [(r.eps, kept[r.eps], r.predictions[show]) for r in results]
    title = (f"{args.method.upper()}{' targeted -> ' + str(classes[target]) if target is not None else ''}: "
             f"original | perturbation (blue -eps .. red +eps) | adversarial")
    png = adversarial_grid(x[show], labels[show], clean[show], adversarial, classes, title)
    out_dir = args.out or run_dir(args.checkpoint)
    name = f"attack_{args.method}" + (f"_target{target}" if target is not None else "") + ".png"
    path = os.path.join(out_dir, name)
    atomic_write_bytes(path, png)
    print(f"wrote {path}")
    return 0


def _alpha_rule(value):
    """A PGD step in (0, 1]: eps's rule, and not 0 (a step of 0 never moves)."""
    return eps_rule(value) or (f"must be > 0 (a PGD step of 0 never moves), got {value:g}" if value == 0 else None)


def _data_rule(value):
    from ..data.source import check_data
    return check_data(value)


RULES = {"checkpoint": run_path, "data": _data_rule, "data_root": non_empty, "eps": eps_rule,
         "steps": integer(1), "alpha": _alpha_rule, "limit": integer(1), "examples": integer(1), "out": non_empty,
         "image": lambda v: existing_files([v]), "out_image": non_empty}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `attack` to an argparse subparsers object."""
    p = subparsers.add_parser("attack", help="adversarial examples (FGSM, PGD) against a trained model",
                              description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", help="checkpoint.npz or a run directory")
    p.add_argument("--data", default=None, help="dataset or image folder whose test split is attacked "
                                                "(default: the run's)")
    p.add_argument("--data-root", default=None, help="directory holding the dataset files (default: the run's)")
    p.add_argument("--method", choices=("fgsm", "pgd"), default="fgsm", help="one signed-gradient step, or PGD")
    p.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2],
                   help="L-inf budgets in pixel units [0, 1] (default 0.05 0.1 0.2)")
    p.add_argument("--steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument("--alpha", type=float, default=None, help="PGD step size (default 2.5 * eps / steps)")
    p.add_argument("--target", default=None, help="targeted attack: class index or name")
    p.add_argument("--limit", type=int, default=1000, help="attack the first N test images (default 1000)")
    p.add_argument("--examples", type=int, default=6, help="images shown in the grid (default 6)")
    p.add_argument("--out", default=None, help="directory of the grid PNG (default: the run directory)")
    p.add_argument("--image", default=None, metavar="PNG",
                   help="attack this image instead of the test split: original, amplified perturbation, result")
    p.add_argument("--invert", action="store_true", help="with --image: invert grey levels (dark object on light)")
    p.add_argument("--out-image", default=None, metavar="PNG",
                   help="with --image: the figure's file (default: IMAGE_METHOD_epsEPS.png beside the image)")
    p.set_defaults(func=lambda a: guarded("attack", _cmd, a, RULES, positional=("checkpoint",)))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.attack CKPT ...` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
