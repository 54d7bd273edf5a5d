"""convgrad.Tensor: an array that remembers the call that made it, so backward can be assembled.

    x = convgrad.tensor(images)                 # data: no gradient wanted
    loss = loss_fn(model(x), labels)            # every call recorded as one Node
    loss.backward()                             # each node's own backward, in reverse order

Ops follow torch's names and broadcasting. Both operands of a binary op must share a float
dtype (Python numbers take the tensor's dtype); a mismatch is an error, never a silent cast.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_bool, check_real
from . import ops
from .grad_mode import is_grad_enabled
from .graph import Node, run_backward


def _is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


class Tensor:
    """An ndarray `.data` with `.grad`, `.requires_grad` and `.grad_fn` (the Node that made it;
    None for a leaf). Shape: any."""

    __array_ufunc__ = None            # ndarray (op) Tensor -> the Tensor's reflected op

    def __init__(self, data, requires_grad: bool = False, *, _node: Node | None = None):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad: np.ndarray | None = None
        self.grad_fn = _node
        self._requires_grad = False
        if requires_grad or (_node is not None and _node.differentiable):
            self.requires_grad = True

    # ---- gradient bookkeeping ---------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to this tensor (a leaf's .grad is filled by backward)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value and not _is_float(self.data.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        if not value and not self.is_leaf:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; use .detach()")
        self._requires_grad = value

    @property
    def is_leaf(self) -> bool:
        """True for a tensor not made by a differentiable recorded op (grad_fn is None, or a
        comparison's node, whose output needs no gradient)."""
        return self.grad_fn is None or not self.grad_fn.differentiable

    def _accumulate_grad(self, grad) -> None:
        """grad += g (allocating on first use), as torch accumulates into .grad."""
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Propagate d(self)/d(leaves) times grad (default 1 for a one-element tensor) through
        the recorded graph; the graph is freed unless retain_graph."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no recorded op made it "
                               "from a tensor with requires_grad=True (or it was made under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output, got shape "
                                   f"{self.shape}; pass grad= of that shape")
            grad = np.ones(self.shape, self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, expected the output's shape {self.shape}")
            if not _is_float(grad.dtype):
                raise TypeError(f"backward: grad must be a float array, got dtype {grad.dtype}")
            grad = grad.astype(self.dtype, copy=False)
        run_backward(self, grad, check_bool("backward", "retain_graph", retain_graph))

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data)

    def numpy(self) -> np.ndarray:
        """The values as an ndarray (for a tensor that requires grad: detach() first)."""
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: expected a one-element tensor, got shape {self.shape} ({self.data.size} elements)")
        return self.data.item()

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise TypeError("a Tensor that requires grad was given to NumPy, which would drop its gradient; "
                            "use convgrad ops, or .detach().numpy() / .data for the values")
        return self.data if dtype is None else self.data.astype(dtype)

    # ---- array attributes -----------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="The shape of .data.")
    dtype = property(lambda self: self.data.dtype, doc="The dtype of .data.")
    ndim = property(lambda self: self.data.ndim, doc="The number of axes of .data.")
    size = property(lambda self: self.data.size, doc="The number of elements of .data.")

    def dim(self) -> int:
        """The number of axes (as ndim)."""
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        extra = f", grad_fn=<{self.grad_fn.op}>" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"tensor({np.array2string(self.data, separator=', ')}{extra})"

    # ---- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        return _binary("add", ops.add_forward, ops.add_backward, self, other)

    def __radd__(self, other):
        return _binary("add", ops.add_forward, ops.add_backward, other, self)

    def __sub__(self, other):
        return _binary("sub", ops.sub_forward, ops.sub_backward, self, other)

    def __rsub__(self, other):
        return _binary("sub", ops.sub_forward, ops.sub_backward, other, self)

    def __mul__(self, other):
        return _binary("mul", ops.mul_forward, ops.mul_backward, self, other)

    def __rmul__(self, other):
        return _binary("mul", ops.mul_forward, ops.mul_backward, other, self)

    def __truediv__(self, other):
        return _binary("div", ops.div_forward, ops.div_backward, self, other)

    def __rtruediv__(self, other):
        return _binary("div", ops.div_forward, ops.div_backward, other, self)

    def __matmul__(self, other):
        return _binary("matmul", ops.matmul_forward, ops.matmul_backward, self, other, broadcast=False)

    def __rmatmul__(self, other):
        return _binary("matmul", ops.matmul_forward, ops.matmul_backward, other, self, broadcast=False)

    def __neg__(self):
        return apply("neg", ops.neg_forward, ops.neg_backward, (self,))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: the exponent must be a Python number, got {type(exponent).__name__}")
        return apply("pow", ops.pow_forward, ops.pow_backward, (self,), exponent=exponent)

    def __rpow__(self, base):
        if isinstance(base, bool) or not isinstance(base, numbers.Real):
            raise TypeError(f"pow: the base of number ** Tensor must be a Python number, got {type(base).__name__}")
        if not _is_float(self.dtype):
            raise TypeError(f"pow: expected a floating-point tensor as the exponent, got dtype {self.dtype}")
        return apply("rpow", ops.rpow_forward, ops.rpow_backward, (self,), base=float(base))

    # comparisons give bool tensors without a gradient (for masks and where), element-wise as
    # torch's; recorded as non-differentiable nodes (op "lt", "le", "gt", "ge", "eq", "ne") so
    # that an exporter sees where a mask comes from
    def _compare(self, other, op):
        if isinstance(other, numbers.Real) and _is_float(self.dtype):
            other = np.asarray(other, self.dtype)          # a Python number takes the tensor's dtype
        elif not isinstance(other, Tensor):
            other = np.asarray(_from_foreign(other))
        try:
            np.broadcast_shapes(self.shape, _shape(other))
        except ValueError:
            raise ValueError(f"{op}: shapes {self.shape} and {_shape(other)} do not broadcast") from None
        return apply(op, ops.COMPARISONS[op], None, (self, other))

    __lt__ = lambda self, o: self._compare(o, "lt")      # noqa: E731
    __le__ = lambda self, o: self._compare(o, "le")      # noqa: E731
    __gt__ = lambda self, o: self._compare(o, "gt")      # noqa: E731
    __ge__ = lambda self, o: self._compare(o, "ge")      # noqa: E731
    __eq__ = lambda self, o: self._compare(o, "eq")      # noqa: E731
    __ne__ = lambda self, o: self._compare(o, "ne")      # noqa: E731
    __hash__ = object.__hash__                           # by identity (== is element-wise)

    # ---- element-wise functions -------------------------------------------------------------
    def exp(self):
        """Element-wise exp(x); recorded."""
        return apply("exp", ops.exp_forward, ops.exp_backward, (self,))

    def log(self):
        """Element-wise natural log; recorded."""
        return apply("log", ops.log_forward, ops.log_backward, (self,))

    def sqrt(self):
        """Element-wise square root; recorded."""
        return apply("sqrt", ops.sqrt_forward, ops.sqrt_backward, (self,))

    def abs(self):
        """Element-wise absolute value (gradient 0 at 0); recorded."""
        return apply("abs", ops.abs_forward, ops.abs_backward, (self,))

    def clamp(self, min=None, max=None):
        """Element-wise min(max(x, min), max), either bound optional; recorded."""
        if min is None and max is None:
            raise ValueError("clamp: give min, max or both")
        min, max = (None if v is None else check_real("clamp", name, v, finite=False)
                    for name, v in (("min", min), ("max", max)))
        return apply("clamp", ops.clamp_forward, ops.clamp_backward, (self,), min=min, max=max)

    def relu(self):
        """Element-wise max(x, 0); recorded."""
        return apply("relu", ops.relu_forward, ops.relu_backward, (self,))

    def sigmoid(self):
        """Element-wise 1 / (1 + exp(-x)); recorded."""
        return apply("sigmoid", ops.sigmoid_forward, ops.sigmoid_backward, (self,))

    def tanh(self):
        """Element-wise tanh(x); recorded."""
        return apply("tanh", ops.tanh_forward, ops.tanh_backward, (self,))

    def softmax(self, dim):
        """Softmax along dim; recorded."""
        return apply("softmax", ops.softmax_forward, ops.softmax_backward, (self,), dim=dim)

    def log_softmax(self, dim):
        """Log-softmax along dim; recorded."""
        return apply("log_softmax", ops.log_softmax_forward, ops.log_softmax_backward, (self,), dim=dim)

    # ---- shape ----------------------------------------------------------------------------------
    def reshape(self, *shape):
        """The same elements in a new shape (one entry may be -1); recorded. view is the same."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            np.empty(self.shape, bool).reshape(shape)
        except (ValueError, TypeError) as e:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} into {shape}") from e
        return apply("reshape", ops.reshape_forward, ops.reshape_backward, (self,), shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Axes start_dim..end_dim merged into one; recorded."""
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _dim(start_dim, self.ndim, "flatten"), _dim(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    def permute(self, *dims):
        """The axes reordered as dims; recorded."""
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        dims = tuple(_dim(d, self.ndim, "permute") for d in dims)
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of the {self.ndim} dims of shape {self.shape}")
        return apply("permute", ops.permute_forward, ops.permute_backward, (self,), dims=dims)

    def transpose(self, dim0: int, dim1: int):
        """Axes dim0 and dim1 swapped; recorded."""
        dims = list(range(self.ndim))
        a, b = _dim(dim0, self.ndim, "transpose"), _dim(dim1, self.ndim, "transpose")
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(dims)

    @property
    def T(self):
        """The axes reversed; recorded."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        index = _plain_index(index)
        try:
            self.data[index]
        except (IndexError, TypeError) as e:
            raise IndexError(f"index {index!r} does not fit a tensor of shape {self.shape}: {e}") from e
        return apply("getitem", ops.getitem_forward, ops.getitem_backward, (self,), index=index)

    # ---- reductions -------------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False):
        """Sum over dim (an int, a tuple or None for all), keeping the axes with keepdim; recorded."""
        return apply("sum", ops.sum_forward, ops.sum_backward, (self,), dim=_dims(dim, self.ndim, "sum"),
                     keepdim=bool(keepdim))

    def mean(self, dim=None, keepdim: bool = False):
        """Mean over dim (an int, a tuple or None for all), keeping the axes with keepdim; recorded."""
        return apply("mean", ops.mean_forward, ops.mean_backward, (self,), dim=_dims(dim, self.ndim, "mean"),
                     keepdim=bool(keepdim))

    def amax(self, dim=None, keepdim: bool = False):
        """Maximum over dim, the gradient shared equally among ties (as torch.amax); recorded."""
        if self.size == 0:
            raise ValueError(f"amax: the tensor of shape {self.shape} is empty")
        return apply("amax", ops.amax_forward, ops.amax_backward, (self,), dim=_dims(dim, self.ndim, "amax"),
                     keepdim=bool(keepdim))

    def max(self, dim=None, keepdim: bool = False):
        """max() -> the largest value (gradient shared among ties); max(dim) -> (values, indices),
        the gradient going to the first maximum (as torch.max)."""
        if dim is None:
            if self.size == 0:
                raise ValueError(f"max: the tensor of shape {self.shape} is empty")
            return apply("amax", ops.amax_forward, ops.amax_backward, (self,), dim=None, keepdim=False, nan_ties=True)
        d = _dim(dim, self.ndim, "max")
        if self.shape[d] == 0:
            raise ValueError(f"max: dim {dim} of shape {self.shape} is empty")
        values = apply("max", ops.max_dim_forward, ops.max_dim_backward, (self,), dim=d, keepdim=bool(keepdim))
        indices = np.argmax(self.data, axis=d)
        return values, Tensor(np.expand_dims(indices, d) if keepdim else indices)



def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A leaf Tensor holding a copy of `data` (an ndarray, a list, a number or a torch tensor,
    read without importing torch), as torch.tensor: writing into the caller's array afterwards
    changes nothing. requires_grad: gradients accumulate into `.grad`."""
    return _leaf("tensor", data, requires_grad, dtype, copy=True)


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A leaf Tensor sharing `array`'s memory, as torch.from_numpy: no copy, so writing into
    the array before a backward changes the gradients of the ops that read it (as in torch)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return _leaf("from_numpy", array, requires_grad, None, copy=False)


def _leaf(where: str, data, requires_grad, dtype, copy: bool) -> Tensor:
    requires_grad = check_bool(where, "requires_grad", requires_grad)
    if isinstance(data, Tensor):
        data = data.data
    data = _from_foreign(data)
    try:
        arr = np.array(data, dtype=dtype, copy=True) if copy else np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:        # a ragged list, a dtype NumPy does not know
        raise type(exc)(f"{where}: cannot make an array of dtype {dtype!r} from {type(data).__name__} data: "
                        f"{exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected numbers (bool, int or float data), got {type(data).__name__} "
                        f"of dtype {arr.dtype}")
    return Tensor(arr, requires_grad=requires_grad)


def _from_foreign(data):
    """A torch tensor as an ndarray (read through .detach().cpu().numpy(), torch not imported);
    anything else unchanged."""
    if type(data).__module__.startswith("torch") and hasattr(data, "detach"):
        return data.detach().cpu().numpy()
    return data


# ---- recording -------------------------------------------------------------------------------
def apply(op: str, forward, backward, inputs, **params) -> Tensor:
    """Run forward on the inputs' arrays and, while recording, record one Node: differentiable
    when an input requires grad and backward is given (None: an op without a gradient, such as
    a comparison); a node without a backward when an input only comes from such a node (a
    mask), so the graph still shows where it comes from. inputs: Tensors or arrays (constants,
    kept in Node.constants); params: the op's non-tensor arguments."""
    arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
    y, cache = forward(*arrays, **params)
    y = y if isinstance(y, np.ndarray) else np.asarray(y)
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    if not is_grad_enabled():
        return Tensor(y)
    if not any(t.requires_grad for t in tensors):
        if not any(t.grad_fn is not None for t in tensors):
            return Tensor(y)
        backward = cache = None                 # only masks recorded: no gradient to take
    elif backward is None:
        cache = None
    constants = {i: np.asarray(t) for i, t in enumerate(inputs) if not isinstance(t, Tensor)}
    node = Node(op, backward, cache, [t if isinstance(t, Tensor) else None for t in inputs], y.shape, y.dtype,
                attrs=params, constants=constants)
    return Tensor(y, _node=node)


def wrap_outputs(out, node: Node | None):
    """A recorded call's result as Tensors: the output (a tuple's first element) made by node, any
    further outputs (e.g. max-pool indices) constants."""
    if isinstance(out, tuple):
        return (wrap_outputs(out[0], node),) + tuple(Tensor(np.asarray(o)) if isinstance(o, np.ndarray) else o
                                                      for o in out[1:])
    return Tensor(np.asarray(out), _node=node)


def _shape(value) -> tuple:
    return np.shape(value.data if isinstance(value, Tensor) else value)


def _operand(value, like: Tensor, op: str):
    """A binary op's other operand: a Tensor of the same float dtype, or a constant array."""
    if isinstance(value, Tensor):
        if value.dtype != like.dtype:
            raise TypeError(f"{op}: the operands have different dtypes, {like.dtype} and {value.dtype}; "
                            f"convert one first")
        return value
    if isinstance(value, (bool, numbers.Number)) and not isinstance(value, complex):
        return np.asarray(value, like.dtype)
    arr = np.asarray(_from_foreign(value))
    if _is_float(arr.dtype) and arr.dtype != like.dtype:
        raise TypeError(f"{op}: the operands have different dtypes, {like.dtype} and {arr.dtype}; convert one first")
    if not (_is_float(arr.dtype) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(f"{op}: expected a number, an array or a Tensor, got {type(value).__name__}")
    return arr.astype(like.dtype, copy=False)


def _binary(op, forward, backward, a, b, broadcast: bool = True) -> Tensor:
    like = a if isinstance(a, Tensor) else b
    if not _is_float(like.dtype):
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {like.dtype}")
    a, b = _operand(a, like, op), _operand(b, like, op)
    sa, sb = _shape(a), _shape(b)
    if broadcast:
        try:
            np.broadcast_shapes(sa, sb)
        except ValueError:
            raise ValueError(f"{op}: shapes {sa} and {sb} do not broadcast") from None
    elif not sa or not sb or sa[-1] != (sb[0] if len(sb) == 1 else sb[-2]):
        raise ValueError(f"matmul: shapes {sa} and {sb} do not fit (the inner dims must agree)")
    return apply(op, forward, backward, (a, b))


def _dim(d, ndim: int, op: str) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {d!r}")
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(f"{op}: dim {d} is out of range for a tensor of {ndim} dims")
    return int(d) % max(ndim, 1)


def _dims(dim, ndim: int, op: str):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        dims = tuple(_dim(d, ndim, op) for d in dim)
        if len(set(dims)) != len(dims):
            raise ValueError(f"{op}: dim {dim} repeats a dim")
        return dims
    return _dim(dim, ndim, op)


def _plain_index(index):
    """Tensors inside an index become their arrays (indices carry no gradient)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# ---- functions of several tensors ------------------------------------------------------------------
def _same_kind(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    if like is None:
        like = Tensor(np.asarray(tensors[0]))
    return [_operand(t, like, op) for t in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; they must match in every other dim."""
    ts = _same_kind(tensors, "cat")
    shapes = [_shape(t) for t in ts]
    d = _dim(dim, len(shapes[0]), "cat")
    if any(len(s) != len(shapes[0]) or s[:d] + s[d + 1:] != shapes[0][:d] + shapes[0][d + 1:] for s in shapes):
        raise ValueError(f"cat: tensors must match in every dim but {dim}, got shapes {shapes}")
    return apply("cat", ops.cat_forward, ops.cat_backward, ts, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    ts = _same_kind(tensors, "stack")
    shapes = [_shape(t) for t in ts]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: tensors must have one shape, got shapes {shapes}")
    d = _dim(dim, len(shapes[0]) + 1, "stack")
    return apply("stack", ops.stack_forward, ops.stack_backward, ts, dim=d)


def split(t: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces along dim: of split_size_or_sections each (the last may be smaller), or of the
    listed sizes (which must add up to the dim's size). Each piece is a slice of t."""
    d = _dim(dim, t.ndim, "split")
    n = t.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to dim {dim}'s size {n}")
    else:
        size = split_size_or_sections
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"split: split_size must be a positive int, got {size!r}")
        sizes = [min(size, n - s) for s in range(0, n, size)] or [0]
    pieces, start = [], 0
    for s in sizes:
        pieces.append(t[(slice(None),) * d + (slice(start, start + s),)])
        start += s
    return tuple(pieces)


def chunk(t: Tensor, chunks: int, dim: int = 0) -> tuple:
    """split into `chunks` pieces of ceil(size / chunks) (fewer if the size runs out), as torch."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = t.shape[_dim(dim, t.ndim, "chunk")]
    return split(t, max(-(-n // chunks), 1), dim)


def where(condition, a, b) -> Tensor:
    """a where condition else b (broadcasting); condition is a bool array or tensor (a recorded
    comparison such as x > 0 stays in the graph)."""
    cond = condition if isinstance(condition, Tensor) else np.asarray(_from_foreign(condition))
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:                       # two constants: a float array keeps its dtype
        first = np.asarray(_from_foreign(a))
        like = Tensor(first if _is_float(first.dtype) else first.astype(float))
    a, b = _operand(a, like, "where"), _operand(b, like, "where")
    shapes = [cond.shape, _shape(a), _shape(b)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"where: shapes {shapes[0]} (condition), {shapes[1]} and {shapes[2]} do not broadcast") from None
    return apply("where", ops.where_forward, ops.where_backward, (cond, a, b))
