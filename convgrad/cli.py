"""The `convgrad` command: train, eval, predict, demo (and explain, gradcheck, attack, ...).

Every argument is checked before any work (bad values: one line `convgrad CMD: error: ...`,
exit 2); a user error found later (a missing or corrupt file, an unreadable image) is one line
naming the file, exit 1; Ctrl-C or SIGTERM during training writes a checkpoint, exit 130.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time

import numpy as np

from .cli_args import (HelpFormatter, OneLineParser, UsageError, check_args, existing_files, run_path,
                       integer, non_empty, number)

EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130


def _cmd_demo(args) -> int:
    """A stack of convolutions forward and backward on a realistic batch, then a gradient check."""
    from . import gradcheck, nn
    rng = np.random.default_rng(args.seed)
    net = nn.Sequential(nn.Conv2d(1, 32, 3, generator=1), nn.Conv2d(32, 64, 3, stride=2, padding=1, generator=2),
                        nn.Conv2d(64, 64, 3, padding="same", groups=64, generator=3),
                        nn.Conv2d(64, 10, 1, generator=4))
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    start = time.perf_counter()
    y = net(x)
    dx = net.backward(np.ones_like(y) / y.size)
    ms = (time.perf_counter() - start) * 1e3
    print(f"forward+backward of {len(net)} convolutions on a batch {x.shape} -> {y.shape}: {ms:.1f} ms")
    for name, p in net.named_parameters():
        print(f"  {name:<10} {str(p.shape):<16} |grad| = {np.linalg.norm(p.grad):.4e}")
    print(f"  input grad {dx.shape}, |dx| = {np.linalg.norm(dx):.4e}")
    small = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, generator=5), nn.Conv2d(3, 2, 2, generator=6))
    report = gradcheck(small, rng.standard_normal((2, 2, 7, 7)))
    print(report)
    return 0 if report.passed else 1


# ---- train ------------------------------------------------------------------------------------
def default_out(model: str) -> str:
    """runs/MODEL (a factory spec: runs/FACTORY); a used one becomes runs/MODEL-2, -3, ..."""
    return os.path.join("runs", model.rpartition(":")[2].split(".")[-1] or "run")


def _model_spec_check(spec: str):
    from .model_spec import ModelSpecError, resolve
    if not spec.strip():
        return "must not be empty"
    try:
        resolve(spec)
    except ModelSpecError as exc:
        return str(exc)
    return None


def _json_object(text: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"must be a JSON object such as '{{\"width\": 16}}', got {text!r} ({exc.msg})"
    return None if isinstance(value, dict) else f"must be a JSON object (keyword arguments), got {text!r}"


def _data_check(value: str):
    from .data.source import check_data
    return check_data(value)


TRAIN_RULES = {
    "data": _data_check, "data_root": non_empty, "model": _model_spec_check, "model_args": _json_object,
    "image_size": integer(4, 512), "epochs": integer(1), "batch_size": integer(1), "lr": number(above=0),
    "momentum": number(at_least=0, below=1), "weight_decay": number(at_least=0),
    "label_smoothing": number(at_least=0, below=1), "clip_grad_norm": number(above=0), "seed": integer(0),
    "val_split": number(at_least=0, below=1), "early_stopping": integer(1), "limit_train": integer(1),
    "limit_test": integer(1), "eval_batch_size": integer(1), "checkpoint_every": integer(1),
    "threads": integer(1, 256), "out": non_empty,
}


def _check_train_args(args) -> None:
    check_args(args, TRAIN_RULES)
    from .data.source import is_named
    from .models import MODELS
    if args.model in MODELS and json.loads(args.model_args):
        raise UsageError(f"--model-args apply to a factory spec (MODULE:FACTORY or FILE.py:FACTORY), not to the "
                         f"built-in model {args.model!r}")
    if is_named(args.data) and (args.image_size is not None or args.channels is not None):
        raise UsageError("--image-size and --channels apply to an image folder (--data DIR), "
                         f"not to the dataset {args.data!r}")
    if args.nesterov and args.optimizer != "sgd":
        raise UsageError(f"--nesterov applies to --optimizer sgd, not to {args.optimizer}")
    if args.early_stopping is not None and not args.val_split:
        raise UsageError("--early-stopping needs a validation split (--val-split F, e.g. 0.1)")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    from .rundir import is_used
    out = args.out or default_out(args.model)
    if args.resume and not os.path.isfile(os.path.join(out, "checkpoint.npz")):
        raise UsageError(f"--resume: no checkpoint.npz in {out}")
    if args.out is not None and not (args.resume or args.overwrite) and is_used(args.out):
        raise UsageError(f"{args.out} already holds a run: pass --resume to continue it, --overwrite to replace it, "
                         f"or another --out")


def _train_config(args):
    from .train_config import TrainConfig
    return TrainConfig(data=args.data, data_root=args.data_root, image_size=args.image_size, channels=args.channels,
                       fit=args.fit, model=args.model, model_args=json.loads(args.model_args), epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
                       nesterov=args.nesterov, weight_decay=args.weight_decay, scheduler=args.scheduler,
                       augment=args.augment, label_smoothing=args.label_smoothing,
                       clip_grad_norm=args.clip_grad_norm, seed=args.seed, val_split=args.val_split,
                       early_stopping=args.early_stopping, test_every_epoch=args.test_every_epoch,
                       limit_train=args.limit_train, limit_test=args.limit_test,
                       eval_batch_size=args.eval_batch_size, checkpoint_every=args.checkpoint_every,
                       threads=args.threads, out=args.out or default_out(args.model))


def _resume_command(argv, out: str) -> str:
    """The command line that continues this run: the same options, --out the run's, plus --resume."""
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word in ("--out", "--overwrite", "--resume") or word.startswith("--out="):
            skip = word == "--out"
            continue
        words.append(word)
    return shlex.join(["convgrad", *words, "--out", out, "--resume"])


