"""Whether calls are recorded: `no_grad()` / `enable_grad()`, per thread as in torch."""
from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside `no_grad()` on this thread."""
    return getattr(_state, "enabled", True)


class _GradMode:
    _enabled: bool

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False

    def __call__(self, fn):
        """Also usable as a decorator."""
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Inside `with convgrad.no_grad():` nothing is recorded and modules keep no forward caches
    (inference at the memory of one layer's work, as torch.no_grad)."""
    _enabled = False


class enable_grad(_GradMode):
    """Turns recording back on inside a `no_grad` block."""
    _enabled = True
