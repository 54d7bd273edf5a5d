"""One batch computed in parts on threads (DataParallel), with the whole batch's statistics.

Most layers treat samples independently, so each part can run alone. Two kinds do not:
BatchNorm normalises with statistics over the whole batch, and Dropout draws one random mask
for the whole batch. While a thread runs its part, `current_part()` returns a `Part`
through which such a layer meets the other parts at the same point of the same pass:

    part.sum(vector)       every part's vector added, in part order (each part gets the
                           same float64 result)
    part.from_first(make)  make() run by part 0 only; every part gets its result
    part.rows, part.n      this part's rows of the whole batch of n

With both, a model computed in parts gives the whole batch's result (up to the order of float
additions), and part 0's random generator advances exactly as it would unsplit. Outside a
split, `current_part()` is None.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

_local = threading.local()


def current_part() -> "Part | None":
    """The part of a split batch this thread is computing, or None."""
    return getattr(_local, "part", None)


class BatchParts:
    """The meeting point of the parts of one batch: parts (list of row slices of a batch of
    n = parts[-1].stop). Each thread runs its part inside `enter(index)`."""

    def __init__(self, parts: list):
        self.parts = list(parts)
        self.n = self.parts[-1].stop
        self._barrier = threading.Barrier(len(self.parts))
        # two sets of slots, used by turns: a part writing exchange k + 1 cannot overwrite what
        # another is still reading of exchange k (it would have to pass exchange k + 1's barrier first)
        self._slots = ([None] * len(self.parts), [None] * len(self.parts))
        self._turns = [0] * len(self.parts)
        self.error: BaseException | None = None     # the first error a part raised

    def exchange(self, index: int, value) -> list:
        """Every part's value, in part order. Each part must call it at the same point."""
        slots = self._slots[self._turns[index] % 2]
        self._turns[index] += 1
        slots[index] = value
        self._barrier.wait()
        return list(slots)

    @contextlib.contextmanager
    def enter(self, index: int):
        """Run the calling thread as part `index`. A part that fails breaks the meeting point,
        so the others raise threading.BrokenBarrierError instead of waiting for ever; the
        failing part's error is kept in `error`."""
        before = current_part()
        _local.part = Part(self, index)
        try:
            yield _local.part
        except BaseException as e:
            if not isinstance(e, threading.BrokenBarrierError) and self.error is None:
                self.error = e
            self._barrier.abort()
            raise
        finally:
            _local.part = before


class Part:
    """Part `index` of a BatchParts (see the module docstring)."""

    def __init__(self, group: BatchParts, index: int):
        self.group, self.index = group, index
        self.rows, self.n = group.parts[index], group.n

    def sum(self, vector: np.ndarray) -> np.ndarray:
        """The element-wise sum of every part's vector (float64), the same on every part."""
        values = self.group.exchange(self.index, np.asarray(vector, np.float64))
        total = values[0].copy()
        for v in values[1:]:
            total += v
        return total

    def from_first(self, make):
        """make() computed by part 0 alone; every part returns its result."""
        return self.group.exchange(self.index, make() if self.index == 0 else None)[0]
