"""Training and evaluation: the loop behind `convgrad train` and `convgrad eval`.

A run directory holds metrics.csv (epoch, train_loss, train_accuracy, test_loss,
test_accuracy, seconds), checkpoint.npz (model, optimiser, scheduler, loader and dropout RNG
states, epoch, history: everything a resume needs), config.json and, at the end, PNG plots.
Every file is written atomically. A resumed run repeats the interrupted epoch from its start
with the same random state, so it ends with the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import checkpoint, models, nn, optim
from .parallel import DataParallel, available_cpus
from .data import DataLoader, RandomHorizontalFlip, load_dataset, standard_augmentation

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")
CHECKPOINT_NAME = "checkpoint.npz"


@dataclass
class TrainConfig:
    data: str = "fashion-mnist"
    data_root: str | None = None
    model: str = "lenet"
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
    limit_train: int | None = None      # use only the first n training images (quick runs, tests)
    limit_test: int | None = None
    eval_batch_size: int = 1000
    threads: int | None = None          # data-parallel threads (convgrad.parallel); None: the CPUs available
    out: str = "runs/latest"


# ---- pieces ------------------------------------------------------------------------------
def model_config(cfg: TrainConfig, data) -> dict:
    """What identifies the architecture in a checkpoint."""
    c, h = data.train.images.shape[1], data.train.images.shape[2]
    return {"name": cfg.model, "in_channels": int(c), "image_size": int(h), "num_classes": len(data.classes)}


def build_model(mcfg: dict, seed=None):
    """The model a run's model_config names (convgrad.models.build), initialised from seed."""
    return models.build(mcfg["name"], mcfg["in_channels"], mcfg["image_size"], mcfg["num_classes"],
                        generator=seed)


def build_optimizer(cfg: TrainConfig, model):
    """The optimiser cfg.optimizer names (sgd, adam, adamw) over model's parameters, with cfg's lr,
    momentum, weight decay and nesterov."""
    params = list(model.parameters())
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                         nesterov=cfg.nesterov)
    if cfg.optimizer == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected sgd, adam or adamw")


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
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}; expected none, step, cosine or onecycle")


def module_generators(model) -> dict:
    """Every numpy Generator held by a module (dropout masks), by 'module path.attribute'."""
    found = {}
    for name, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if isinstance(value, np.random.Generator):
                found[f"{name}.{attr}" if name else attr] = value
    return found


def load_data(cfg: TrainConfig):
    """(dataset, train loader, test loader) for cfg: the dataset found or downloaded, cut to
    cfg.limit_train/limit_test, the training loader shuffled with cfg.seed and augmented; both
    normalised with the dataset's mean and std."""
    data = load_dataset(cfg.data, root=cfg.data_root)
    train_x, train_y = data.train
    test_x, test_y = data.test
    if cfg.limit_train:
        train_x, train_y = train_x[:cfg.limit_train], train_y[:cfg.limit_train]
    if cfg.limit_test:
        test_x, test_y = test_x[:cfg.limit_test], test_y[:cfg.limit_test]
    transform = augmentation(cfg.augment)
    train = DataLoader(train_x, train_y, cfg.batch_size, shuffle=True, seed=cfg.seed, transform=transform,
                       mean=data.mean, std=data.std)
    test = DataLoader(test_x, test_y, cfg.eval_batch_size, shuffle=False, mean=data.mean, std=data.std)
    return data, train, test


AUGMENTATIONS = ("none", "flip", "crop-flip")


def augmentation(name: str):
    """The training-set transform by name (None for 'none')."""
    if name == "none":
        return None
    if name == "flip":
        return RandomHorizontalFlip(0.5)
    if name == "crop-flip":
        return standard_augmentation(padding=4, flip=True)
    raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")


def evaluate(model, loader, criterion=None):
    """(mean loss, accuracy, predictions) over a loader, in eval mode."""
    criterion = criterion or nn.CrossEntropyLoss(reduction="sum")
    was_training = model.training
    model.eval()
    total_loss, predictions, labels = 0.0, [], []
    for x, y in loader:
        logits = model(x)
        total_loss += float(criterion(logits, y))
        predictions.append(np.argmax(logits, axis=1))
        labels.append(y)
    model.train(was_training)
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    return total_loss / len(labels), float(np.mean(predictions == labels)), predictions


