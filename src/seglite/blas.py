"""numpy's BLAS held to one thread while seglite multiplies small matrices beside LiteRT.

OpenBLAS threads even small products and then spins its workers for a while; on a
machine whose cores XNNPACK is using, that spinning doubles the next invoke (measured:
10.5 -> 21 ms for the starter model after one 128x33x21 product). Accurate mode's tile
interpolation is such a product, so it runs inside :data:`one_blas_thread`. threadpoolctl
does the switching (the maintained way to reach whatever BLAS numpy loaded); the count of
users lets concurrent calls (the service's worker threads) overlap, and the user's own
setting comes back when the last one leaves.

One limit: OpenBLAS (0.3.31) ignores a count set from a worker thread once the main thread
has set one itself, so there the products may still thread; the service and the CLI never
set one, so their worker and main threads both get the single thread.
"""

from __future__ import annotations

import functools
import threading


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _OneBlasThread:
    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._limiter = _controller().limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


one_blas_thread = _OneBlasThread()
