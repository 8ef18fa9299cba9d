"""Process-wide tuning that a serving process applies once, at import.

Note: lossgrad allocates a few arrays of N float64 per request and frees them
when the response is sent.  With glibc's defaults, arrays above the mmap
threshold are mapped afresh and unmapped on every request, and each first
touch of a page faults: measured here, that doubles the time of the core at
N = 1e5.  Raising the mmap threshold keeps such arrays in the heap, and raising
the trim threshold keeps freed heap memory for the next request instead of
returning it to the kernel.  The process's RSS then settles at its high-water
mark rather than falling back between requests.

Large requests are computed in worker threads, and glibc gives each new thread
an arena of its own, whose heaps it grows and shrinks apart from the main one:
measured here, a million-number request computed in such a thread took twice
the main thread's page faults (29 000 against 14 500) and about 8 % longer.
One arena for the whole process avoids that; its lock costs little, because
the threads allocate while holding the GIL, one at a time, anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt() parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

# Arrays up to this size come from the heap (10 million float64 is 80 MB).
MMAP_THRESHOLD_BYTES = 256 * 1024 * 1024
# Free heap memory kept for reuse before any is returned to the kernel.
TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024


def tune_allocator() -> bool:
    """Apply the thresholds above and one arena; ``False`` where the C library
    is not glibc.  Call it before any thread is started."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others have no mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        and mallopt(_M_ARENA_MAX, 1)
    )
    log.debug("malloc tuning %s", "applied" if applied else "refused")
    return applied
