"""numpy's BLAS held to one thread while accurate mode runs, and the user's setting back after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from seglite.blas import one_blas_thread


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_one_thread_inside_and_the_users_setting_after():
    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS loaded and used
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == {2}
        with one_blas_thread:
            assert _blas_threads() == {1}
            with one_blas_thread:  # nested (a service thread inside another's call)
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}  # still one user in
        assert _blas_threads() == {2}


# OpenBLAS ignores a thread count set from another thread once the main thread has set
# one (seen with OpenBLAS 0.3.31), so the overlap runs in a fresh interpreter whose main
# thread never touched it: the service's case, where only worker threads segment.
_OVERLAP = """
import json
import threading
import numpy as np
from threadpoolctl import threadpool_info
from seglite.blas import one_blas_thread

def blas_threads():
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

np.ones((64, 64)) @ np.ones((64, 64))
before = blas_threads()
inside, release = threading.Barrier(3, timeout=10), threading.Event()
seen = []

def user():
    with one_blas_thread:
        inside.wait()
        release.wait(10)
        seen.append(blas_threads())

threads = [threading.Thread(target=user) for _ in range(2)]
for t in threads:
    t.start()
inside.wait()
during = blas_threads()
release.set()
for t in threads:
    t.join(10)
print(json.dumps([sorted(before), sorted(during), sorted(seen[0]), sorted(blas_threads())]))
"""


def test_overlapping_threads_restore_once_the_last_leaves():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # two even on a one-core machine
    out = subprocess.run(
        [sys.executable, "-c", _OVERLAP], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    before, during, first_to_leave, after = json.loads(out.stdout)
    assert before == [2]
    assert during == [1]
    assert first_to_leave == [1]  # the first to leave leaves the other at one thread
    assert after == [2]
