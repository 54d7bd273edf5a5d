"""Training any Module into a run directory: the loop behind `convgrad train`.

    trainer = Trainer(model, optimizer, nn.CrossEntropyLoss(), out="runs/mine")
    history = trainer.fit(train_loader, val_loader, epochs=10, test_loader=test_loader)

The model may be explicit (`model.backward(loss_fn.backward())`) or forward-only (recorded
mode: `loss_fn(model(convgrad.tensor(x)), y).backward()`); see stepping.py. The run directory
(rundir.py) receives metrics.csv (one row per epoch), steps.csv (one per step), checkpoint.npz
(every `checkpoint_every` steps, by default about every 5 minutes, at every epoch's end, and on
Ctrl-C / SIGTERM), best.npz (best validation accuracy), config.json, results.json and plots.
A checkpoint holds the position inside the epoch and every random state, so `resume=True`
continues mid-epoch with the same numbers an uninterrupted run gives. A Ctrl-C or SIGTERM
finishes the current step, writes the checkpoint and raises TrainingInterrupted (a
KeyboardInterrupt); a second one stops at once.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time

import numpy as np

from . import checkpoint, nn, optim, rundir
from .interrupt import catch_signals
from .parallel import DataParallel
from .stepping import is_explicit, logits as model_logits, train_step

METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                  "test_accuracy", "lr", "seconds")
CHECKPOINT_NAME = rundir.CHECKPOINT
DEFAULT_CHECKPOINT_SECONDS = 300.0
# options that may change between a run and its resumption
RESUMABLE_CHANGES = ("epochs", "out", "threads", "resume", "overwrite", "checkpoint_every", "no_progress",
                     "no_plots", "early_stopping", "test_every_epoch")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during fit(): the checkpoint at the current step is written (see .checkpoint)."""

    def __init__(self, message: str, checkpoint_path: str, out: str):
        super().__init__(message)
        self.message, self.checkpoint, self.out = message, checkpoint_path, out

    def __str__(self) -> str:
        return self.message


def evaluate(model, loader, criterion=None):
    """(mean loss, accuracy, predictions (N,)) over a loader, in eval mode, recording nothing."""
    criterion = criterion or nn.CrossEntropyLoss(reduction="sum")
    was_training = model.training
    model.eval()
    total_loss, predictions, labels = 0.0, [], []
    try:
        for x, y in loader:
            out = model_logits(model, x)
            total_loss += float(criterion(out, y))
            predictions.append(np.argmax(out, axis=1))
            labels.append(y)
    finally:
        model.train(was_training)
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    return total_loss / len(labels), float(np.mean(predictions == labels)), predictions


def module_generators(model) -> dict:
    """Every numpy Generator held by a module (dropout masks), by 'module path.attribute'."""
    found = {}
    for name, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if isinstance(value, np.random.Generator):
                found[f"{name}.{attr}" if name else attr] = value
    return found


