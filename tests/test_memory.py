"""convgrad.memory.retain_freed_memory: takes effect on glibc (checked in a fresh process, since
it is process-wide), and is not applied by importing convgrad."""
import subprocess
import sys

import pytest


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
