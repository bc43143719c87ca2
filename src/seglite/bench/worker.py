"""Measuring one configuration: a session that opens and times it, run in this process or
in its own worker process driven over a pipe."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SegliteError
from .configs import BenchConfig, check_backend_available
from .inputs import BenchInput
from .memory import peak_mb, reset_peak, rss_mb
from .settings import DEFAULT_MAX_SECS, RUNTIME_MODULES


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
            from ..segmenter import Segmenter

            seg = Segmenter(cfg.path, num_threads=cfg.threads, backend=cfg.backend)
            backend = seg.backend
            data = self.input.data
            self._call = lambda: seg.segment(data)
            self._closer = seg.close
        else:
            from ..runtime import open_backend

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
        device = getattr(backend, "device", "cpu")  # torch only: where the model runs
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
            "num_threads": int(backend.num_threads),
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
            from .. import errors

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