def _cmd_train(args) -> int:
    from .distributed.comm import launched_by_mpi
    if args.distributed or launched_by_mpi():       # every rank of `mpiexec -n P convgrad train`
        from .distributed.training import run_train_command
        return run_train_command(_train, args)
    return _train(args)


def _train(args, trainer_class=None) -> int:
    from .train import TrainingInterrupted
    from .train_config import make_trainer
    cfg = _train_config(args)
    trainer, loaders, data = make_trainer(cfg, resume=args.resume, overwrite=args.overwrite,
                                          refuse_used=args.out is not None, trainer_class=trainer_class,
                                          progress=None if not args.no_progress
                                          else False, plots=not args.no_plots)
    explicit = "explicit backward" if trainer.explicit else "forward-only, recorded mode"
    split = f" (+{len(loaders.val.labels)} validation)" if loaders.val is not None else ""
    threads = f"{trainer.threads_used} thread(s)"
    if trainer.threads_used != cfg.threads:
        threads += f" (asked for {cfg.threads}; a forward-only model runs unsplit)"
    print(f"training {cfg.model} ({explicit}) on {data.info['data']}: {len(loaders.train.labels)} train{split} / "
          f"{len(loaders.test.labels)} test images {tuple(data.train.images.shape[1:])}, "
          f"{sum(p.data.size for p in trainer.model.parameters())} parameters, {cfg.optimizer} lr {cfg.lr}, "
          f"batch {cfg.batch_size}, {cfg.epochs} epoch(s), {threads} -> {trainer.out}", flush=True)
    start = time.perf_counter()
    try:
        history = trainer.fit(loaders.train, loaders.val, cfg.epochs, loaders.test)
    except TrainingInterrupted as exc:
        print(f"convgrad train: {exc}; resume with: {_resume_command(args.argv, trainer.out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    final = history[-1] if history else None
    if final and final.get("test_accuracy") is not None:
        line = (f"test accuracy: {final['test_accuracy']:.4f} (test loss {final['test_loss']:.4f}) after "
                f"{final['epoch']} epoch(s)")
        best = (trainer.results or {}).get("best")
        if best:
            line += (f"; best validation epoch {best['epoch']} (val accuracy {best['val_accuracy']:.4f}): "
                     f"test accuracy {best['test_accuracy']:.4f}")
        print(f"{line}; {time.perf_counter() - start:.0f} s this invocation; results in {trainer.out}")
    return 0


def _add_train(sub):
    from .data.images import FITS
    from .models import MODELS
    from .train_config import AUGMENTATIONS, OPTIMIZERS, SCHEDULERS
    p = sub.add_parser("train", help="train a model and evaluate it", formatter_class=HelpFormatter,
                       description="Train a model on a dataset or an image folder into a run directory "
                                   "(metrics.csv, steps.csv, checkpoint.npz, best.npz, config.json, plots).")
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, mnist, cifar-10, or a folder of class subfolders of PNG/JPEG images "
                        "(DIR/<class>/..., or DIR/train/<class>/... and DIR/test/<class>/...)")
    p.add_argument("--data-root", default=None, help="directory holding a named dataset's files")
    p.add_argument("--image-size", type=int, default=None, help="image folders: resize to N x N (default: their size)")
    p.add_argument("--channels", type=int, default=None, choices=(1, 3),
                   help="image folders: 1 (grey) or 3 (RGB) (default: grey when every image is)")
    p.add_argument("--fit", default="pad", choices=FITS, help="image folders: make non-square images square by "
                                                              "padding or centre-cropping")
    p.add_argument("--model", default="lenet", metavar="{" + ",".join(MODELS) + "} | MODULE:FACTORY | FILE.py:FACTORY",
                   help="a built-in model, or a function returning a Module")
    p.add_argument("--model-args", default="{}", metavar="JSON", help="keyword arguments of the model factory")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training images")
    p.add_argument("--batch-size", type=int, default=64, help="training images per step")
    p.add_argument("--eval-batch-size", type=int, default=1000, help="images per evaluation batch")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="update rule")
    p.add_argument("--momentum", type=float, default=0.9, help="sgd momentum")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty (decoupled for adamw)")
    p.add_argument("--scheduler", default="none", choices=SCHEDULERS, help="learning-rate schedule")
    p.add_argument("--augment", default="none", choices=AUGMENTATIONS,
                   help="training-set augmentation: horizontal flips, or random crops (padding 4) and flips")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing in [0, 1)")
    p.add_argument("--clip-grad-norm", type=float, default=None, help="clip the gradients' 2-norm to this (> 0)")
    p.add_argument("--seed", type=int, default=0, help="initial weights, shuffling, augmentation, validation split")
    p.add_argument("--val-split", type=float, default=0.0,
                   help="fraction of the training images held out (seeded) for validation each epoch")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop after this many epochs without a better validation accuracy")
    p.add_argument("--test-every-epoch", action="store_true",
                   help="evaluate the test set every epoch (default: after the last one)")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="write checkpoint.npz every N steps (default: about every 5 minutes)")
    p.add_argument("--threads", type=int, default=None,
                   help="split each batch across N threads (default: the CPUs available); models with "
                        "BatchNorm or Dropout train on one")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks (implied when started by mpiexec; needs convgrad[distributed])")
    p.add_argument("--out", default=None,
                   help="run directory (default: runs/MODEL, or runs/MODEL-2, ... when that is used); a used "
                        "--out is refused unless --resume or --overwrite")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr "
                                                               "is not a terminal)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.set_defaults(func=_cmd_train, check=_check_train_args)


# ---- eval ---------------------------------------------------------------------------------------
def _cmd_eval(args) -> int:
    from . import metrics
    from .checkpoint import atomic_write_text
    from .data import DataLoader
    from .tools._common import load_model, load_test_split, run_dir
    from .train import evaluate, json_safe
    model, state, path = load_model(args.checkpoint, with_path=True)
    x, y, classes = load_test_split(state, args.data, args.data_root, args.limit)
    norm = state["normalization"]
    loader = DataLoader(x, y, args.batch_size, shuffle=False, mean=norm["mean"], std=norm["std"])
    loss, acc, predictions = evaluate(model, loader)
    counts = metrics.confusion_counts(y, predictions, len(classes))
    rows = metrics.per_class(counts)
    print(metrics.format_table(rows, classes))
    out_dir = args.out or run_dir(args.checkpoint)
    cm_path = os.path.join(out_dir, "eval_confusion_matrix.csv")
    atomic_write_text(cm_path, "true\\predicted," + ",".join(f'"{c}"' for c in classes) + "\n" + "".join(
        f'"{c}",' + ",".join(str(v) for v in counts[i]) + "\n" for i, c in enumerate(classes)))
    try:
        from . import plots
        png = plots.confusion_matrix(y, predictions, classes, os.path.join(out_dir, "eval_confusion_matrix.png"))
        print(f"confusion matrix -> {cm_path}, {png}")
    except ImportError:
        print(f"confusion matrix -> {cm_path}")
    result = {"checkpoint": path, "data": (state.get("data") or {}).get("data", args.data),
              "test_images": int(len(y)), "test_loss": round(loss, 6), "test_accuracy": round(acc, 6),
              "macro_f1": metrics.macro(rows, "f1"), "confusion_matrix": counts.tolist(),
              "per_class": {str(c): r for c, r in zip(classes, rows)}}
    print(json.dumps(json_safe(result), allow_nan=False))
    return 0


