"""Learning-rate schedulers: StepLR, CosineAnnealingLR, OneCycleLR (torch's formulas).

Construct the scheduler after the optimiser; call optimizer.step() then scheduler.step()
once per epoch (StepLR, CosineAnnealingLR) or per batch (OneCycleLR). A scheduler's
state_dict() holds only Python scalars, strings, lists and dicts (JSON-serialisable).
"""
from __future__ import annotations

import copy
import math

from .optimizer import Optimizer, check_bool, check_int, check_real, to_plain


class LRScheduler:
    """Base class: sets group["lr"] for every param group from get_lr() on each step().

    base_lrs are the groups' "initial_lr" (set from "lr" when last_epoch == -1);
    last_epoch counts step() calls, starting at 0 after construction.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        last_epoch = check_int(type(self).__name__, "last_epoch", last_epoch, minimum=-1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', "
                                   f"needed to resume with last_epoch={last_epoch}")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for the current last_epoch (called by step())."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest step(), one per param group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch (or batch) and write the new learning rates into the optimiser."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute but the optimiser, as plain (JSON-serialisable) data."""
        return {k: copy.deepcopy(to_plain(v)) for k, v in self.__dict__.items()
                if k not in ("optimizer", "_is_initial")}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the attributes saved by state_dict()."""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{where}: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict()
        restored = {}
        for key, value in state_dict.items():
            if key not in own:       # e.g. "step" would replace the method; "optimizer" the optimiser
                raise ValueError(f"{where}: unexpected key {key!r}; expected some of {sorted(own)}")
            restored[key] = _like(own[key], to_plain(value), f"{where}: {key}")
        self.__dict__.update(copy.deepcopy(restored))


def _like(current, value, where: str):
    """value, checked to have the type (and for lists the length) of the current value: a
    saved scheduler state is data from a file, and every attribute it sets is used in step()."""
    if current is None:
        return value
    if isinstance(current, bool):
        return check_bool(where, "value", value)
    if isinstance(current, int):
        return check_int(where, "value", value)
    if isinstance(current, float):
        return check_real(where, "value", value)
    if isinstance(current, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(current):
            raise ValueError(f"{where}: expected a list of {len(current)} values, got {value!r:.80}")
        return type(current)(_like(c, v, f"{where}[{i}]") for i, (c, v) in enumerate(zip(current, value)))
    if isinstance(current, str):
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r:.80}")
        return value
    return value


class StepLR(LRScheduler):
    """Multiply each group's lr by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = check_int("StepLR", "step_size", step_size, minimum=1)
        self.gamma = check_real("StepLR", "gamma", gamma, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base lr to eta_min over T_max epochs (without restarts;
    past T_max the lr rises again along the cosine).

    Like torch, step() uses the recursive form::

        lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max)),

    which follows any outside change to group["lr"], so values match torch's bit for bit.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, minimum=1)
        self.eta_min = check_real("CosineAnnealingLR", "eta_min", eta_min, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and self.last_epoch > 0:
            return [self.eta_min + (base_lr - self.eta_min)
                    * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            # At the trough the ratio below is 0/0; torch adds the first half-step instead.
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in groups]


def _per_group(where: str, name: str, value, optimizer: Optimizer, **bounds) -> list[float]:
    """A scalar for every group, or a list with one value per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{where}: {name} has {len(value)} values, the optimiser {n} param groups")
        values = list(value)
    else:
        values = [value] * n
    return [check_real(where, name, v, **bounds) for v in values]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (torch.optim.lr_scheduler.OneCycleLR), stepped once per batch.

    lr rises from max_lr/div_factor to max_lr over the first pct_start of total_steps, then
    anneals to max_lr/(div_factor*final_div_factor) (three_phase: back to the initial lr
    first, then down to the minimum). With cycle_momentum, the optimiser's "momentum" (SGD)
    or betas[0] (Adam) moves inversely between max_momentum and base_momentum.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        where = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{where}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = check_int(where, "total_steps", total_steps, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_int(where, "epochs", epochs, minimum=1)
                                * check_int(where, "steps_per_epoch", steps_per_epoch, minimum=1))
        else:
            raise ValueError(f"{where}: give either total_steps or both epochs and steps_per_epoch")
        pct_start = check_real(where, "pct_start", pct_start, minimum=0.0)
        if pct_start > 1:
            raise ValueError(f"{where}: pct_start must be <= 1, got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{where}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        div_factor = check_real(where, "div_factor", div_factor, positive=True)
        final_div_factor = check_real(where, "final_div_factor", final_div_factor, positive=True)
        three_phase = check_bool(where, "three_phase", three_phase)

        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr",
                 "end_lr": "min_lr", "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr",
                 "end_lr": "min_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        # The first phase (at step 0) and the last (at step total_steps) are always reached;
        # with zero length their pct is 0/0, which torch hits as a ZeroDivisionError.
        start, last = 0.0, len(self._schedule_phases) - 1
        for i, phase in enumerate(self._schedule_phases):
            if i in (0, last) and phase["end_step"] == start:
                raise ValueError(f"{where}: pct_start={pct_start!r} with total_steps={self.total_steps} "
                                 f"makes phase {i} of the schedule zero steps long")
            start = phase["end_step"]

        max_lrs = _per_group(where, "max_lr", max_lr, optimizer, minimum=0.0)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = check_bool(where, "cycle_momentum", cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{where}: cycle_momentum=True needs an optimiser with momentum "
                                 f"or betas, {type(optimizer).__name__} has neither")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group(where, "max_momentum", max_momentum, optimizer, minimum=0.0)
            base_momentums = _per_group(where, "base_momentum", base_momentum, optimizer, minimum=0.0)
            if last_epoch == -1:
                for m_mom, b_mom, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (m_mom, *group["betas"][1:])
                    else:
                        group["momentum"] = m_mom
                    group["max_momentum"] = m_mom
                    group["base_momentum"] = b_mom
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _annealing_cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _annealing_linear(start, end, pct):
        return (end - start) * pct + start

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return self._annealing_cos(start, end, pct)
        return self._annealing_linear(start, end, pct)

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step_num} times, but total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]],
                                                group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs
