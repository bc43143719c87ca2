"""The batch job on Ray Data: an actor pool of Segmenters, from one laptop to a cluster.

``seglite segment SRC... --out OUT --ray [ADDRESS]`` lists the images on the driver,
skips those already done, and sends the rest through
``ray.data.from_items(...).map_batches(SegmentActor, compute=ActorPoolStrategy(size=N))``.
Each actor builds one Segmenter and runs the same per-image work as the local pool
(:func:`seglite.batch.pipeline`): decode beside inference, masks (and overlays/JSON if
asked) written straight to OUT. The driver streams the per-image rows back and writes
``OUT/summary.jsonl`` (one JSON object per image: status, error, size, classes, timings).

Models: nodes find zoo models themselves (the starter model is in the package, others
come from the model folder, the cache or a checked download); a model file of the user's
travels from the driver with the actors' arguments.

Actors ask Ray for a fraction of a CPU (``(CPUs - 1) / N``): an actor pool that holds
every CPU starves any other task of the job (reads, writes) and the run never ends.

Multi-node cluster (every node: same Python, ``pip install 'seglite[ray]'``)::

    # head node (binds to all interfaces: keep the ports inside a private network)
    ray start --head --port=6379 --ray-client-server-port=10001
    # each worker node
    ray start --address=HEAD_IP:6379
    # on the head node: connect to the running cluster
    seglite segment s3://bucket/photos --out s3://bucket/seg --ray auto --jobs 64
    # or from another machine, through Ray Client
    seglite segment s3://bucket/photos --out s3://bucket/seg --ray ray://HEAD_IP:10001

Inputs and OUT must be reachable from every node under the same name: object-store URIs
(s3://, gs://, abfs://, hdfs:// through pyarrow) or a shared mount (NFS). ``--ray`` with
no address starts a private Ray on this machine, bound to 127.0.0.1. Ray is the ``ray``
extra and is imported only here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .batch import (
    Item,
    LocalSink,
    Outcome,
    Outputs,
    SegmenterSpec,
    Sink,
    make_sink,
    pipeline,
)
from .errors import SegliteError, require

SUMMARY = "summary.jsonl"


def _ray():
    require("ray.data", "ray")
    import ray

    return ray


def connect(
    address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None
) -> bool:
    """Start a private local Ray, or join the cluster at ``address``; True if this call did.

    ``address``: None/"local" (start one here, loopback only), "auto" (the cluster that
    ``ray start`` runs on this machine), "HOST:6379", or "ray://HOST:10001" (Ray Client).
    """
    local = address in (None, "", "local")
    fresh = "ray" not in sys.modules  # Ray reads its auth settings once, at import
    if local and fresh and not any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")):
        # Token auth for the private instance with a token that lives only in this process
        # tree; left alone, Ray would write one to ~/.ray/auth_token.
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if local:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=temp_dir,
                **quiet,
            )
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegliteError(
            f"cannot reach a Ray cluster at {address} ({first}); "
            "start one with `ray start --head` or use --ray without an address"
        ) from None
    return True


class SegmentActor:
    """One Segmenter per Ray actor; a batch is a few (src, name) rows, outcomes come back."""

    def __init__(self, spec: SegmenterSpec, outputs: Outputs, out: str):
        self.seg = spec.build()
        self.outputs = outputs
        self.sink = make_sink(out)

    def __call__(self, batch: dict) -> dict:
        items = [Item(str(s), str(n)) for s, n in zip(batch["src"], batch["name"])]
        outcomes = list(pipeline(self.seg, items, self.outputs, self.sink))
        return {
            "src": [o.src for o in outcomes],
            "name": [o.name for o in outcomes],
            "status": [o.status for o in outcomes],
            "error": [o.error for o in outcomes],
            "ms": [o.ms for o in outcomes],
            "summary": [json.dumps(o.summary) if o.summary else "" for o in outcomes],
        }


def actor_cpus(cluster_cpus: float, actors: int) -> float:
    """CPUs each actor reserves: leave one CPU to Ray's other tasks, at most one each."""
    if cluster_cpus <= 1:
        return round(max(0.1, cluster_cpus / (2 * actors)), 3)
    return round(max(0.1, min(1.0, (cluster_cpus - 1) / actors)), 3)


