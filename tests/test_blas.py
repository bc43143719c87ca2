"""numpy's BLAS held to one thread while accurate mode runs, and the user's setting back after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
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


# threadpoolctl ignores a count set from one thread while another holds a limit, so the
# overlap runs in a fresh interpreter whose main thread holds none: the service's case,
# where only worker threads segment. Both orders of leaving are run: the one where the
# thread that restores is not the one that limited failed one run in four before
# blas.py handed control back.
_OVERLAP = """
import json
import sys
import threading
import numpy as np
from threadpoolctl import threadpool_info
from seglite.blas import one_blas_thread

def blas_threads():
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

np.ones((64, 64)) @ np.ones((64, 64))
before = blas_threads()
entered = [threading.Event(), threading.Event()]
leave = [threading.Event(), threading.Event()]
left = [threading.Event(), threading.Event()]
done = threading.Event()  # both stay alive to the end, as a service's workers do

def user(i):
    with one_blas_thread:
        entered[i].set()
        leave[i].wait(10)
    left[i].set()
    done.wait(10)

threads = [threading.Thread(target=user, args=(i,)) for i in range(2)]
threads[0].start()
entered[0].wait(10)  # thread 0 limits, thread 1 joins in
threads[1].start()
entered[1].wait(10)
during = blas_threads()
order = [1, 0] if sys.argv[1] == "first-in-leaves-last" else [0, 1]
leave[order[0]].set()
left[order[0]].wait(10)
first_left = blas_threads()
leave[order[1]].set()
left[order[1]].wait(10)
after = blas_threads()
done.set()
for t in threads:
    t.join(10)
print(json.dumps([sorted(before), sorted(during), sorted(first_left), sorted(after)]))
"""


@pytest.mark.parametrize("order", ["first-in-leaves-last", "first-in-leaves-first"])
def test_overlapping_threads_restore_once_the_last_leaves(order):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # two even on a one-core machine
    out = subprocess.run(
        [sys.executable, "-c", _OVERLAP, order],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    before, during, first_left, after = json.loads(out.stdout)
    assert before == [2]
    assert during == [1]
    assert first_left == [1]  # the first to leave leaves the other at one thread
    assert after == [2]
