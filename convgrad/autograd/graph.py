"""The tape: one Node per recorded call, and backward over them in reverse order.

A Node holds what its call's backward needs — the op's own cache — and the Tensors it read.
Backward visits the nodes reachable from the loss in decreasing creation order (`seq`), a
reverse topological order: every consumer of a value was created after it, so its gradient is
complete before the value's own node runs. Where a value fans out, its gradients add (the
lectures' "add them!"). Gradients reaching a leaf that requires grad are accumulated into its
`.grad` (a Parameter's included), as torch does.
"""
from __future__ import annotations

import heapq
import itertools

import numpy as np

_sequence = itertools.count()


class Node:
    """One recorded call.

    Attributes:
        op: the op's name ("add", "conv2d", ...) or, for a Module call, the class name.
        module: the Module for a module call, else None.
        attrs: the call's non-tensor arguments (e.g. {"dim": 1}), for exporters and teaching.
        inputs: the Tensors read, one per differentiable argument (None for a constant).
        constants: {index: ndarray} the value of each argument in `inputs` given as a number or
            an array rather than a Tensor (the None entries; an argument left out, such as
            bias=None, has no entry), for exporters.
        differentiable: False for a node without a backward (a comparison such as x > 0, or an
            op whose only recorded input is such a mask): its output does not require grad;
            it is recorded so that exporters see where the mask comes from.
        seq: creation order.
    """
    __slots__ = ("op", "module", "attrs", "inputs", "constants", "differentiable", "seq", "out_shape", "out_dtype",
                 "_backward", "_cache", "__weakref__")

    def __init__(self, op, backward, cache, inputs, out_shape, out_dtype, attrs=None, module=None, constants=None):
        self.op = op
        self.module = module
        self.attrs = attrs or {}
        self.inputs = tuple(inputs)
        self.constants = constants or {}
        self.differentiable = backward is not None
        self.seq = next(_sequence)
        self.out_shape, self.out_dtype = out_shape, out_dtype
        self._backward, self._cache = backward, cache

    def apply(self, grad_out: np.ndarray, retain: bool):
        """The op's backward: grad_out (the output's shape) -> one gradient per input (or None)."""
        if not self.differentiable:
            raise RuntimeError(f"{self.op} has no gradient (its output does not require grad)")
        if self._backward is None:
            raise RuntimeError(f"backward through {self.op} a second time: the graph was freed by the first "
                               f"backward (call backward(retain_graph=True) the first time to keep it)")
        needs = tuple(t is not None and t.requires_grad for t in self.inputs)
        grads = self._backward(np.asarray(grad_out), self._cache, needs)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) != len(self.inputs):
            raise RuntimeError(f"{self.op} backward returned {len(grads)} gradients for {len(self.inputs)} inputs")
        missing = [i for i, (need, g) in enumerate(zip(needs, grads)) if need and g is None]
        if missing:                   # never a silent None for a tensor that asked for a gradient
            raise RuntimeError(f"{self.op}: input {missing[0]} requires grad, but {self.op}'s backward gives no "
                               f"gradient for it; pass it detached (.detach()) or as an array")
        if not retain:
            self._backward = self._cache = None
        return grads

    def __repr__(self) -> str:
        return f"<Node {self.op} #{self.seq}>"


def _check_grad(node: Node, grad, where: str) -> np.ndarray:
    grad = np.asarray(grad)
    if grad.shape != node.out_shape:
        raise ValueError(f"{where}: the gradient for the output of {node.op} has shape {grad.shape}, "
                         f"expected {node.out_shape}")
    return grad


def run_backward(root, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Propagate grad (root's shape) from root through every reachable node."""
    node = root.grad_fn
    if root.is_leaf:                      # a leaf: its gradient is grad itself
        root._accumulate_grad(grad)
        return
    pending = {node: _check_grad(node, grad, "backward")}
    owned = set()                         # gradients this pass allocated (safe to add into in place)
    heap = [(-node.seq, node)]
    while heap:
        _, node = heapq.heappop(heap)
        grad_out = pending.pop(node)
        owned.discard(node)
        for tensor, g in zip(node.inputs, node.apply(grad_out, retain_graph)):
            if g is None or tensor is None or not tensor.requires_grad:
                continue
            parent = tensor.grad_fn
            if tensor.is_leaf:            # no grad_fn, or a mask's node (no backward)
                tensor._accumulate_grad(g)
                continue
            g = _check_grad(parent, g, f"{node.op} backward")
            if parent not in pending:
                pending[parent] = g
                heapq.heappush(heap, (-parent.seq, parent))
            elif parent in owned:
                pending[parent] += g
            else:
                pending[parent] = pending[parent] + g
                owned.add(parent)


def graph_nodes(output) -> list[Node]:
    """The nodes reachable from a Tensor, in forward (creation) order."""
    seen, stack = {}, [output.grad_fn] if output.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node.seq in seen:
            continue
        seen[node.seq] = node
        stack.extend(t.grad_fn for t in node.inputs if t is not None and t.grad_fn is not None)
    return [seen[k] for k in sorted(seen)]
