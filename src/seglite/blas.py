"""numpy's BLAS held to one thread while seglite multiplies small matrices beside LiteRT.

OpenBLAS threads even small products and then spins its workers for a while; on a
machine whose cores XNNPACK is using, that spinning doubles the next invoke (measured:
10.5 -> 21 ms for the starter model after one 128x33x21 product). Accurate mode's tile
interpolation is such a product, so it runs inside :data:`one_blas_thread`. threadpoolctl
does the switching (the maintained way to reach whatever BLAS numpy loaded); the count of
users lets concurrent calls (the service's worker threads) overlap, and the user's own
setting comes back when the last one leaves.

threadpoolctl 3.7+ lets one thread at a time set OpenBLAS's (process-wide) count: the
first to set it, until that thread hands control back; others are silently ignored. The
thread that restores the user's count may not be the one that limited it (overlapping
service threads), so each switch hands control back, unless the thread holds an outer
``threadpool_limits`` of its own. While another thread holds one, ours are ignored: the
user's limit wins.
"""

from __future__ import annotations

import functools
import threading


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _hand_back_control() -> None:
    import threadpoolctl

    ownership = getattr(threadpoolctl, "CONTROLLING_THREAD_OWNERSHIP", None)  # 3.7+
    if ownership is not None and ownership.count == 0:  # no outer limit in this thread
        threadpoolctl.OpenBLASController.clear_controlling_thread()


class _OneBlasThread:
    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._limiter = _controller().limit(limits=1, user_api="blas")
                _hand_back_control()
            self._users += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None
                _hand_back_control()


one_blas_thread = _OneBlasThread()