def run_ray(
    spec: SegmenterSpec,
    items: Sequence[Item],
    outputs: Outputs,
    out: str | os.PathLike,
    on_outcome: Callable[[Outcome], None],
    *,
    jobs: int | None = None,
    known: Iterable[Outcome] = (),
    batch_size: int | None = None,
) -> dict[str, int]:
    """Segment ``items`` on the connected Ray cluster with ``jobs`` actors.

    ``known`` (skipped or refused before the run) go to the summary too, so
    ``OUT/summary.jsonl`` always covers every input. Returns counts per status.
    """
    ray = _ray()
    if not ray.is_initialized():
        connect(None)
    with warnings.catch_warnings():  # Ray's own defaults trip its deprecation warnings
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # "Progress bars disabled": we show our own.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)

    cpus = float(ray.cluster_resources().get("CPU", 1))
    actors = jobs or max(1, int(cpus))
    sink = make_sink(out)
    counts = {"done": 0, "failed": 0, "skipped": 0}
    with _Summary(sink, outputs) as summary:
        for outcome in known:
            summary.add(outcome)
            counts[outcome.status] += 1
            on_outcome(outcome)
        if items:
            n = len(items)
            size = batch_size or max(1, min(32, n // (actors * 8)))
            ds = ray.data.from_items(
                [{"src": i.src, "name": i.name} for i in items],
                override_num_blocks=max(1, math.ceil(n / size)),
            )
            with warnings.catch_warnings():  # Ray 2.60 wants these as "named" args in 2.64
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                ds = ds.map_batches(
                    SegmentActor,
                    fn_constructor_kwargs={"spec": spec, "outputs": outputs, "out": str(out)},
                    compute=ray.data.ActorPoolStrategy(size=min(actors, n)),
                    num_cpus=actor_cpus(cpus, actors),
                    batch_size=size,
                    batch_format="numpy",
                    **_restarts(ray),
                )
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")
                    for row in ds.iter_rows():
                        raw = row["summary"]
                        outcome = Outcome(
                            str(row["src"]),
                            str(row["name"]),
                            str(row["status"]),
                            str(row["error"]),
                            float(row["ms"]),
                            json.loads(raw) if raw else None,
                        )
                        summary.add(outcome)
                        counts[outcome.status] += 1
                        on_outcome(outcome)
            except ray.exceptions.RayError as exc:
                raise SegliteError(f"the Ray job failed: {_cause(exc)}") from None
    return counts


def _restarts(ray) -> dict:
    """Actor fault tolerance: replace actors lost with a node, never loop on a crash.

    Ray Data's default retries a batch forever; an image that crashes native code would
    then kill actor after actor. On one machine a dead actor can only be such a crash.
    """
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1:
        return {"max_restarts": 0}
    return {"max_restarts": -1, "max_task_retries": 3}


def _cause(exc: BaseException) -> str:
    """The user's error inside a Ray wrapper, in one line."""
    inner = getattr(exc, "cause", None) or exc
    text = str(inner).strip().splitlines()
    return text[-1] if text else type(inner).__name__


class _Summary:
    """OUT/summary.jsonl: one row per image, replaced whole when the run ends.

    Rows of images skipped now are carried over from the previous summary, so the file
    describes every image even after resumed runs.
    """

    def __init__(self, sink: Sink, outputs: Outputs):
        self.sink, self.outputs = sink, outputs
        self.previous = self._load()
        self.lines: list[str] = []
        self.tmp: Path | None = None
        self.fh = None
        if isinstance(sink, LocalSink):
            sink.root.mkdir(parents=True, exist_ok=True)
            self.tmp = sink.root / f".{SUMMARY}.{os.getpid()}.part"
            self.fh = open(self.tmp, "w", encoding="utf-8")

    def _load(self) -> dict[str, dict]:
        try:
            if isinstance(self.sink, LocalSink):
                text = (self.sink.root / SUMMARY).read_text(encoding="utf-8")
            else:
                from .batch import read_uri

                text = read_uri(self.sink.describe(SUMMARY)).decode("utf-8")
        except Exception:
            return {}
        rows = {}
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("status") == "done":
                rows[row.get("name")] = row
        return rows

    def add(self, o: Outcome) -> None:
        if o.status == "skipped" and o.name in self.previous:
            row = dict(self.previous[o.name], resumed=True)
        else:
            row = {"name": o.name, "source": o.src, "status": o.status}
            if o.error:
                row["error"] = o.error
            if o.summary:
                row.update({k: v for k, v in o.summary.items() if k != "source"})
            if o.status == "done":
                row["ms"] = round(o.ms, 2)
        if o.status != "failed":
            row["files"] = self.outputs.files(o.name)
        line = json.dumps(row) + "\n"
        if self.fh is not None:
            self.fh.write(line)
        else:
            self.lines.append(line)

    def __enter__(self) -> _Summary:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.fh is not None:
            self.fh.close()
            if exc_type is None:
                os.replace(self.tmp, self.sink.root / SUMMARY)
            else:
                self.tmp.unlink(missing_ok=True)
        elif exc_type is None:
            self.sink.write(SUMMARY, "".join(self.lines))