def write_metrics(path: str, history: list) -> None:
    """Write the per-epoch rows of history as metrics.csv (METRIC_COLUMNS), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in history:
        writer.writerow([row["epoch"]] + [f"{row[c]:.6f}" for c in METRIC_COLUMNS[1:]])
    checkpoint.atomic_write_text(path, buffer.getvalue())


# ---- the loop ----------------------------------------------------------------------------
class Trainer:
    """Owns the model, data, optimiser and scheduler of one run directory."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True, log=print):
        self.cfg, self.progress, self.log = cfg, progress, log
        self.data, self.train_loader, self.test_loader = load_data(cfg)
        self.model_config = model_config(cfg, self.data)
        self.model = build_model(self.model_config, seed=cfg.seed)
        if cfg.threads is None:
            cfg.threads = available_cpus()
        self.runner = DataParallel(self.model, cfg.threads)   # the model, its batches split across threads
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler, self.per_batch = build_scheduler(cfg, self.optimizer, len(self.train_loader))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.epoch, self.history = 0, []
        self.test_predictions = None        # of the last evaluation, for the confusion matrix
        os.makedirs(cfg.out, exist_ok=True)
        self.checkpoint_path = os.path.join(cfg.out, CHECKPOINT_NAME)
        if resume:
            self._restore()

    # checkpoints
    def _state(self) -> dict:
        return {"model_config": self.model_config, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "loader": self.train_loader.state_dict(),
                "generators": {k: g.bit_generator.state for k, g in module_generators(self.model).items()},
                "epoch": self.epoch, "history": self.history, "config": asdict(self.cfg),
                "classes": list(self.data.classes),
                "normalization": {"mean": list(self.data.mean), "std": list(self.data.std)}}

    def save(self) -> None:
        """Write checkpoint.npz, metrics.csv and config.json into the run directory (each atomically)."""
        checkpoint.save(self.checkpoint_path, self._state())
        write_metrics(os.path.join(self.cfg.out, "metrics.csv"), self.history)
        checkpoint.atomic_write_text(os.path.join(self.cfg.out, "config.json"),
                                     json.dumps({"train": asdict(self.cfg), "model": self.model_config}, indent=2))

    def _restore(self) -> None:
        if not os.path.exists(self.checkpoint_path):
            raise FileNotFoundError(f"--resume: no checkpoint at {self.checkpoint_path}")
        state = checkpoint.load(self.checkpoint_path)
        # (threads may differ: the sums then run in another order, a last-digit difference)
        saved_cfg = {k: v for k, v in state["config"].items() if k not in ("epochs", "out", "threads")}
        current = {k: v for k, v in asdict(self.cfg).items() if k not in ("epochs", "out", "threads")}
        if saved_cfg != current:
            changed = sorted(k for k in current if saved_cfg.get(k) != current[k])
            raise checkpoint.CheckpointError(
                f"--resume: the run in {self.cfg.out} was started with different options {changed}: "
                f"saved {[saved_cfg.get(k) for k in changed]}, now {[current[k] for k in changed]}")
        checkpoint.load_model_state(self.model, state, self.model_config, self.checkpoint_path)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.train_loader.load_state_dict(state["loader"])
        for key, gen in module_generators(self.model).items():
            gen.bit_generator.state = state["generators"][key]
        self.epoch, self.history = int(state["epoch"]), list(state["history"])
        self.log(f"resumed {self.cfg.out} after epoch {self.epoch}")

    # one epoch
    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training loader (forward, backward, optimiser and scheduler steps);
        returns (mean training loss, training accuracy)."""
        model, opt, crit = self.model, self.optimizer, self.criterion
        model.train()
        total_loss = correct = seen = 0
        start = time.perf_counter()
        bar = _progress(len(self.train_loader), f"epoch {self.epoch + 1}/{self.cfg.epochs}", self.progress)
        for x, y in self.train_loader:
            model.zero_grad()
            logits = self.runner(x)
            loss = float(crit(logits, y))
            self.runner.backward(crit.backward(), input_grad=False)   # the images need no gradient
            if self.cfg.clip_grad_norm:
                optim.clip_grad_norm_(model.parameters(), self.cfg.clip_grad_norm)
            opt.step()
            if self.scheduler is not None and self.per_batch:
                self.scheduler.step()
            total_loss += loss * len(y)
            correct += int(np.sum(np.argmax(logits, axis=1) == y))
            seen += len(y)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False)
        if bar is not None:
            bar.close()
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()
        return total_loss / seen, correct / seen

    def run(self) -> list:
        """Train the remaining epochs, evaluating and checkpointing after each; returns the history
        (one dict of metrics per epoch)."""
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            train_loss, train_acc = self.train_epoch()
            test_loss, test_acc, self.test_predictions = evaluate(self.runner, self.test_loader)
            self.epoch += 1
            row = {"epoch": self.epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                   "test_loss": test_loss, "test_accuracy": test_acc, "seconds": time.perf_counter() - start}
            self.history.append(row)
            self.save()
            self.log(f"epoch {self.epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                     f"test loss {test_loss:.4f} acc {test_acc:.4f} | {row['seconds']:.1f} s")
        return self.history


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


def load_for_inference(path: str):
    """(model in eval mode, checkpoint state) from a checkpoint file or run directory."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    state = checkpoint.load(path)
    if "model_config" not in state:
        raise checkpoint.CheckpointError(f"{path!r} holds no model description")
    model = build_model(state["model_config"])
    checkpoint.load_model_state(model, state, state["model_config"], path)
    return model.eval(), state
