"""`convgrad explain graph`: a model's recorded graph, listed in the order backward runs it.

The model runs once in recorded mode on a Tensor input, then a cross-entropy loss; the tape
(convgrad.autograd.graph_nodes) is listed from the loss backwards: which node's backward runs
at each step, which tensors its gradients go to, which parameters it fills, and where a value
read by several nodes receives the sum of their gradients (the lectures' "add them!").
A Sequential has its own backward and would be one node, so a top-level Sequential is run
child by child (one node per layer); a forward-only Module records its own ops.

Shapes: the input (N, C, H, W) from a run's config, --input-shape, or (1, 1, 28, 28).
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np

from .steps import ExplainError


def load_model(target: str, input_shape=None):
    """(model, input shape, description) from a run directory / checkpoint, a model name of
    convgrad.models, or 'pkg.module:factory' (called with no arguments)."""
    from .. import models
    if os.path.exists(target):
        from ..train import load_for_inference
        model, state = load_for_inference(target)
        mc = state["model_config"]
        return model, input_shape or (1, mc["in_channels"], mc["image_size"], mc["image_size"]), f"the run {target}"
    if target in models.MODELS:
        return models.build(target, generator=0), input_shape or (1, 1, 28, 28), f"convgrad.models.{target}"
    if ":" in target:
        mod, _, name = target.partition(":")
        if os.getcwd() not in sys.path and "" not in sys.path:      # importable from here, as with python -m
            sys.path.insert(0, os.getcwd())
        try:
            factory = getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError) as e:
            raise ExplainError(f"cannot load {target!r}: {e}") from None
        if input_shape is None:
            raise ExplainError(f"{target}: give --input-shape, e.g. --input-shape 1,3,8,8")
        return factory(), input_shape, target
    raise ExplainError(f"{target!r} is not a run directory, a checkpoint, one of {', '.join(models.MODELS)} or "
                       "a 'pkg.module:factory'")


def record(model, input_shape, seed=0):
    """Run model (a top-level Sequential child by child) and a cross-entropy loss on Tensors.
    Returns (loss Tensor, the input Tensor)."""
    from .. import nn, tensor
    dtype = next(iter(model.parameters())).data.dtype if list(model.parameters()) else np.float64
    x = tensor(np.random.default_rng(seed).standard_normal(input_shape).astype(dtype), requires_grad=True)
    y = x
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    for m in layers:
        y = m(y)
    if y.ndim != 2:
        raise ExplainError(f"the model's output has shape {y.shape}; the loss needs (N, classes)")
    loss = nn.CrossEntropyLoss()(y, np.zeros(y.shape[0], dtype=np.int64))
    return loss, x


def _name(node, names):
    name = names.get(id(node.module)) if node.module is not None else None
    return f"{node.op} ({name})" if name and name != node.op else node.op


def describe(loss, x, model) -> list:
    """The lines of the listing (see the module docstring)."""
    from ..autograd import graph_nodes
    nodes = [n for n in graph_nodes(loss) if n.differentiable]       # masks (x > 0) have no backward step
    names = {id(m): n or "model" for n, m in model.named_modules()} if hasattr(model, "named_modules") else {}
    if not names:
        names = {id(m): str(i) for i, m in enumerate(model.modules())}
    label = {n.seq: f"#{k}" for k, n in enumerate(nodes)}
    readers = {}                                      # producer (node seq or 'x') -> the nodes reading it
    for n in nodes:
        for t in n.inputs:
            if t is None or not t.requires_grad:
                continue
            key = "x" if t is x else (t.grad_fn.seq if t.grad_fn is not None else None)
            if key is not None:
                readers.setdefault(key, []).append(n)
    lines = [f"{len(nodes)} recorded nodes; backward starts at the loss and runs them in reverse creation order:",
             "",
             f"{'step':>4}  {'node':<34} {'output':<16} gradient goes to"]
    for step, n in enumerate(reversed(nodes), start=1):
        targets = []
        for t in n.inputs:
            if t is None or not t.requires_grad:
                continue
            if t is x:
                targets.append("the input x")
            elif t.grad_fn is not None:
                targets.append(f"{label[t.grad_fn.seq]} {_name(t.grad_fn, names)}")
            elif t.requires_grad:
                targets.append("a leaf tensor")
        params = [] if n.module is None else [p for p, _ in n.module.named_parameters()]
        if params:
            targets.append("fills .grad of " + ", ".join(params))
        lines.append(f"{step:>4}  {label[n.seq] + ' ' + _name(n, names):<34} {str(tuple(n.out_shape)):<16} "
                     + ("; ".join(targets) or "(no input needs a gradient)"))
    fan = [(k, r) for k, r in readers.items() if len(r) > 1]
    lines.append("")
    if fan:
        for k, r in fan:
            what = "the input x" if k == "x" else f"the output of {label[k]}"
            lines.append(f"gradients add: {what} is read by {', '.join(label[n.seq] for n in r)}; its gradient is "
                         f"the sum of their {len(r)} contributions, complete before its own backward runs")
    else:
        lines.append("no value is read twice here: every gradient has one path (a chain); a residual block or a "
                     "reused activation would add gradients")
    return lines


def explain_graph(target: str, input_shape=None) -> str:
    model, shape, source = load_model(target, input_shape)
    loss, x = record(model, shape)
    head = f"The recorded graph of {source}, input {tuple(shape)}, then cross-entropy (class 0):"
    return "\n".join([head, *describe(loss, x, model)]) + "\n"
