"""The on-disk cache of rewritten graphs: used when verified, never trusted blindly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, REPO

from seglite import Segmenter
from seglite.runtime import litert

STARTER = REPO / "src/seglite/assets/deeplabv3_257_mv_gpu.tflite"
PHOTO = EXAMPLES / "astronaut.jpg"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLITE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGLITE_REWRITE_CACHE", raising=False)
    litert._rewritten_model.cache_clear()  # the in-memory layer would hide the disk
    yield tmp_path / "cache" / "rewritten"
    litert._rewritten_model.cache_clear()


def mask(**kw) -> np.ndarray:
    litert._rewritten_model.cache_clear()
    return Segmenter(STARTER, num_threads=1, **kw).segment(PHOTO).category_mask


def counting(monkeypatch) -> list:
    calls = []
    real = litert._rewrite_graph

    def spy(*a):
        calls.append(a[1:3])
        return real(*a)

    monkeypatch.setattr(litert, "_rewrite_graph", spy)
    return calls


def test_second_open_reads_the_rewrite_from_disk_with_the_same_masks(cache, monkeypatch):
    calls = counting(monkeypatch)
    first = mask()
    assert calls and len(list(cache.glob("*.tflite"))) == len(calls)
    n = len(calls)
    again = mask()
    assert len(calls) == n  # not rewritten again
    np.testing.assert_array_equal(first, again)
    monkeypatch.setenv("SEGLITE_REWRITE_CACHE", "0")
    np.testing.assert_array_equal(mask(), first)  # the uncached rewrite gives the same
    assert len(calls) == n + 1


def test_a_damaged_cached_file_is_rewritten_not_used(cache, monkeypatch):
    good = mask()
    calls = counting(monkeypatch)
    for f in cache.glob("*.tflite"):
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
        f.write_bytes(bytes(data))
    np.testing.assert_array_equal(mask(), good)
    assert calls  # detected by the recorded SHA-256 and rebuilt
    for f in cache.glob("*.json"):
        f.write_text("{not json")
    np.testing.assert_array_equal(mask(), good)


def test_an_unwritable_cache_costs_nothing_but_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("SEGLITE_CACHE_DIR", str(blocker))
    litert._rewritten_model.cache_clear()
    try:
        assert mask().shape == (512, 512)
    finally:
        litert._rewritten_model.cache_clear()


def test_disabled_cache_writes_nothing(cache, monkeypatch):
    monkeypatch.setenv("SEGLITE_REWRITE_CACHE", "off")
    mask()
    assert not cache.exists()
