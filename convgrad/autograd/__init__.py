"""Recorded mode: Tensors, the tape and grad control (see tensor.py and graph.py)."""
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .graph import Node, graph_nodes
from .tensor import Tensor, apply, cat, chunk, from_numpy, split, stack, tensor, where
from . import functional_recording  # noqa: F401  (functional ops called with Tensors record themselves)

__all__ = ["Tensor", "tensor", "from_numpy", "Node", "graph_nodes", "no_grad", "enable_grad", "is_grad_enabled", "apply",
           "cat", "stack", "split", "chunk", "where"]
