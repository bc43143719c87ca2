"""Resuming: the run record in the output root, and the plan that skips finished images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import OptionError

if TYPE_CHECKING:
    from ..segmenter import Segmenter

from .jobs import Item, Outcome, Outputs
from .sinks import Sink, is_uri

RUN_RECORD = ".seglite-run.json"  # in the output root: what made the outputs there


def run_record(seg: Segmenter, outputs: Outputs) -> dict:
    """What decides the pixels of the outputs: the model's bytes and the options that change
    results. Which outputs were asked for is not in it: each file is checked on its own."""
    from ..zoo import file_sha256

    return {
        "model": seg.model_name,
        "model_sha256": file_sha256(seg.model_path),
        "scales": list(seg.scales),
        "flip": seg.flip,
        "labels": seg.labels,
        "alpha": outputs.alpha,
    } | ({"effect": outputs.effect.record()} if outputs.effect is not None else {})


def claim_output(sink: Sink, record: dict, *, overwrite: bool) -> None:
    """Refuse to resume into outputs another model or other options made; then record ours.

    Without this, a re-run with model B would skip every image model A already did.
    """
    import json

    old = sink.read(RUN_RECORD)
    if old is not None and not overwrite:
        try:
            before = json.loads(old)
        except ValueError:
            before = None
        if before != record:
            what = sorted(
                k for k in record if not isinstance(before, dict) or before.get(k) != record[k]
            )
            made = before.get("model", "?") if isinstance(before, dict) else "?"
            raise OptionError(
                f"{sink.describe()} holds outputs made by {made} with other settings "
                f"({', '.join(what)} differ): pass --overwrite to redo them, or choose another --out"
            )
    sink.write(RUN_RECORD, json.dumps(record, indent=1) + "\n")


def plan(
    items: Sequence[Item], outputs: Outputs, sink: Sink, *, overwrite: bool = False
) -> tuple[list[Item], list[Outcome]]:
    """Split ``items`` into work to do and outcomes already known (skipped, name clashes).

    An image is done when every requested output exists and is not older than the image;
    outputs are written whole, so existence means complete.
    """
    existing = {} if overwrite else sink.existing()
    todo: list[Item] = []
    known: list[Outcome] = []
    owner: dict[str, str] = {}
    for item in items:
        if item.name in owner:
            known.append(
                Outcome(
                    item.src,
                    item.name,
                    "failed",
                    f"{item.src}: same output name as {owner[item.name]}: rename one of them",
                )
            )
            continue
        owner[item.name] = item.src
        stamps = [existing.get(f) for f in outputs.files(item.name)]
        if stamps and all(s is not None for s in stamps) and min(stamps) >= _mtime(item.src):
            known.append(Outcome(item.src, item.name, "skipped"))
        else:
            todo.append(item)
    return todo, known


def _mtime(src: str) -> float:
    if is_uri(src):
        return 0.0
    try:
        return os.stat(src).st_mtime
    except OSError:
        return 0.0
