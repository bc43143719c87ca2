"""Run-directory bookkeeping: atomic JSON, checkpoints that are consistent as a set.

A checkpoint is three files: ``ckpt/model-<it>.safetensors`` (weights + model config,
loadable by ``seglite.models.load_checkpoint``), ``ckpt/optim-<it>.safetensors``
(momentum buffers) and ``state.json``, written last and atomically, naming the other
two. A kill at any moment leaves either the previous or the new ``state.json``, and
each names files that are complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import PART, write_atomic


def atomic_write_text(path: Path, text: str) -> None:
    write_atomic(path, text, fsync=True)


def atomic_write_json(path: Path, data: Any, *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def save_optimizer(optimizer, names: dict, path: Path) -> None:
    """SGD momentum buffers keyed by parameter name, as safetensors (atomic)."""
    from safetensors.torch import save

    tensors = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[names[p]] = buf.detach().cpu().contiguous()
    data = save(tensors, metadata={"seglite.format": "seglite.sgd-momentum/1"})
    write_atomic(path, data, fsync=True)


def load_optimizer(optimizer, names: dict, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[p]
            if name in tensors:
                optimizer.state[p]["momentum_buffer"] = tensors[name].to(p.device)


def prune_checkpoints(ckpt_dir: Path, keep_iterations: set[int]) -> None:
    """Delete checkpoint files of other iterations and leftover temporaries."""
    for f in ckpt_dir.glob("*"):
        if f.name.endswith((".tmp", PART)):  # .tmp: written before files.write_atomic
            f.unlink(missing_ok=True)
            continue
        stem = f.stem.rsplit("-", 1)
        if len(stem) == 2 and stem[1].isdigit() and int(stem[1]) not in keep_iterations:
            f.unlink(missing_ok=True)


def truncate_log(path: Path, last_iteration: int) -> None:
    """Drop log records past ``last_iteration`` (work a kill threw away), atomically."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
        if rec.get("iter", 0) <= last_iteration:
            keep.append(line)
    atomic_write_text(path, "".join(f"{ln}\n" for ln in keep))
