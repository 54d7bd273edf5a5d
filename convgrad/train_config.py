"""`convgrad train`'s options as a dataclass, and what they build: data, model, optimiser,
scheduler and a Trainer (train.py) into the run directory; and the way back from a run
directory to its model (load_for_inference), used by eval, predict, attack, saliency, report.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from . import checkpoint, model_spec, nn, optim, rundir
from .data import DataLoader, RandomHorizontalFlip, standard_augmentation
from .data.source import DataSpec, RunData, load_run_data
from .parallel import available_cpus
from .train import Trainer

AUGMENTATIONS = ("none", "flip", "crop-flip")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine", "onecycle")


@dataclass
class TrainConfig:
    data: str = "fashion-mnist"         # a dataset name or a folder of class subfolders
    data_root: str | None = None
    image_size: int | None = None       # folders only
    channels: int | None = None         # folders only
    fit: str = "pad"                    # folders only: pad | crop for non-square images
    model: str = "lenet"                # a built-in name, package.module:factory or file.py:factory
    model_args: dict = field(default_factory=dict)
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"              # sgd | adam | adamw
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: str = "none"             # none | step | cosine | onecycle
    augment: str = "none"               # none | flip | crop-flip (random crop with padding 4, then flip)
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None
    seed: int = 0
    val_split: float = 0.0              # fraction of the training images held out for validation
    early_stopping: int | None = None   # epochs without a better val accuracy before stopping
    test_every_epoch: bool = False
    limit_train: int | None = None      # use only the first n training images (quick runs, tests)
    limit_test: int | None = None
    eval_batch_size: int = 1000
    checkpoint_every: int | None = None  # steps; None: about every 5 minutes
    threads: int | None = None          # data-parallel threads (convgrad.parallel); None: the CPUs available
    out: str = "runs/run"

    def data_spec(self) -> DataSpec:
        return DataSpec(self.data, self.data_root, self.image_size, self.channels, self.fit, self.val_split,
                        self.seed, self.limit_train, self.limit_test)


def build_optimizer(cfg: TrainConfig, model):
    params = list(model.parameters())
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                         nesterov=cfg.nesterov)
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected one of {OPTIMIZERS}")


def build_scheduler(cfg: TrainConfig, opt, steps_per_epoch: int):
    """Returns (scheduler or None, whether it steps per batch)."""
    s = optim.lr_scheduler
    if cfg.scheduler == "none":
        return None, False
    if cfg.scheduler == "step":
        return s.StepLR(opt, step_size=max(1, cfg.epochs // 3), gamma=0.1), False
    if cfg.scheduler == "cosine":
        return s.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch), True
    if cfg.scheduler == "onecycle":
        return s.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch), True
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}; expected one of {SCHEDULERS}")


def augmentation(name: str):
    """The training-set transform by name (None for 'none')."""
    if name == "none":
        return None
    if name == "flip":
        return RandomHorizontalFlip(0.5)
    if name == "crop-flip":
        return standard_augmentation(padding=4, flip=True)
    raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")


class Loaders:
    """The DataLoaders of a run: train (shuffled, augmented), val (or None) and test."""

    def __init__(self, cfg: TrainConfig, data: RunData):
        kw = {"mean": data.mean, "std": data.std}
        self.train = DataLoader(*data.train, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                transform=augmentation(cfg.augment), **kw)
        self.val = DataLoader(*data.val, cfg.eval_batch_size, shuffle=False, **kw) if data.val is not None else None
        self.test = DataLoader(*data.test, cfg.eval_batch_size, shuffle=False, **kw)


def make_trainer(cfg: TrainConfig, resume: bool = False, overwrite: bool = False, refuse_used: bool = False,
                 progress: bool | None = None, plots: bool = True, log=print, data: RunData | None = None,
                 trainer_class=None):
    """(Trainer, Loaders, RunData) of a configuration; fit with trainer.fit(l.train, l.val, cfg.epochs, l.test).
    trainer_class: a Trainer subclass (distributed/training.py), default Trainer."""
    data = data or load_run_data(cfg.data_spec())
    loaders = Loaders(cfg, data)
    info = data.info
    mc = model_spec.model_config(cfg.model, cfg.model_args, info["in_channels"], info["image_size"],
                                 len(data.classes))
    model = model_spec.build(mc, seed=cfg.seed)
    if cfg.threads is None:
        cfg.threads = available_cpus()
    opt = build_optimizer(cfg, model)
    scheduler, per_batch = build_scheduler(cfg, opt, len(loaders.train))
    run_info = {"model_config": mc, "config": asdict(cfg), "classes": list(data.classes),
                "normalization": {"mean": list(data.mean), "std": list(data.std)}, "data": info}
    trainer = (trainer_class or Trainer)(model, opt, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), cfg.out,
                      scheduler=scheduler, scheduler_per_batch=per_batch, threads=cfg.threads,
                      clip_grad_norm=cfg.clip_grad_norm, checkpoint_every=cfg.checkpoint_every,
                      early_stopping=cfg.early_stopping, test_every_epoch=cfg.test_every_epoch, resume=resume,
                      overwrite=overwrite, refuse_used=refuse_used, run_info=run_info, progress=progress,
                      plots=plots, log=log)
    return trainer, loaders, data


def checkpoint_file(path: str) -> str:
    """A run directory -> its best.npz when there is one, else its checkpoint.npz; a file as is."""
    if os.path.isdir(path):
        best = os.path.join(path, rundir.BEST)
        return best if os.path.isfile(best) else os.path.join(path, rundir.CHECKPOINT)
    return path


def load_for_inference(path: str):
    """(model in eval mode, checkpoint state) from a checkpoint file or run directory."""
    path = checkpoint_file(path)
    state = checkpoint.load(path)
    if "model_config" not in state or "model" not in state:
        raise checkpoint.CheckpointError(f"{path} holds no model description (not a convgrad training checkpoint)")
    try:
        model = model_spec.build(state["model_config"])
    except (model_spec.ModelSpecError, KeyError, TypeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild its model: {exc}") from exc
    checkpoint.load_model_state(model, state, state["model_config"], path)
    return model.eval(), state
