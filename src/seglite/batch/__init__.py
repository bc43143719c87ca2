"""Many images, one way: the per-image work shared by the serial path, the process pool and Ray.

Every front end (``seglite segment``, the Ray actors in ``raydata``, the benchmark) hands
:func:`pipeline` a Segmenter and a stream of :class:`Item`; it decodes the next image on a
helper thread while the model runs on the current one, writes each output atomically, and
turns every failure into an :class:`Outcome` instead of an exception, so one bad file never
stops a run. What differs between front ends is only who owns the Segmenters:

- serial (``--jobs 1``): one Segmenter in this process;
- :func:`run_pool` (``--jobs N``): N spawned worker processes, each with its own Segmenter
  (one interpreter thread by default: processes scale across cores without sharing a GIL);
- ``seglite.raydata`` (``--ray``): an actor pool of Segmenters on a Ray cluster.

Resume: :func:`plan` skips images whose outputs all exist and are not older than the
image, so a run killed at any point (outputs are renamed into place complete or not at
all) picks up where it stopped, without recomputing finished images.

One module per idea: jobs (Item, Outputs, Outcome, SegmenterSpec), sinks (local and
pyarrow outputs), discover (walking folders and URIs), resume (run record, plan), work
(the per-image pipeline), pool (the process pool).
"""

from __future__ import annotations

from .discover import items_from_list, output_name, walk_images, walk_uris
from .jobs import IMAGE_SUFFIXES, Item, Outcome, Outputs, SegmenterSpec
from .resume import RUN_RECORD, claim_output, plan, run_record
from .sinks import ArrowSink, LocalSink, Sink, is_uri, make_sink, read_uri
from .work import finish, pipeline, prepare, run_serial


def __getattr__(name: str):
    """``run_pool`` on first use (PEP 562): a serial run never starts the process pool,
    so it need not import multiprocessing's machinery."""
    if name == "run_pool":
        from .pool import run_pool

        globals()[name] = run_pool
        return run_pool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IMAGE_SUFFIXES",
    "RUN_RECORD",
    "ArrowSink",
    "Item",
    "LocalSink",
    "Outcome",
    "Outputs",
    "SegmenterSpec",
    "Sink",
    "claim_output",
    "finish",
    "is_uri",
    "items_from_list",
    "make_sink",
    "output_name",
    "pipeline",
    "plan",
    "prepare",
    "read_uri",
    "run_pool",
    "run_record",
    "run_serial",
    "walk_images",
    "walk_uris",
]
