"""convgrad.memory.retain_freed_memory: takes effect on glibc (checked in a fresh process, since
it is process-wide), and is not applied by importing convgrad. Layer workspaces keep only work
arrays up to _buffers.KEEP_BYTES."""
import subprocess
import sys

import numpy as np
import pytest

from convgrad import nn
from convgrad.functional import _buffers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retain_freed_memory_takes_effect_and_is_opt_in():
    code = ("import resource, numpy as np, convgrad\n"
            "from convgrad.memory import retain_freed_memory\n"
            "def faults():\n"
            "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "    for _ in range(20):\n"
            "        a = np.ones(2_000_000); b = a + 1; del a, b\n"
            "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
            "plain = faults()\n"
            "assert retain_freed_memory()\n"
            "faults()\n"
            "print(plain, faults())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    plain, retained = map(int, out.split())
    assert retained * 10 < plain, (plain, retained)     # freed 16 MB blocks are reused, not faulted in again


@pytest.mark.parametrize("make", [lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: nn.AvgPool2d(3, stride=2, padding=1),
                                  lambda: nn.MaxPool2d(2), lambda: nn.AdaptiveMaxPool2d(3),
                                  lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, generator=0),
                                  lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, generator=0)],
                         ids=["maxpool-3s2p1", "avgpool-3s2p1", "maxpool-2", "adaptive-max", "depthwise-s2", "depthwise-s1"])
def test_work_arrays_past_the_keep_size_are_per_call_and_give_the_same_numbers(make, rng, monkeypatch):
    """With KEEP_BYTES 0 every work array is fresh per call and none stays in a workspace;
    two rounds of forward and backward give the bits of the kept-workspace default."""
    x = rng.standard_normal((3, 4, 9, 11)).astype(np.float32)
    results = []
    for keep in (_buffers.KEEP_BYTES, 0):
        monkeypatch.setattr(_buffers, "KEEP_BYTES", keep)
        layer = make().to(np.float32)
        rounds = []
        for scale in (1.0, -2.0):                      # the second round reuses (or not) the first's buffers
            y = layer(x * scale)
            dx = layer.backward(np.ones_like(y) * scale)
            rounds.append((y, dx))
        workspace = getattr(layer, "_workspace", {})
        kept = [k for k, v in workspace.items() if isinstance(v, np.ndarray) and v.nbytes > keep]
        if keep == 0:
            assert kept == []
        results.append(rounds)
    for (y0, dx0), (y1, dx1) in zip(*results):
        np.testing.assert_array_equal(y0, y1)
        np.testing.assert_array_equal(dx0, dx1)
