"""The allocator tuning of service.runtime, observed through page faults.

Each case runs in a fresh interpreter, since mallopt() settings last for the
life of a process and arenas are handed out when threads first allocate.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, touches and frees an 80 MiB array twice in a worker thread, and
# prints the minor page faults of the second round: none when the freed memory
# was kept for reuse, about 20 000 (80 MiB of 4 KiB pages) when it was handed
# back.  80 MiB is more than a heap of a thread's own arena can hold (64 MiB),
# so there it is mapped afresh whatever the thresholds, and only the single
# arena keeps it.  numpy's transparent huge pages are switched off so that a
# fault is one 4 KiB page.
_PROGRAM = """
import resource, sys, threading
import numpy as np
try:
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _set_madvise_hugepage
from service.runtime import tune_allocator

_set_madvise_hugepage(False)

if sys.argv[1] == "tuned":
    assert tune_allocator()

def touch():
    array = np.empty(10 * 1024 * 1024)
    array.fill(1.0)
    del array

def second_round_faults():
    touch()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    touch()
    faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

faults = []
worker = threading.Thread(target=second_round_faults)
worker.start()
worker.join()
print(faults[0])
"""


def _second_round_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_allocator_reuses_freed_arrays_in_worker_threads() -> None:
    assert _second_round_faults("default") > 10_000
    assert _second_round_faults("tuned") < 500
