"""Measure a segmentation model's latency and memory the way TFLite's ``benchmark_model`` does.

For each configuration (model x backend x threads) it reports what benchmark_model
reports: model size, init time, first inference, warm-up average, then count / avg /
std / min / p50 / p90 / p99 / max over the timed runs, and the memory footprint
(resident-set delta at init and overall, and the peak).

Two things make the numbers trustworthy on a shared, noisy machine:

- **Isolation.** By default every configuration lives in its own worker process, as
  benchmark_model runs one model per process, so its memory figures are its own and
  one runtime's thread pool never competes with another's.
- **Interleaving.** The timed runs of all configurations alternate in short blocks
  (about ``BLOCK_SECS`` each) rather than one configuration after another, so a burst
  of load from a neighbour hits every configuration alike and ratios between rows stay
  fair. Only one worker runs at a time; the others wait on their pipe.

Stages: ``invoke`` times ``backend.run`` on an input already at the model's size (the
figure TFLite quotes); ``end2end`` times ``Segmenter.segment`` from the encoded image
bytes to the full-size category mask (what an application sees).
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MissingExtraError, OptionError, SegliteError

STAGES = ("invoke", "end2end")
DEFAULT_RUNS = 50  # benchmark_model's --num_runs
DEFAULT_WARMUP = 1  # benchmark_model's --warmup_runs
DEFAULT_WARMUP_SECS = 0.5  # benchmark_model's --warmup_min_secs
DEFAULT_MIN_SECS = 1.0  # benchmark_model's --min_secs
DEFAULT_MAX_SECS = 150.0  # benchmark_model's --max_secs (per configuration)
NOISY_RATIO = 3.0  # max / median above this: the run was disturbed
BLOCK_SECS = 0.2  # interleaving granularity: long enough to keep caches warm within a block
DEFAULT_IMAGE_SIZE = (640, 480)  # (width, height) of the default benchmark JPEG
RUNTIME_MODULES = {"litert": "ai_edge_litert.interpreter", "onnx": "onnxruntime", "torch": "torch"}
EXTRAS = {"litert": None, "onnx": "onnx", "torch": "torch"}


# ------------------------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Stats:
    """Summary of timed runs in milliseconds (std is the population std, as benchmark_model's)."""

    count: int
    avg: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> Stats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no samples")
        # Linear interpolation between order statistics (numpy's default, "type 7").
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(
            count=int(a.size),
            avg=float(a.mean()),
            std=float(a.std()),
            min=float(a.min()),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            max=float(a.max()),
        )

    @property
    def noise_ratio(self) -> float:
        """max / median: a few slow outliers are normal, a ratio over 3 means interference."""
        return self.max / self.p50 if self.p50 > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return self.noise_ratio > NOISY_RATIO

    def as_dict(self) -> dict[str, float | int]:
        return {k: (v if k == "count" else round(v, 4)) for k, v in asdict(self).items()}


# ---------------------------------------------------------------------------------------- memory


def _proc_status() -> dict[str, int]:
    """VmRSS / VmHWM in kB from /proc/self/status (Linux); empty elsewhere."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def rss_mb() -> float | None:
    """Current resident set size in MB (None where the OS does not say)."""
    kb = _proc_status().get("VmRSS")
    if kb is not None:
        return kb / 1024
    try:
        import psutil  # optional; not a dependency

        return psutil.Process().memory_info().rss / 2**20
    except Exception:
        return None


def peak_mb() -> float | None:
    """Peak resident set size of this process in MB: VmHWM, else ru_maxrss."""
    kb = _proc_status().get("VmHWM")
    if kb is not None:
        return kb / 1024
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later peak is this phase's own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------- environment


def cpu_name() -> str:
    """The CPU's marketing name, shortened ("AMD EPYC 7B13", "Apple M2"), or the arch."""
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not name and sys.platform == "darwin":
        import subprocess

        try:
            name = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            name = ""
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    for junk in ("(R)", "(TM)", "(tm)", " CPU", " Processor", " processor"):
        name = name.replace(junk, "")
    return " ".join(name.split(" @ ")[0].split())


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Machine and library versions, printed and stored with every result."""
    from . import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    libs = {"seglite": __version__}
    for dist in ("numpy", "Pillow", "ai-edge-litert", "onnxruntime", "torch"):
        libs[dist] = _version(dist)
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_avg": load,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "libraries": {k: v for k, v in libs.items() if v is not None},
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe_environment(env: dict[str, Any]) -> str:
    """One line: the machine, its load, and the library versions."""
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
    load = f", load {env['load_avg'][0]}" if env.get("load_avg") else ""
    return (
        f"{env['cpu']}, {env['usable_cores']}/{env['cores']} cores usable{load}; "
        f"{env['platform']}; Python {env['python']}; {libs}"
    )


# ----------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class BenchInput:
    """The one image every configuration sees: encoded bytes (for end2end) and a name.

    ``random`` means the invoke stage feeds seeded uniform noise at the model's size
    (as benchmark_model does); end2end then segments a noise JPEG of the default size.
    """

    name: str
    data: bytes
    random: bool = False

    def pixels(self, size: tuple[int, int]) -> np.ndarray:
        """uint8 (1, H, W, 3) at the model's (height, width): the same for every backend."""
        h, w = size
        if self.random:
            return np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        from .image import load_image, resize, to_array

        loaded = load_image(self.data)
        return np.array(to_array(resize(loaded.image, (w, h)))[None])  # own, writable copy


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def example_image() -> Path | None:
    """examples/astronaut.jpg of a source checkout (not shipped in the wheel)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg"
    return path if path.is_file() else None


def default_jpeg(size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> bytes:
    """The standard benchmark input: a 640x480 JPEG of the astronaut photo.

    Outside a source checkout, a smooth synthetic picture of the same size stands in.
    """
    from PIL import Image

    src = example_image()
    if src is not None:
        with Image.open(src) as img:
            return _jpeg(img.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    return _jpeg(Image.fromarray(arr))


def make_input(spec: str | os.PathLike | None = None) -> BenchInput:
    """``None``: the default 640x480 JPEG; ``"random"``: noise; else an image file."""
    from PIL import Image

    if spec is None:
        src = example_image()
        name = "astronaut.jpg 640x480" if src is not None else "synthetic 640x480 JPEG"
        return BenchInput(name, default_jpeg())
    if str(spec) == "random":
        w, h = DEFAULT_IMAGE_SIZE
        noise = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        return BenchInput("random", _jpeg(Image.fromarray(noise)), random=True)
    from .errors import ImageError
    from .image import load_image

    path = Path(spec)
    if not path.is_file():
        raise ImageError(f"--input {spec}: no such file (give an image file or 'random')")
    data = path.read_bytes()
    loaded = load_image(data)  # refuse a bad image here, once, rather than in every worker
    w, h = loaded.size
    return BenchInput(f"{path.name} {w}x{h}", data)


# ------------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class BenchConfig:
    """One row of the table: a model file on one backend with one thread count."""

    model: str  # the name shown (zoo name or file name)
    path: str  # the resolved model file
    backend: str  # litert | onnx | torch
    threads: int
    stage: str = "invoke"


def check_backend_available(backend: str) -> None:
    """Fail early, in one line, when a backend's runtime or module is not installed."""
    import importlib.util

    from .runtime import BACKENDS

    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(f"seglite.runtime.{backend}") is None:
        raise MissingExtraError(
            f"the {backend} backend is not part of this seglite build yet; "
            f"use --backend {' or '.join(b for b in BACKENDS if b != backend)}"
        )
    module = RUNTIME_MODULES[backend]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        extra = EXTRAS[backend]
        how = f"pip install 'seglite[{extra}]'" if extra else "pip install ai-edge-litert"
        raise MissingExtraError(f"the {backend} backend needs {module.split('.')[0]}: {how}")


def make_configs(
    models: Sequence[str],
    *,
    threads: Sequence[int] = (2,),
    backends: Sequence[str] = ("auto",),
    stage: str = "invoke",
) -> list[BenchConfig]:
    """Every model x backend x thread count, models resolved through the zoo.

    ``"auto"`` picks the runtime from the file suffix (.tflite, .onnx, .safetensors).
    """
    from .runtime import backend_for, check_threads
    from .zoo import resolve

    if stage not in STAGES:
        raise OptionError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
    if not models:
        raise OptionError("give at least one model (a zoo name or a model file)")
    if not threads:
        raise OptionError("give at least one thread count")
    counts = [check_threads(t) for t in threads]
    configs: list[BenchConfig] = []
    for model in models:
        resolved = resolve(model)
        name = resolved.entry.name if resolved.entry else resolved.path.name
        for b in backends:
            kind = backend_for(resolved.path, b)
            check_backend_available(kind)
            for t in counts:
                configs.append(BenchConfig(name, str(resolved.path), kind, t, stage))
    return configs


# ----------------------------------------------------------------------------------- measurement


def _ms_since(t0: int) -> float:
    return (time.perf_counter_ns() - t0) / 1e6


class _Session:
    """Opens one configuration and times it; runs inside the worker (or in-process)."""

    def __init__(self, config: BenchConfig, inp: BenchInput):
        self.config = config
        self.input = inp
        self._call: Callable[[], Any] | None = None
        self._closer: Callable[[], None] | None = None

    def open(self, warmup: int, warmup_secs: float) -> dict[str, Any]:
        import importlib

        cfg = self.config
        # The runtime library itself is part of "the start of the tool", not of init.
        try:
            importlib.import_module(RUNTIME_MODULES[cfg.backend])
        except ImportError:
            check_backend_available(cfg.backend)
            raise
        rss0 = rss_mb()
        reset_peak()
        t0 = time.perf_counter_ns()
        if cfg.stage == "end2end":
            from .segmenter import Segmenter

            seg = Segmenter(cfg.path, num_threads=cfg.threads, backend=cfg.backend)
            backend = seg.backend
            data = self.input.data
            self._call = lambda: seg.segment(data)
            self._closer = seg.close
        else:
            from .runtime import open_backend

            # The model as it is, as benchmark_model runs it: no graph rewrites.
            backend = open_backend(
                cfg.path, backend=cfg.backend, num_threads=cfg.threads, rewrite=False
            )
            self._closer = backend.close
        init_ms = _ms_since(t0)
        rss_init = rss_mb()
        if cfg.stage == "invoke":
            pixels = self.input.pixels(backend.input_size)
            self._call = lambda: backend.run(pixels)
        device = getattr(backend, "device", "cpu")
        t0 = time.perf_counter_ns()
        out = self._call()
        first_ms = _ms_since(t0)
        if cfg.stage == "end2end":
            w, h = out.size
            output = f"{w}x{h} mask"
        else:
            output = "x".join(str(d) for d in np.shape(out)) + f" {backend.output_kind}"
        warm: list[float] = []
        started = time.perf_counter()
        while len(warm) < warmup or (warm and time.perf_counter() - started < warmup_secs):
            warm.append(self.run(1)[0])
            if time.perf_counter() - started > DEFAULT_MAX_SECS:
                break
        h, w = backend.input_size
        return {
            "init_ms": init_ms,
            "first_ms": first_ms,
            "warmup_ms": warm,
            "rss_start_mb": rss0,
            "rss_init_mb": (rss_init - rss0) if rss0 is not None and rss_init else None,
            "input_size": [h, w],
            "output": output,
            "device": "cpu" if str(device).startswith("cpu") else str(device),
            "num_threads": int(getattr(backend, "num_threads", cfg.threads)),
        }

    def run(self, n: int) -> list[float]:
        """n timed calls, in milliseconds (the clock is read around each call only)."""
        call = self._call
        assert call is not None
        out = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            call()
            out.append((clock() - t0) / 1e6)
        return out

    def finish(self) -> dict[str, Any]:
        return {"rss_end_mb": rss_mb(), "peak_mb": peak_mb()}

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None
        self._call = None


def _worker(conn, config: BenchConfig, inp: BenchInput) -> None:
    """Worker process loop: answer open / run / finish requests over the pipe."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    session = _Session(config, inp)
    try:
        while True:
            cmd, args = conn.recv()
            if cmd == "open":
                conn.send(("ok", session.open(*args)))
            elif cmd == "run":
                conn.send(("ok", session.run(*args)))
            elif cmd == "finish":
                conn.send(("ok", session.finish()))
                break
    except SegliteError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except (EOFError, KeyboardInterrupt):
        pass
    except BaseException:
        conn.send(("crash", traceback.format_exc()))
    finally:
        session.close()
        conn.close()


class _LocalHandle:
    """A configuration measured in this process (memory figures are then process-wide)."""

    def __init__(self, config: BenchConfig, inp: BenchInput):
        self.session = _Session(config, inp)

    def open(self, warmup: int, warmup_secs: float) -> dict[str, Any]:
        return self.session.open(warmup, warmup_secs)

    def run(self, n: int) -> list[float]:
        return self.session.run(n)

    def finish(self) -> dict[str, Any]:
        return self.session.finish()

    def close(self) -> None:
        self.session.close()


class _ProcessHandle:
    """A configuration measured in its own process, driven over a pipe."""

    def __init__(self, config: BenchConfig, inp: BenchInput):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no inherited runtime threads or memory
        self.config = config
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, config, inp), daemon=True)
        self.proc.start()
        child.close()

    def _ask(self, cmd: str, *args: Any) -> Any:
        try:
            self.conn.send((cmd, args))
            reply = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self.proc.join(5)
            raise SegliteError(
                f"{self.config.model} ({self.config.backend}, {self.config.threads} threads): "
                f"the benchmark worker died (exit code {self.proc.exitcode})"
            ) from None
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            from . import errors

            cls = getattr(errors, reply[1], SegliteError)
            raise (
                cls if isinstance(cls, type) and issubclass(cls, SegliteError) else SegliteError
            )(reply[2])
        raise RuntimeError(f"benchmark worker failed:\n{reply[1]}")

    def open(self, warmup: int, warmup_secs: float) -> dict[str, Any]:
        return self._ask("open", warmup, warmup_secs)

    def run(self, n: int) -> list[float]:
        return self._ask("run", n)

    def finish(self) -> dict[str, Any]:
        return self._ask("finish")

    def close(self) -> None:
        self.conn.close()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


@dataclass
class BenchResult:
    """One configuration's measurements; times in ms, memory in MB."""

    model: str
    path: str
    size_bytes: int
    backend: str
    stage: str
    threads: int
    device: str
    input_size: list[int]  # model input (height, width)
    output: str
    init_ms: float
    first_ms: float
    warmup_ms: list[float]
    stats: Stats
    samples_ms: list[float]
    rss_init_mb: float | None  # resident-set growth while opening the model
    rss_overall_mb: float | None  # growth from before init to the end of the timed runs
    peak_mb: float | None  # peak resident set of the measuring process
    isolated: bool = True

    @property
    def warmup_avg_ms(self) -> float | None:
        return float(np.mean(self.warmup_ms)) if self.warmup_ms else None

    @property
    def noisy(self) -> bool:
        return self.stats.noisy

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = self.stats.as_dict()
        d["warmup_avg_ms"] = self.warmup_avg_ms
        d["noise_ratio"] = round(self.stats.noise_ratio, 3)
        d["noisy"] = self.noisy
        for k in ("init_ms", "first_ms", "rss_init_mb", "rss_overall_mb", "peak_mb"):
            if d[k] is not None:
                d[k] = round(d[k], 4)
        d["warmup_ms"] = [round(x, 4) for x in self.warmup_ms]
        d["samples_ms"] = [round(x, 4) for x in self.samples_ms]
        return d


@dataclass
class BenchReport:
    """All rows of one invocation, with the machine and settings they were measured under."""

    results: list[BenchResult]
    environment: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> list[float]:
        """Each row's median over the first row's median (measured in the same run)."""
        base = self.results[0].stats.p50 if self.results else 0.0
        return [r.stats.p50 / base if base else math.nan for r in self.results]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seglite_bench": 1,
            "environment": self.environment,
            "settings": self.settings,
            "results": [
                {**r.as_dict(), "ratio_to_first": round(x, 4)}
                for r, x in zip(self.results, self.ratios())
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def table_rows(self) -> list[dict[str, str]]:
        """The printed table: one row per configuration, in TFLite-guide units."""
        cpu = self.environment.get("cpu", "cpu")
        rows = []
        for r, ratio in zip(self.results, self.ratios()):
            s = r.stats
            rows.append(
                {
                    "model": r.model,
                    "size": f"{r.size_bytes / 1e6:.1f} MB",
                    "backend": r.backend,
                    "device": cpu if r.device == "cpu" else r.device,
                    "threads": str(r.threads),
                    "init ms": _ms(r.init_ms),
                    "first ms": _ms(r.first_ms),
                    "min ms": _ms(s.min),
                    "avg ms": _ms(s.avg),
                    "p50 ms": _ms(s.p50) + (" !" if r.noisy else ""),
                    "p90 ms": _ms(s.p90),
                    "p99 ms": _ms(s.p99),
                    "std ms": _ms(s.std),
                    "RSS MB": _mb(r.rss_overall_mb, r.peak_mb),
                    "x row 1": f"{ratio:.2f}",
                }
            )
        return rows

    def notes(self) -> list[str]:
        """Warnings to print under the table (noisy rows)."""
        out = []
        for i, r in enumerate(self.results, 1):
            if r.noisy:
                out.append(
                    f"row {i} ({r.model}, {r.backend}, {r.threads} threads) is noisy: max "
                    f"{r.stats.max:.1f} ms is {r.stats.noise_ratio:.1f}x the median; rerun on a "
                    "quieter machine or with more --runs"
                )
        return out

    def details(self) -> list[str]:
        """benchmark_model's per-model summary lines: everything the table leaves out."""
        out = []
        for i, r in enumerate(self.results, 1):
            s = r.stats
            warm = (
                f"warmup avg={r.warmup_avg_ms:.2f} (n={len(r.warmup_ms)})"
                if r.warmup_ms
                else "no warm-up"
            )
            mem = (
                f"memory delta init={_mb1(r.rss_init_mb)} overall={_mb1(r.rss_overall_mb)} "
                f"peak={_mb1(r.peak_mb)}"
            )
            out.append(
                f"row {i}: {r.model} {r.backend} threads={r.threads}: init={r.init_ms:.2f} "
                f"first={r.first_ms:.2f} {warm} count={s.count} avg={s.avg:.2f} std={s.std:.2f} "
                f"min={s.min:.2f} p50={s.p50:.2f} p90={s.p90:.2f} p99={s.p99:.2f} max={s.max:.2f} "
                f"(ms); {mem}; input {r.input_size[1]}x{r.input_size[0]} -> {r.output}"
            )
        return out

    def headline(self) -> str:
        st = self.settings
        what = (
            "backend.run on a prepared input at the model's size"
            if st.get("stage") == "invoke"
            else "Segmenter.segment from encoded bytes to the full-size mask"
        )
        return (
            f"seglite bench, stage {st.get('stage')} ({what}); input {st.get('input')}; "
            f"{st.get('mode')}"
        )

    def to_text(self, *, markdown: bool = False) -> str:
        from .cli import format_table

        env = describe_environment(self.environment)
        legend = (
            "size: model file; init: open the model; first: first inference; min/avg/p50/p90/p99/std "
            "over the timed runs after warm-up; RSS MB: resident growth from before init to the "
            "end (peak of the process); x row 1: p50 over row 1's p50, measured in the same run; "
            "! marks a noisy row (max/median > 3)"
        )
        table = format_table(self.table_rows())
        notes = self.notes()
        if markdown:
            parts = [f"_{self.headline()}_", "", table, "", f"Machine: {env}", "", legend, ""]
            parts += [f"- {d}" for d in self.details()]
            parts += [f"\n**Warning:** {n}" for n in notes]
            return "\n".join(parts)
        return "\n".join(
            [self.headline(), table, f"machine: {env}", legend, *self.details(), *notes]
        )


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _mb(overall: float | None, peak: float | None) -> str:
    if overall is None and peak is None:
        return "-"
    a = "-" if overall is None else f"{overall:+.1f}"
    b = "-" if peak is None else f"{peak:.0f}"
    return f"{a} ({b})"


def _mb1(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} MB"


def _block_size(est_ms: float) -> int:
    """Runs per interleaving turn: about BLOCK_SECS of work, 1 to 50 runs."""
    if est_ms <= 0 or not math.isfinite(est_ms):
        return 1
    return max(1, min(50, round(BLOCK_SECS * 1e3 / est_ms)))


def run_bench(
    configs: Sequence[BenchConfig],
    *,
    input: BenchInput | None = None,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    warmup_secs: float = DEFAULT_WARMUP_SECS,
    min_secs: float = DEFAULT_MIN_SECS,
    max_secs: float = DEFAULT_MAX_SECS,
    isolate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every configuration: init, first run and warm-up one after another, then the
    timed runs of all configurations interleaved until each has at least ``runs`` runs and
    ``min_secs`` of timed work (or ``max_secs`` passed).

    ``isolate=True`` starts one worker per configuration with multiprocessing's "spawn", so
    a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise OptionError(f"runs must be a positive integer, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise OptionError(f"warmup must be a non-negative integer, got {warmup!r}")
    for name, v in (("min_secs", min_secs), ("warmup_secs", warmup_secs), ("max_secs", max_secs)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise OptionError(f"{name} must be a non-negative number of seconds, got {v!r}")
    if not configs:
        raise OptionError("nothing to measure: no configurations")
    inp = input if input is not None else make_input(None)
    say = progress or (lambda msg: None)
    env = environment()
    handles: list[_LocalHandle | _ProcessHandle] = []
    opened: list[dict[str, Any]] = []
    samples: list[list[float]] = [[] for _ in configs]
    ends: list[dict[str, Any]] = []
    try:
        for cfg in configs:
            say(f"opening {cfg.model} on {cfg.backend} with {cfg.threads} threads")
            handle = _ProcessHandle(cfg, inp) if isolate else _LocalHandle(cfg, inp)
            handles.append(handle)
            opened.append(handle.open(warmup, warmup_secs))
        est = [
            float(np.median(o["warmup_ms"])) if o["warmup_ms"] else o["first_ms"] for o in opened
        ]
        blocks = [_block_size(e) for e in est]
        need_ms = min_secs * 1e3
        started = time.perf_counter()
        say(f"timing {len(configs)} configuration(s), interleaved")

        def done(i: int) -> bool:
            return len(samples[i]) >= runs and sum(samples[i]) >= need_ms

        rnd = 0
        while not all(done(i) for i in range(len(configs))):
            if time.perf_counter() - started > max_secs * len(configs):
                break
            n = len(configs)
            for k in range(n):
                i = (rnd + k) % n  # rotate who goes first, so no one always follows the same
                todo = blocks[i]
                if need_ms == 0 and len(samples[i]) < runs:
                    todo = min(todo, runs - len(samples[i]))  # no time floor: stop at --runs
                samples[i].extend(handles[i].run(todo))
            rnd += 1
        for h in handles:
            ends.append(h.finish())
    finally:
        for h in handles:
            h.close()

    results = []
    for cfg, o, s, e in zip(configs, opened, samples, ends):
        rss0 = o["rss_start_mb"]
        results.append(
            BenchResult(
                model=cfg.model,
                path=cfg.path,
                size_bytes=Path(cfg.path).stat().st_size,
                backend=cfg.backend,
                stage=cfg.stage,
                threads=o["num_threads"],
                device=o["device"],
                input_size=o["input_size"],
                output=o["output"],
                init_ms=o["init_ms"],
                first_ms=o["first_ms"],
                warmup_ms=o["warmup_ms"],
                stats=Stats.from_samples(s),
                samples_ms=s,
                rss_init_mb=o["rss_init_mb"],
                rss_overall_mb=(e["rss_end_mb"] - rss0)
                if rss0 is not None and e["rss_end_mb"] is not None
                else None,
                peak_mb=e["peak_mb"],
                isolated=isolate,
            )
        )
    settings = {
        "stage": configs[0].stage,
        "input": inp.name,
        "runs": runs,
        "warmup": warmup,
        "warmup_secs": warmup_secs,
        "min_secs": min_secs,
        "mode": "each configuration in its own process, timed runs interleaved"
        if isolate
        else "all configurations in one process, timed runs interleaved",
    }
    return BenchReport(results, env, settings)


# ------------------------------------------------------------------------------------------ plot


def plot(report: BenchReport, path: str | os.PathLike) -> Path:
    """PNG of median latency against thread count, one line per model/backend (bars: min..p90)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("plotting needs matplotlib: pip install 'seglite[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OptionError(f"--plot writes a PNG: give a file name ending in .png, got {path.name}")
    series: dict[tuple[str, str], list[BenchResult]] = {}
    for r in report.results:
        series.setdefault((r.model, r.backend), []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    all_threads = [r.threads for r in report.results]
    dodge = 0.03 * max(1, max(all_threads) - min(all_threads))  # keep error bars apart
    for j, ((model, backend), rs) in enumerate(series.items()):
        rs = sorted(rs, key=lambda r: r.threads)
        x = [r.threads + (j - (len(series) - 1) / 2) * dodge for r in rs]
        y = [r.stats.p50 for r in rs]
        lo = [r.stats.p50 - r.stats.min for r in rs]
        hi = [r.stats.p90 - r.stats.p50 for r in rs]
        line = ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=4, label=f"{model} ({backend})")
        for xi, yi in zip(x, y):
            ax.annotate(
                f"{yi:.1f}",
                (xi, yi),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color=line[0].get_color(),
            )
    threads = sorted({r.threads for r in report.results})
    ax.set_xticks(threads)
    ax.margins(x=0.12)
    ax.set_xlabel("threads")
    ax.set_ylabel("latency, ms (median; bars: min to p90)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    stage = report.settings.get("stage", "invoke")
    ax.set_title(f"seglite bench ({stage}) on {report.environment.get('cpu', 'CPU')}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def write_json(report: BenchReport, path: str | os.PathLike) -> Path:
    """The full report (settings, environment, every sample) written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(report.to_json() + "\n")
    os.replace(tmp, path)
    return path
