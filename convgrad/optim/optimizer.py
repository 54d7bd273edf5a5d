"""Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict.

State dict layout (torch's, with NumPy arrays in place of tensors)::

    {"state": {0: {"momentum_buffer": ndarray}, 2: {"step": 3, "exp_avg": ndarray, ...}},
     "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1]},
                      {"lr": 0.01, ..., "params": [2], "param_names": ["fc.bias"]}]}

A parameter's index is its position in the concatenation of all groups' "params" lists.
"state" holds only parameters that have state (a parameter never stepped has none).
Every leaf is a Python scalar, str, bool, list/tuple of those, or an ndarray, so a
checkpoint can put the arrays in an .npz and the rest in JSON. load_state_dict() accepts
what such a round trip gives back: string keys ("0") in "state", lists for tuples
(e.g. "betas"), and 0-d arrays or NumPy scalars for Python scalars.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._checks import check_bool, check_int, check_real  # noqa: F401 (re-exported to the schedulers)
from ..nn.module import Parameter

_LIST_KEYS = ("params", "param_names")


def to_plain(value):
    """NumPy scalars and 0-d arrays -> Python scalars; lists/tuples/dicts recursively; arrays copied."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


class Optimizer:
    """Base class of the optimisers.

    params: an iterable of Parameters, of (name, Parameter) pairs (e.g.
    model.named_parameters()), or of dicts {"params": [...], <option>: value} each making
    a parameter group whose options override the constructor's defaults. Subclasses
    implement step() and _check_group(group).
    """

    def __init__(self, params, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        name = type(self).__name__
        if isinstance(params, (Parameter, np.ndarray, dict)):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of param-group "
                            f"dicts, got a single {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered collection (a set's order "
                            f"changes between runs); use a list")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Parameters or of param-group dicts, "
                            f"got {type(params).__name__}") from None
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k not in _LIST_KEYS):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    # ---- groups ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group; options it does not set take the constructor's defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a param group needs a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered collection (a set's order "
                            f"changes between runs); use a list")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(f"{name}: give all parameters of a group with names or none")
            params = [p[1] for p in params]
            group["param_names"] = names
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: can only optimise Parameters, got {type(p).__name__}")
            if not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(f"{name}: can only optimise floating-point Parameters, got {p.data.dtype}")
        if not params:
            raise ValueError(f"{name}: got a param group with no parameters")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: a param group lists the same parameter twice")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            raise ValueError(f"{name}: all param groups must be given with names or all without")
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalise in place) one group's options; raise ValueError/TypeError."""

    # ---- the update -----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's grad to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter whose grad is not None; return closure() if given."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _run_closure(self, closure):
        """closure() (a callable re-evaluating the loss, as torch's step takes), or None."""
        if closure is None:
            return None
        if not callable(closure):
            raise TypeError(f"{type(self).__name__}.step: closure must be a callable returning the loss, or None, "
                            f"got {closure!r} ({type(closure).__name__})")
        return closure()

    def _grad(self, p: Parameter, maximize: bool) -> np.ndarray:
        """p.grad in p's dtype (negated if maximize); never aliased when it will be modified."""
        g = p.grad
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: a parameter of dtype {p.data.dtype} has a grad of "
                            f"{type(g).__name__ if not isinstance(g, np.ndarray) else 'dtype ' + str(g.dtype)}; "
                            f"expected a floating array")
        if g.shape != p.data.shape:
            raise ValueError(f"{type(self).__name__}: a parameter of shape {p.data.shape} has a "
                             f"grad of shape {g.shape}")
        g = np.asarray(g, dtype=p.data.dtype)
        return -g if maximize else g

    # ---- state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as plain data (see the module docstring); arrays are copies."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: to_plain(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {k: to_plain(v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by state_dict() into an optimiser over the same
        parameters, in the same group layout. Arrays are copied and cast to the parameter's dtype."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} param groups, "
                             f"the optimiser {len(self.param_groups)}")
        def index(key) -> int:
            try:
                return int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{name}.load_state_dict: parameter index {key!r} in the state is not an "
                                 f"integer") from None

        id_map: dict[int, Parameter] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            saved_params = list(saved["params"])
            if len(saved_params) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: param group {i} has {len(saved_params)} "
                                 f"parameters in the state, {len(group['params'])} in the optimiser")
            id_map.update(zip((index(k) for k in saved_params), group["params"]))
        state: dict[Parameter, dict[str, Any]] = {}
        for key, entry in state_dict["state"].items():
            if index(key) not in id_map:
                raise ValueError(f"{name}.load_state_dict: state for parameter index {key}, "
                                 f"which no param group lists")
            p = id_map[index(key)]
            restored = {}
            for k, v in entry.items():
                v = to_plain(v)
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(f"{name}.load_state_dict: state '{k}' of parameter {key} has "
                                         f"shape {v.shape}, the parameter {p.data.shape}")
                    v = v.astype(p.data.dtype, copy=False)
                restored[k] = v
            state[p] = restored
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {}
            for k, v in saved.items():
                if k in _LIST_KEYS:
                    continue
                v = to_plain(v)
                new[k] = tuple(v) if isinstance(v, list) else v
            for k, v in self.defaults.items():
                new.setdefault(k, v)
            new["params"] = group["params"]
            if "param_names" in saved:
                new["param_names"] = list(saved["param_names"])
            elif "param_names" in group:
                new["param_names"] = group["param_names"]
            self._check_group(new)
            new_groups.append(new)
        self.param_groups = new_groups
        self.state = state