def _add_eval(sub):
    ev = sub.add_parser("eval", help="evaluate a run on its test split", formatter_class=HelpFormatter,
                        description="Accuracy, loss, per-class precision/recall/F1 and the confusion matrix of a "
                                    "run (its best.npz when there is one, else checkpoint.npz) on the test split "
                                    "of the data it was trained on.")
    ev.add_argument("checkpoint", help="a run directory or a checkpoint .npz")
    ev.add_argument("--data", default=None, help="another dataset or image folder (default: the run's)")
    ev.add_argument("--data-root", default=None, help="directory holding a named dataset (default: the run's)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    ev.add_argument("--batch-size", type=int, default=1000, help="images per evaluation batch")
    ev.add_argument("--out", default=None, help="directory of eval_confusion_matrix.csv (default: the run's)")
    ev.set_defaults(func=_cmd_eval, check=lambda a: check_args(a, {
        "checkpoint": run_path, "data": _data_check, "data_root": non_empty, "limit": integer(1),
        "batch_size": integer(1), "out": non_empty}, positional=("checkpoint",)))


# ---- predict ------------------------------------------------------------------------------------
KEPT_PATCHES = 256 * 1024 * 1024    # bytes of patch matrices the layers may keep for their backward (speed for memory)
INVERSE_BACKGROUND = 0.5      # |image background - training background| (in [0, 1]) that earns a hint


def _cmd_predict(args) -> int:
    from .data.images import border_mean, load_image
    from .functional.activation import softmax
    from .stepping import logits
    from .tools._common import load_model
    model, state = load_model(args.checkpoint)
    mc, norm, classes = state["model_config"], state["normalization"], state["classes"]
    data_info = state.get("data") or {}
    fit = args.fit or data_info.get("fit", "pad")
    mean = np.asarray(norm["mean"]).reshape(-1, 1, 1)
    std = np.asarray(norm["std"]).reshape(-1, 1, 1)
    dtype = next(iter(model.parameters())).dtype
    for path in args.images:
        pixels = load_image(path, mc["in_channels"], mc["image_size"], invert=args.invert, fit=fit)
        x = ((pixels / 255.0 - mean) / std)[None].astype(dtype)
        probs = softmax(logits(model, x).astype(np.float64), dim=1)[0]
        top = np.argsort(probs)[::-1][:args.top]
        print(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.3f}" for i in top))
        trained = data_info.get("background")
        if trained is not None and not args.invert:
            here = border_mean(pixels[None])
            if abs(here - trained) > INVERSE_BACKGROUND:
                print(f"  hint: {path} has a {'light' if here > trained else 'dark'} background ({here:.2f}) but the "
                      f"training images' is {'dark' if here > trained else 'light'} ({trained:.2f}); "
                      f"if the object is {'dark on light' if here > trained else 'light on dark'}, try --invert",
                      file=sys.stderr)
    return 0


def _add_predict(sub):
    from .data.images import FITS
    pr = sub.add_parser("predict", help="top classes of image files (PNG/JPEG)", formatter_class=HelpFormatter,
                        description="Classify image files with a run's model, preprocessed as its training data "
                                    "(grey/RGB, size; non-square images padded or centre-cropped, 16-bit scaled).")
    pr.add_argument("checkpoint", help="a run directory or a checkpoint .npz")
    pr.add_argument("images", nargs="+", help="PNG/JPEG files")
    pr.add_argument("--top", type=int, default=3, help="how many classes to print")
    pr.add_argument("--fit", default=None, choices=FITS, help="non-square images: pad or centre-crop "
                                                              "(default: as the run's data, else pad)")
    pr.add_argument("--invert", action="store_true",
                    help="invert grey levels (dark object on light background, unlike Fashion-MNIST)")
    pr.set_defaults(func=_cmd_predict, check=lambda a: check_args(a, {
        "checkpoint": run_path, "images": existing_files, "top": integer(1)},
        positional=("checkpoint", "images")))


# ---- the parser and main ------------------------------------------------------------------------
def _version() -> str:
    try:
        from importlib.metadata import version
        return version("convgrad")
    except Exception:
        from . import __version__
        return __version__


def build_parser() -> OneLineParser:
    """The `convgrad` command's argument parser, with every subcommand (the docs' command reference
    is generated from it)."""
    parser = OneLineParser(prog="convgrad", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"convgrad {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run convolutions forward and backward and a gradient check",
                          formatter_class=HelpFormatter)
    demo.add_argument("--seed", type=int, default=0, help="seed of the random batch")
    demo.set_defaults(func=_cmd_demo, check=lambda a: check_args(a, {"seed": integer(0)}))
    from .explain import add_parser as add_explain
    add_explain(sub)
    from .tools import add_parsers as add_tools
    add_tools(sub)          # gradcheck, attack, saliency, report
    from .tools.export import add_parser as add_export
    add_export(sub)         # export RUN --format onnx|safetensors
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    return parser


def _user_errors() -> tuple:
    """The exceptions that are a user's error (a bad file, a missing dataset): one line, exit 1."""
    from .checkpoint import CheckpointError
    from .data import DownloadError
    return (CheckpointError, DownloadError, OSError, ValueError, ImportError)


def _terminate_as_interrupt():
    """SIGTERM outside training (which saves a checkpoint first, see train.py) stops like Ctrl-C.
    Returns a function restoring the previous handler."""
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    """Run the `convgrad` command on argv (default sys.argv[1:]); returns the exit status."""
    from .explain import normalise_argv
    from .functional.convolution import kept_budget, set_kept_budget
    from .memory import retain_freed_memory
    argv = normalise_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    command = f"convgrad {args.command}"
    try:
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
    except UsageError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    retain_freed_memory()           # an application may make this process-wide choice; see memory.py
    kept_before = kept_budget()
    set_kept_budget(KEPT_PATCHES)   # so may it trade memory for speed while it runs: kept patch matrices (workspace.py)
    restore_sigterm = _terminate_as_interrupt()
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except _user_errors() as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:        # a bug: still one line, the traceback on request
        if os.environ.get("CONVGRAD_DEBUG"):
            raise
        print(f"{command}: internal error: {type(exc).__name__}: {exc} (CONVGRAD_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR
    finally:
        restore_sigterm()
        set_kept_budget(kept_before)


if __name__ == "__main__":
    sys.exit(main())
