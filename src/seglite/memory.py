"""Giving freed memory back to the system after a large request.

glibc keeps the heap it grew for a 16 MP request (about 150 MB) after the arrays are
freed: its mmap threshold rises after the first large free, so later large buffers come
from the heap, and the heap is only trimmed from its top. A long-running service would
then sit at its worst request's size. ``malloc_trim`` returns every free page (glibc
2.8+ releases the middle of the heap too); it costs a few milliseconds, so the service
calls it only after requests that were large. Elsewhere (musl, macOS, Windows) it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# Requests with at least this many pixels are followed by a trim.
TRIM_AFTER_PIXELS = 4_000_000


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return freed heap pages to the system; True where the C library could."""
    fn = _malloc_trim()
    return bool(fn is not None and fn(0))
