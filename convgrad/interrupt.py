"""Ctrl-C and SIGTERM as a request to stop at the next safe point (the end of a training step).

    with catch_signals() as stop:
        for batch in batches:
            step(batch)
            if stop.signal:             # "SIGINT" or "SIGTERM"
                save(); break

The first signal only sets `stop.signal`; a second one raises KeyboardInterrupt at once. Outside
the main thread (where Python cannot install handlers) nothing is caught.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class StopRequest:
    def __init__(self):
        self.signal: str | None = None


@contextmanager
def catch_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request.signal is not None:
            raise KeyboardInterrupt
        request.signal = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
