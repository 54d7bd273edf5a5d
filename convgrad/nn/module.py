"""Parameter, Module and Sequential: the PyTorch-shaped object model.

Two ways to get gradients, one library:
- explicit: `y = m(ndarray)` keeps what backward needs in the module; `m.backward(grad_out)`
  returns the input gradient and *adds* parameter gradients into Parameter.grad (a module used
  twice gets the sum, the lectures' "add them!");
- recorded: `y = m(convgrad.tensor(x))` returns a Tensor and records the call (nn/calls.py);
  `loss.backward()` runs every recorded call's backward in reverse. A Module without a
  backward of its own is forward-only: its forward's Tensor ops record themselves.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Iterator

import numpy as np

from .._checks import check_bool, check_float_dtype
from ..autograd.tensor import Tensor, _from_foreign
from . import calls


class Parameter(Tensor):
    """A trainable leaf Tensor: `.data` (the values), `.grad` (None until a backward adds to it)
    and `.requires_grad` (False freezes it: no gradient is computed, optimisers skip it)."""

    def __init__(self, data, requires_grad: bool = True):
        data = np.asarray(_from_foreign(data))
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter: expected floating-point data, got dtype {data.dtype}")
        super().__init__(data, requires_grad=check_bool("Parameter", "requires_grad", requires_grad))

    def accumulate(self, grad: np.ndarray) -> None:
        """grad += g (allocating on first use), as torch accumulates into .grad."""
        self._accumulate_grad(grad)

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


class Module:
    """Base class of every layer and model.

    Subclasses implement forward(x), and backward(grad_out) unless they are forward-only.
    Parameters, buffers and submodules assigned as attributes are registered automatically, in
    assignment order, so names follow torch ("0.weight", "layer1.0.bn1.running_mean", ...).
    What forward keeps for backward goes in other attributes (`self._cache` by convention):
    they are the state a recorded call or a repeat call saves and restores (nn/calls.py).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = calls.pops_call_stack(cls.__dict__["backward"])

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call Module.__init__() before assigning attributes")
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} as parameter {name!r} "
                            f"(a Parameter or None expected; to change its values write {name}.data)")
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """A non-trainable array that belongs in state_dict (e.g. BatchNorm's running_mean)."""
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    # ---- the pass -----------------------------------------------------------------
    def forward(self, x):
        """Compute the output from the input; a layer keeps here what its backward needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        """dJ/d(input) from dJ/d(output), adding parameter gradients into Parameter.grad; a module
        without its own backward is forward-only (recorded mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no backward of its own: it is forward-only. Call "
                                  f"it with a convgrad.Tensor and call .backward() on the loss it leads to")

    def __call__(self, *args, **kwargs):
        try:
            return calls.call(self, args, kwargs, self.has_backward())
        except TypeError as exc:        # arguments forward does not take: name the module, not _MaxPoolNd.forward
            try:
                inspect.signature(self.forward).bind(*args, **kwargs)
            except TypeError:
                raise TypeError(f"{type(self).__name__}: forward{inspect.signature(self.forward)} cannot take "
                                f"these arguments ({exc})") from None
            raise

    def has_backward(self) -> bool:
        """Whether this module differentiates itself (its class defines backward); if not, it is
        forward-only and its calls on Tensors are recorded op by op. A container answers for
        its children too."""
        return type(self).backward is not Module.backward

    def _accumulate(self, **grads) -> None:
        """Add each gradient to the parameter of that name (skipping absent ones: bias=False,
        affine=False, and frozen ones), as every layer's backward does."""
        for name, grad in grads.items():
            param = getattr(self, name)
            if param is not None and grad is not None and param.requires_grad:
                param.accumulate(grad)

    def _cached(self, cache):
        """Return the forward cache, or raise the error for backward() before forward()."""
        if cache is None:
            if self.__dict__.get("_cache_freed"):
                raise RuntimeError(f"{type(self).__name__}.backward(): the cache of its forward was freed by the "
                                   f"backward already run inside nn.free_caches(); run the forward again, or run "
                                   f"the backward passes outside free_caches() to differentiate one forward twice")
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): "
                               f"there is no cached forward pass to differentiate")
        return cache

    # ---- traversal ----------------------------------------------------------------
    def children(self) -> Iterator["Module"]:
        """The direct submodules, in registration order."""
        yield from self._modules.values()

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, submodule) of the direct submodules."""
        yield from self._modules.items()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) of this module ("") and every submodule, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        """This module and every submodule, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) of every parameter ("0.weight", "layer1.0.bn1.bias", ...), each
        shared Parameter once."""
        seen = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter (what an optimiser takes), each shared Parameter once."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) of every buffer that is not None (e.g. BatchNorm's running_mean)."""
        for mod_name, mod in self.named_modules():
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    # ---- modes and gradients --------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (mode=True) or evaluation mode on this module and every submodule;
        returns self."""
        mode = check_bool(f"{type(self).__name__}.train", "mode", mode)
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (BatchNorm uses its running statistics, Dropout is the identity); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter, as torch's Module.requires_grad_."""
        requires_grad = check_bool(f"{type(self).__name__}.requires_grad_", "requires_grad", requires_grad)
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: set it to None, or fill it with zeros (set_to_none=False)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def to(self, dtype) -> "Module":
        """Convert every floating parameter and buffer to dtype (e.g. np.float64 for gradcheck)."""
        dt = check_float_dtype(f"{type(self).__name__}.to", dtype)
        if dt is None:
            raise TypeError(f"{type(self).__name__}.to: dtype must be float32 or float64, got None")
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dt)
                p.grad = None if p.grad is None else p.grad.astype(dt)
            for name, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    setattr(m, name, b.astype(dt))
        return self

    def double(self) -> "Module":
        """Convert parameters and floating buffers to float64; returns self."""
        return self.to(np.float64)

    def float(self) -> "Module":
        """Convert parameters and floating buffers to float32; returns self."""
        return self.to(np.float32)

    # ---- state ----------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters then buffers of each module, in torch's order; arrays are copies."""
        state = OrderedDict()
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                state[pre + name] = p.data.copy()
            for name, b in mod._buffers.items():
                if b is not None:
                    state[pre + name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state: dict, strict: bool = True):
        """Copy arrays in by name (NumPy arrays, or torch tensors read without importing torch).
        strict: the key sets must match. Shapes must always match, values must be numeric.
        Returns (missing_keys, unexpected_keys), as torch does."""
        where = f"{type(self).__name__}.load_state_dict"
        if not hasattr(state, "keys"):
            raise TypeError(f"{where}: expected a dict of arrays, got {type(state).__name__}")
        own = {}
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name in mod._parameters:
                own[pre + name] = (mod, name, "param")
            for name, b in mod._buffers.items():
                if b is not None:
                    own[pre + name] = (mod, name, "buffer")
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"{where}: state does not match the model: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        values = {}
        for key, (mod, name, kind) in own.items():       # check everything before changing anything
            if key not in state:
                continue
            current = mod._parameters[name].data if kind == "param" else mod._buffers[name]
            value = _from_foreign(state[key])
            value = value.data if isinstance(value, Tensor) else value
            try:
                value = np.asarray(value)
            except Exception as e:
                raise TypeError(f"{where}: {key} is not an array ({type(state[key]).__name__})") from e
            if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
                raise TypeError(f"{where}: {key} must be numeric, got dtype {value.dtype}")
            if value.shape != current.shape:
                raise ValueError(f"{where}: {key} expects shape {current.shape}, the state has {value.shape}")
            values[key] = value.astype(current.dtype, copy=True)
        for key, value in values.items():
            mod, name, kind = own[key]
            if kind == "param":
                mod._parameters[name].data = value
            else:
                setattr(mod, name, value)
        return missing, unexpected

    # ---- printing -------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The module's own arguments as shown inside its repr (override it in a layer)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child_repr}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


