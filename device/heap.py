"""Give the heap's free pages back to the system after a model is let go (glibc malloc_trim).

glibc keeps freed memory in its arenas for reuse; after an inference session of ~120 MB is freed,
the next allocations land in those holes unevenly and, over a few add/remove cycles of a model
beside the main one, tens of MB stayed with the process (bench/multi_model.py --memory-only:
+63 MB after 5 cycles without this, +0 with it). A no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> bool:
    """Return free heap pages to the system; True when glibc did (milliseconds, not per frame)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