def _current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class Trainer:
    """Trains one model into one run directory (see the module docstring).

    Arguments::

        model          any Module (explicit or forward-only)
        optimizer      an optim.Optimizer over model.parameters()
        loss_fn        a loss module: loss_fn(logits, labels) -> loss
        out            the run directory; a used one is never replaced: the run goes to out-2, out-3, ...
                       unless resume (continue it), overwrite (delete its run files) or refuse_used
                       (raise rundir.RunDirError) say otherwise; `trainer.out` is the directory used
        scheduler      an lr scheduler, stepped per batch (scheduler_per_batch) or per epoch
        threads        explicit models: each batch split across this many threads (DataParallel)
        clip_grad_norm clip the gradients' joint 2-norm before each step
        checkpoint_every  steps between checkpoints (None: about every checkpoint_seconds)
        early_stopping stop after this many epochs without a better validation accuracy
        test_every_epoch  evaluate test_loader every epoch (otherwise once, after the last epoch)
        run_info       JSON-able description stored in every checkpoint and config.json, for the tools:
                       {"model_config": ..., "config": ..., "classes": [...], "normalization": {...}, ...}
    """

    stop_signals = (signal.SIGINT, signal.SIGTERM)      # finish the step, checkpoint, stop

    def __init__(self, model, optimizer, loss_fn, out: str = "runs/run", *, scheduler=None,
                 scheduler_per_batch: bool = True, threads: int = 1, clip_grad_norm: float | None = None,
                 checkpoint_every: int | None = None, checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
                 early_stopping: int | None = None, test_every_epoch: bool = False, resume: bool = False,
                 overwrite: bool = False, refuse_used: bool = False, run_info: dict | None = None,
                 progress: bool | None = None, plots: bool = True, log=print):
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 steps, got {checkpoint_every}")
        if early_stopping is not None and early_stopping < 1:
            raise ValueError(f"early_stopping must be >= 1 epochs, got {early_stopping}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.scheduler_per_batch = scheduler, scheduler_per_batch
        self.explicit = is_explicit(model)
        self.runner = DataParallel(model, threads) if self.explicit else model
        self.threads_used = threads if self.explicit else 1
        self.clip_grad_norm, self.checkpoint_every = clip_grad_norm, checkpoint_every
        self.checkpoint_seconds, self.early_stopping = checkpoint_seconds, early_stopping
        self.test_every_epoch, self.plots, self.log = test_every_epoch, plots, log
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.run_info = dict(run_info or {})
        self.out = self._claim(out, resume=resume, overwrite=overwrite, refuse=refuse_used)
        if os.path.abspath(self.out) != os.path.abspath(out):
            log(f"{out} already holds a run; this run goes to {self.out}")
        self.checkpoint_path = os.path.join(self.out, rundir.CHECKPOINT)
        self.resume = resume
        self.epoch = 0                  # epochs completed
        self.step = 0                   # optimiser steps taken
        self.partial = None             # the epoch in progress: sums so far and batches done
        self.history, self.steps = [], []
        self.best = None                # {"epoch", "val_accuracy", "val_loss"}
        self.bad_epochs = 0
        self.stopped_early = False
        self.results = None
        self.test_predictions = None
        self._restored = False

    def _claim(self, out: str, **how) -> str:
        """The run directory this run writes (rundir.claim); a distributed run claims it on rank 0 alone."""
        return rundir.claim(out, **how)

    def _stop_signal(self, stop) -> str | None:
        """The stop request to act on now ("SIGINT", "SIGTERM" or None); a distributed run takes rank 0's."""
        return stop.signal

    # ---- checkpoints ------------------------------------------------------------------------
    def _state(self) -> dict:
        steps = {c: np.asarray([r[c] for r in self.steps], dtype=np.float64) for c in rundir.STEP_COLUMNS}
        return {**self.run_info, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "loader": self._loader_state(),
                "generators": {k: g.bit_generator.state for k, g in module_generators(self.model).items()},
                "epoch": self.epoch, "step": self.step, "partial": self.partial, "history": self.history,
                "steps": steps, "best": self.best, "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early}

    def _loader_state(self):
        loader = getattr(self, "train_loader", None)
        return loader.state_dict() if hasattr(loader, "state_dict") else None

    def save(self, best: bool = False) -> None:
        """Write checkpoint.npz (and best.npz), metrics.csv, steps.csv and config.json."""
        state = self._state()
        checkpoint.save(self.checkpoint_path, state)
        if best:
            checkpoint.save(os.path.join(self.out, rundir.BEST), state)
        self._last_save = time.perf_counter()
        rundir.write_csv(os.path.join(self.out, rundir.METRICS), METRIC_COLUMNS, self.history,
                         {"seconds": "{:.3f}", "lr": "{:.6g}"})
        rundir.write_csv(os.path.join(self.out, rundir.STEPS), rundir.STEP_COLUMNS, self.steps,
                         {"lr": "{:.6g}", "images_per_s": "{:.1f}"})
        checkpoint.atomic_write_text(os.path.join(self.out, rundir.CONFIG), json.dumps(self.run_info, indent=2))

    def _restore(self) -> None:
        state = checkpoint.load(self.checkpoint_path)
        saved = {k: v for k, v in (state.get("config") or {}).items() if k not in RESUMABLE_CHANGES}
        now = {k: v for k, v in (self.run_info.get("config") or {}).items() if k not in RESUMABLE_CHANGES}
        if saved != now:
            changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            raise checkpoint.CheckpointError(
                f"--resume: the run in {self.out} was started with different options {changed}: "
                f"saved {[saved.get(k) for k in changed]}, now {[now.get(k) for k in changed]}")
        if "model_config" in self.run_info:
            checkpoint.load_model_state(self.model, state, self.run_info["model_config"], self.checkpoint_path)
        else:
            self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if state.get("loader") is not None and hasattr(self.train_loader, "load_state_dict"):
                self.train_loader.load_state_dict(state["loader"])
            for key, gen in module_generators(self.model).items():
                gen.bit_generator.state = state["generators"][key]
        except (KeyError, TypeError, ValueError) as exc:
            raise checkpoint.CheckpointError(f"{self.checkpoint_path} does not fit this run: {exc}") from exc
        self.epoch, self.step = int(state["epoch"]), int(state.get("step", 0))
        self.partial = state.get("partial")
        if self.partial is not None and state.get("loader") is None:
            self.partial = None                 # a loader without state restarts its epoch
        self.history = list(state["history"])
        cols = state.get("steps") or {}
        self.steps = [{c: (int(v) if c in ("step", "epoch") else float(v)) for c, v in zip(cols, vals)}
                      for vals in zip(*(cols[c] for c in cols))] if cols else []
        self.best, self.bad_epochs = state.get("best"), int(state.get("bad_epochs", 0))
        self.stopped_early = bool(state.get("stopped_early", False))
        where = f"step {self.step} (epoch {self.epoch + 1}, batch {self.partial['batch']})" if self.partial \
            else f"epoch {self.epoch}"
        self.log(f"resumed {self.out} after {where}")

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs: int = 1, test_loader=None) -> list:
        """Train until `epochs` epochs are complete (or early stopping); returns the per-epoch history."""
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if self.early_stopping and val_loader is None:
            raise ValueError("early_stopping needs a validation loader")
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.epochs = int(epochs)
        if self.resume and not self._restored:
            self._restore()
            self._restored = True
        self._last_save = time.perf_counter()
        with catch_signals(self.stop_signals) as stop:
            while self.epoch < self.epochs and not self.stopped_early:
                self._train_epoch(stop)
                self._end_epoch()
                if self._stop_signal(stop):
                    raise self._interrupted(stop.signal)
            if test_loader is not None and self.history and self.history[-1].get("test_loss") is None:
                self._test_into(self.history[-1])
                self.save()
            self._final_results()
        if self.plots:
            self._plots()
        return self.history

    def _train_epoch(self, stop) -> None:
        model, loader = self.model, self.train_loader
        model.train()
        acc = self.partial or {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "batch": 0}
        self.partial = acc
        n_batches = len(loader)
        start = time.perf_counter() - acc["seconds"]
        bar = _progress(n_batches, acc["batch"], f"epoch {self.epoch + 1}/{self.epochs}", self.progress)
        for x, y in loader:
            t0 = time.perf_counter()
            model.zero_grad()
            loss, logits = train_step(model, self.runner, self.loss_fn, x, y)
            if self.clip_grad_norm:
                optim.clip_grad_norm_(model.parameters(), self.clip_grad_norm)
            lr = _current_lr(self.optimizer)
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_per_batch:
                self.scheduler.step()
            self.step += 1
            right = int(np.sum(np.argmax(logits, axis=1) == y))
            acc["loss_sum"] += loss * len(y)
            acc["correct"] += right
            acc["seen"] += len(y)
            acc["batch"] += 1
            acc["seconds"] = time.perf_counter() - start
            self.steps.append({"step": self.step, "epoch": self.epoch + 1, "loss": loss, "accuracy": right / len(y),
                               "lr": lr, "images_per_s": len(y) / max(time.perf_counter() - t0, 1e-9)})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{acc['loss_sum'] / acc['seen']:.4f}", acc=f"{acc['correct'] / acc['seen']:.4f}",
                                img_s=f"{acc['seen'] / max(acc['seconds'], 1e-9):.0f}", refresh=False)
            if acc["batch"] < n_batches:        # the epoch's last step is saved by _end_epoch
                if self._stop_signal(stop):
                    if bar is not None:
                        bar.close()
                    self.save()
                    raise self._interrupted(stop.signal)
                if self._checkpoint_due():
                    self.save()
        if bar is not None:
            bar.close()
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()

    def _checkpoint_due(self) -> bool:
        if self.checkpoint_every is not None:
            return self.step % self.checkpoint_every == 0
        return time.perf_counter() - self._last_save >= self.checkpoint_seconds

    def _interrupted(self, signame: str) -> TrainingInterrupted:
        where = (f"epoch {self.epoch + 1}, batch {self.partial['batch']} of {len(self.train_loader)}"
                 if self.partial else f"the end of epoch {self.epoch}")
        return TrainingInterrupted(f"interrupted by {signame} at step {self.step} ({where}); "
                                   f"checkpoint written to {self.checkpoint_path}", self.checkpoint_path, self.out)

    def _end_epoch(self) -> None:
        acc = self.partial
        row = {"epoch": self.epoch + 1, "train_loss": acc["loss_sum"] / acc["seen"],
               "train_accuracy": acc["correct"] / acc["seen"], "val_loss": None, "val_accuracy": None,
               "test_loss": None, "test_accuracy": None, "lr": _current_lr(self.optimizer)}
        start = time.perf_counter()
        improved = False
        if self.val_loader is not None:
            row["val_loss"], row["val_accuracy"], _ = evaluate(self.runner, self.val_loader)
            best = self.best
            improved = best is None or row["val_accuracy"] > best["val_accuracy"]   # ties keep the earlier
            if improved:
                self.best = {"epoch": row["epoch"], "val_accuracy": row["val_accuracy"], "val_loss": row["val_loss"]}
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
        self.epoch += 1
        if self.test_loader is not None and (self.test_every_epoch or self.epoch == self.epochs):
            self._test_into(row)
        row["seconds"] = acc["seconds"] + time.perf_counter() - start
        self.partial = None
        self.history.append(row)
        if self.early_stopping and self.bad_epochs >= self.early_stopping and self.epoch < self.epochs:
            self.stopped_early = True
        self.save(best=improved)
        self.log(self._epoch_line(row))
        if self.stopped_early:
            self.log(f"early stopping: no better validation accuracy for {self.bad_epochs} epoch(s); best epoch "
                     f"{self.best['epoch']} (val accuracy {self.best['val_accuracy']:.4f})")

    def _test_into(self, row: dict) -> None:
        row["test_loss"], row["test_accuracy"], self.test_predictions = evaluate(self.runner, self.test_loader)

    def _epoch_line(self, row: dict) -> str:
        parts = [f"epoch {row['epoch']}/{self.epochs}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"]
        for split in ("val", "test"):
            if row.get(f"{split}_loss") is not None:
                parts.append(f"{split} loss {row[f'{split}_loss']:.4f} acc {row[f'{split}_accuracy']:.4f}")
        seen = len(self.train_loader.labels) if hasattr(self.train_loader, "labels") else 0
        rate = f", {seen / row['seconds']:.0f} img/s" if seen and row["seconds"] > 0 else ""
        return " | ".join(parts) + f" | {row['seconds']:.1f} s{rate}"

    def _final_results(self) -> None:
        """results.json: the last model's test metrics and, with a validation split, the best one's."""
        if self.test_loader is None or not self.history:
            return
        last = self.history[-1]
        results = {"last": {"epoch": last["epoch"], "test_loss": last["test_loss"],
                            "test_accuracy": last["test_accuracy"]}}
        if self.best is not None:
            results["best"] = dict(self.best)
            if self.best["epoch"] == last["epoch"]:
                results["best"].update(test_loss=last["test_loss"], test_accuracy=last["test_accuracy"])
            else:
                current = self.model.state_dict()
                self.model.load_state_dict(checkpoint.load(os.path.join(self.out, rundir.BEST))["model"])
                loss, accuracy, _ = evaluate(self.runner, self.test_loader)
                self.model.load_state_dict(current)
                results["best"].update(test_loss=loss, test_accuracy=accuracy)
        self.results = results
        checkpoint.atomic_write_text(os.path.join(self.out, rundir.RESULTS), json.dumps(json_safe(results), indent=2))

    def _plots(self) -> None:
        from . import plots
        loader = self.test_loader if self.test_loader is not None else self.val_loader
        try:
            predictions = None
            if loader is not None:
                predictions = self.test_predictions if loader is self.test_loader else None
                if predictions is None:
                    _, _, predictions = evaluate(self.runner, loader)
            classes = self.run_info.get("classes")
            image = loader.convert(loader.images[:1])[0] if hasattr(loader, "convert") else None
            labels = getattr(loader, "labels", None)
            written = plots.all_plots(self.out, self.history, self.steps, self.model,
                                      labels if predictions is not None else None, predictions, classes, image,
                                      pixels=(loader.images[0] if hasattr(loader, "images") else None))
            self.log("plots: " + ", ".join(os.path.basename(p) for p in written))
        except ImportError as exc:
            self.log(f"plots skipped: {exc}")


def json_safe(value):
    """NaN and infinities -> None (JSON has no literal for them), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _progress(total: int, done: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


def __getattr__(name):
    """The command's configuration lives in train_config.py; these names are still importable from here."""
    if name in ("TrainConfig", "AUGMENTATIONS", "load_for_inference", "build_optimizer", "build_scheduler",
                "augmentation", "make_trainer"):
        from . import train_config
        return getattr(train_config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