class Sequential(Module):
    """A chain of modules: forward runs them in order, backward in reverse.

    ``y = m_n(... m_2(m_1(x)))``; ``backward(dy)`` calls ``m_n.backward`` first and hands each
    result to the module before it (the chain rule). Children are named ``"0"``, ``"1"``, ...
    One step is fused: a plain ReLU directly followed by an unpadded 2x2 stride-2 MaxPool2d runs
    as ``relu(max_pool(x))`` on a quarter of the elements (the same values and gradient).
    ``backward(grad_out, input_grad=False)`` lets a first layer skip the input gradient (training on
    data) and returns None.

    Args:
        modules (Module): the modules, in order.

    Shape:
        - Input: what the first module takes.
        - Output: what the last module returns; each module's output is the next one's input.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10))
        >>> y = model(np.zeros((2, 1, 28, 28), dtype=np.float32))
        >>> y.shape
        (2, 10)
        >>> model.backward(np.ones_like(y)).shape
        (2, 1, 28, 28)
        >>> [name for name, _ in model.named_parameters()]
        ['0.weight', '0.bias', '4.weight', '4.bias']
    """

    skips_input_grad = True      # backward(grad, input_grad=False): a first layer that can skips dx

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def has_backward(self) -> bool:
        """A chain differentiates itself when every child does; otherwise it is forward-only."""
        return all(m.has_backward() for m in self._modules.values())

    def append(self, module: Module) -> "Sequential":
        """Add a module at the end (named by its position); returns self."""
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x):
        """Runs the children in order. A ReLU directly followed by a 2x2 stride-2 MaxPool2d
        runs as one step, relu(max_pool(x)) — equal to max_pool(relu(x)), gradient included,
        on a quarter of the elements (MaxPool2d.forward_relu)."""
        children = list(self._modules.values())
        if isinstance(x, Tensor):         # a forward-only child inside: every call records itself
            for m in children:
                x = m(x)
            return x
        self._steps = steps = []          # what backward runs, in forward order
        i = 0
        while i < len(children):
            m = children[i]
            if i + 1 < len(children) and _relu_fuses_into(m, children[i + 1]):
                x = children[i + 1].forward_relu(x)
                steps.append(children[i + 1])
                i += 2
                continue
            x = m(x)
            steps.append(m)
            i += 1
        return x

    def backward(self, grad_out, input_grad: bool = True):
        """Runs the children's backward in reverse. input_grad=False: the caller needs no
        gradient for the input (training on data), so a first layer that can skip computing
        it does (as torch skips it for inputs without requires_grad); returns None then."""
        steps = getattr(self, "_steps", None)
        if steps is None:                 # no forward yet: the children raise their own error
            steps = list(self._modules.values())
        if not steps:
            return grad_out if input_grad else None
        *rest, first = reversed(steps)
        for m in rest:
            grad_out = m.backward(grad_out)
        if not input_grad:
            if getattr(first, "skips_input_grad", False):
                return first.backward(grad_out, input_grad=False)
            first.backward(grad_out)
            return None
        return first.backward(grad_out)


def _relu_fuses_into(m: Module, nxt: Module) -> bool:
    """Whether m runs inside the next module's forward (MaxPool2d.absorbs: a plain ReLU before a
    2x2 stride-2 max-pool); the rule lives on the pooling layer, so nn.module imports no layer."""
    absorbs = getattr(nxt, "absorbs", None)
    return absorbs is not None and absorbs(m)
