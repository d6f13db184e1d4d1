"""Process settings for a one-shot batch command (replay): a short run that must not pay for
what a long-lived server would want. Called before numpy and pyarrow are imported.

- BLAS single-threaded: numpy's OpenBLAS starts a thread per CPU at import, and those threads
  spin waiting for work replay never gives them (5 % of a replay's CPU on 2 cores).
- Arrow allocating from the C heap: its default pool (mimalloc) takes fresh huge pages for the
  CSV reader's buffers, and the kernel zeroes each one whole (7 % of a replay's CPU); from the
  C heap the reader's freed buffers are reused by the numpy columns that follow.
- No CA bundle looked up for PROJ's network access, which replay never uses: pyproj otherwise
  asks certifi for its path on import (a few ms); the system settings apply if it ever did.
- Freed memory kept in the process (glibc only; elsewhere a no-op): a replay allocates and
  frees column-sized arrays (megabytes each) hundreds of times. glibc hands blocks that large
  straight to the kernel (mmap) and back on free, so each new array faults its pages in again:
  a third of a replay's CPU time was the kernel zeroing pages. Raising the mmap and trim
  thresholds keeps such blocks on the heap, where the next array reuses them.
"""

from __future__ import annotations

import os
import sys

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit (4 * 1024 * 1024 * sizeof(long))
TRIM_THRESHOLD = 1 << 30
# Read by OpenBLAS, Arrow and pyproj when they load; a value the user set is kept.
PROCESS_VARIABLES = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "PROJ_CURL_CA_BUNDLE": "",
}


def prepare_batch_process() -> None:
    """Single-threaded BLAS, Arrow on the C heap, freed memory kept; before numpy and pyarrow
    are imported."""
    for name, value in PROCESS_VARIABLES.items():
        os.environ.setdefault(name, value)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Asks glibc to keep blocks up to 32 MiB on the heap and never trim it; True if it took."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
