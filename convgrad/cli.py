"""The `convgrad` command: train, eval, predict, demo (and explain, gradcheck, attack, ...)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


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


def _cmd_train(args) -> int:
    from .distributed.comm import launched_by_mpi
    if args.distributed or launched_by_mpi():       # every rank of `mpiexec -n P convgrad train`
        from .distributed.training import run_train_command
        return run_train_command(_train, args)
    from .train import Trainer
    return _train(args, Trainer)


def _train(args, trainer_class) -> int:
    from . import plots
    from .train import TrainConfig, evaluate
    cfg = TrainConfig(data=args.data, data_root=args.data_root, model=args.model, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
                      nesterov=args.nesterov,
                      weight_decay=args.weight_decay, scheduler=args.scheduler, augment=args.augment,
                      label_smoothing=args.label_smoothing, clip_grad_norm=args.clip_grad_norm, seed=args.seed,
                      limit_train=args.limit_train, limit_test=args.limit_test, out=args.out,
                      threads=args.threads)
    trainer = trainer_class(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"training {cfg.model} on {cfg.data}: {len(trainer.train_loader.labels)} train / "
          f"{len(trainer.test_loader.labels)} test images, {sum(p.data.size for p in trainer.model.parameters())} "
          f"parameters, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}, {cfg.epochs} epoch(s), "
          f"{cfg.threads} thread(s) -> {cfg.out}")
    start = time.perf_counter()
    history = trainer.run()
    if not args.no_plots:
        predictions = trainer.test_predictions
        if predictions is None:             # resumed after the last epoch: nothing evaluated yet
            _, _, predictions = evaluate(trainer.runner, trainer.test_loader)
        image = trainer.test_loader.convert(trainer.test_loader.images[:1])[0]
        try:
            written = plots.all_plots(cfg.out, history, trainer.model, trainer.test_loader.labels, predictions,
                                      trainer.data.classes, image)
            print("plots: " + ", ".join(os.path.basename(p) for p in written))
        except ImportError as exc:
            print(f"plots skipped: {exc}")
    final = history[-1] if history else None
    if final:
        print(f"test accuracy: {final['test_accuracy']:.4f} (test loss {final['test_loss']:.4f}) after "
              f"{final['epoch']} epoch(s); {time.perf_counter() - start:.0f} s this invocation; "
              f"results in {cfg.out}")
    return 0


def _cmd_eval(args) -> int:
    from .data import DataLoader, load_dataset
    from .train import evaluate, load_for_inference
    model, state = load_for_inference(args.checkpoint)
    data = load_dataset(args.data, root=args.data_root)
    x, y = data.test
    if x.shape[1:] != (state["model_config"]["in_channels"], state["model_config"]["image_size"],
                       state["model_config"]["image_size"]):
        raise SystemExit(f"convgrad eval: the checkpoint expects images of shape "
                         f"({state['model_config']['in_channels']}, {state['model_config']['image_size']}, ...) "
                         f"but {args.data} has {x.shape[1:]}")
    norm = state["normalization"]
    loader = DataLoader(x, y, 1000, shuffle=False, mean=norm["mean"], std=norm["std"])
    loss, acc, _ = evaluate(model, loader)
    print(json.dumps({"checkpoint": args.checkpoint, "data": args.data, "test_images": int(len(y)),
                      "test_loss": round(loss, 6), "test_accuracy": round(acc, 6)}))
    return 0


def _cmd_predict(args) -> int:
    from .data.images import load_image
    from .functional.activation import softmax
    from .train import load_for_inference
    model, state = load_for_inference(args.checkpoint)
    mc, norm, classes = state["model_config"], state["normalization"], state["classes"]
    for path in args.images:
        pixels = load_image(path, mc["in_channels"], mc["image_size"], invert=args.invert)
        mean = np.asarray(norm["mean"]).reshape(-1, 1, 1)
        std = np.asarray(norm["std"]).reshape(-1, 1, 1)
        x = ((pixels / 255.0 - mean) / std)[None].astype(model_dtype(model))
        probs = softmax(model(x).astype(np.float64), dim=1)[0]
        top = np.argsort(probs)[::-1][:3]
        print(f"{path}: " + ", ".join(f"{classes[i]} {probs[i]:.3f}" for i in top))
    return 0


def model_dtype(model):
    """The dtype of the model's parameters (the first one's)."""
    return next(iter(model.parameters())).dtype


def _add_train(sub):
    from .models import MODELS
    from .train import AUGMENTATIONS
    p = sub.add_parser("train", help="train a CNN and evaluate it every epoch")
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, mnist or cifar-10")
    p.add_argument("--data-root", default=None, help="directory holding the dataset files")
    p.add_argument("--model", default="lenet", choices=MODELS)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", default="none", choices=("none", "step", "cosine", "onecycle"))
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    p.add_argument("--augment", default="none", choices=AUGMENTATIONS,
                   help="training-set augmentation: horizontal flips, or random crops (padding 4) and flips")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--clip-grad-norm", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--threads", type=int, default=None,
                   help="split each batch across N threads (default: the CPUs available); models with "
                        "BatchNorm or Dropout train on one")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks (implied when started by mpiexec; needs convgrad[distributed])")
    p.add_argument("--out", default="runs/latest", help="run directory (metrics, checkpoint, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_cmd_train)


def build_parser() -> argparse.ArgumentParser:
    """The `convgrad` command's argument parser, with every subcommand (the docs' command reference
    is generated from it)."""
    parser = argparse.ArgumentParser(prog="convgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run convolutions forward and backward and a gradient check")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    from .explain import add_parser as add_explain
    add_explain(sub)
    from .tools import add_parsers as add_tools
    add_tools(sub)          # gradcheck, attack, saliency, report
    from .tools.export import add_parser as add_export
    add_export(sub)         # export RUN --format onnx|safetensors
    _add_train(sub)
    ev = sub.add_parser("eval", help="evaluate a checkpoint on a dataset's test split")
    ev.add_argument("checkpoint", help="checkpoint.npz or a run directory")
    ev.add_argument("--data", default="fashion-mnist")
    ev.add_argument("--data-root", default=None)
    ev.set_defaults(func=_cmd_eval)
    pr = sub.add_parser("predict", help="top-3 classes of image files (PNG/JPEG)")
    pr.add_argument("checkpoint")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--invert", action="store_true",
                    help="invert grey levels (dark object on light background, unlike Fashion-MNIST)")
    pr.set_defaults(func=_cmd_predict)
    return parser


def main(argv=None) -> int:
    """Run the `convgrad` command on argv (default sys.argv[1:]); returns the exit status."""
    from .checkpoint import CheckpointError
    from .memory import retain_freed_memory
    from .data import DownloadError
    from .explain import normalise_argv
    args = build_parser().parse_args(normalise_argv(sys.argv[1:] if argv is None else argv))
    retain_freed_memory()           # an application may make this process-wide choice; see memory.py
    try:
        return args.func(args)
    except (CheckpointError, DownloadError, FileNotFoundError) as exc:
        print(f"convgrad {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
