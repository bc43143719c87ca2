"""Rewritten graphs kept on disk, so that a one-image CLI run does not rebuild them.

The in-graph squash, fused argmax and cut final resize are a flatbuffer rewrite through
the object API: 40-200 ms of Python per model and process, a quarter of a one-image
``seglite segment``. The result depends only on the model's bytes and the rewrite asked
for, so it is stored under ``<cache dir>/rewritten/`` keyed by a SHA-256 of both and of
the rewriting code itself (the modules in ``REWRITERS``), so that a changed rewrite or an
upgrade never reads an older one. A cached file is
used only if its own SHA-256 matches the one recorded beside it; anything unreadable,
unwritable or odd falls back to rewriting in memory: the cache saves time, never decides
results. ``SEGLITE_REWRITE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

Rewritten = tuple[bytes, "tuple[int, int] | None", bool, bool]  # model, factor, fused, squash


def _directory() -> Path | None:
    if os.environ.get("SEGLITE_REWRITE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from ..zoo import cache_dir

    return cache_dir() / "rewritten"


# The code whose output is cached: its source is part of the key.
REWRITERS = ("image_input.py", "fused_argmax.py", "final_resize.py", "../tflite_file.py")


def _key(data: bytes, options: tuple) -> str:
    h = hashlib.sha256(data)
    h.update(json.dumps(list(options), default=str).encode())
    here = Path(__file__).parent
    for name in REWRITERS:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def load_or_build(data: bytes, options: tuple, build: Callable[[], Rewritten | None]):
    """``build()``'s result for ``(data, options)``, from disk when a verified copy is there."""
    directory = _directory()
    if directory is None:
        return build()
    try:
        key = _key(data, options)
    except OSError:  # the rewriting code cannot be read (a frozen app): no cache
        return build()
    meta_path, model_path = directory / f"{key}.json", directory / f"{key}.tflite"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("rewritten") is False:
            return None  # nothing applies to this model: remembered too
        model = model_path.read_bytes()
        if hashlib.sha256(model).hexdigest() == meta["sha256"]:
            factor = tuple(meta["factor"]) if meta["factor"] else None
            return model, factor, bool(meta["fused"]), bool(meta["squash"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = build()
    _store(directory, meta_path, model_path, result)
    return result


def _store(directory: Path, meta_path: Path, model_path: Path, result) -> None:
    from ..files import write_atomic

    try:
        directory.mkdir(parents=True, exist_ok=True)
        if result is None:
            write_atomic(meta_path, json.dumps({"rewritten": False}).encode())
            return
        model, factor, fused, squash = result
        write_atomic(model_path, model)
        meta = {"rewritten": True, "sha256": hashlib.sha256(model).hexdigest(),
                "factor": list(factor) if factor else None, "fused": fused, "squash": squash}  # fmt: skip
        write_atomic(meta_path, json.dumps(meta).encode())  # last: the model is in place
    except OSError:
        pass  # a read-only or full cache costs the rewrite next time, nothing else
