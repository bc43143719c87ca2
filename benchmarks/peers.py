#!/usr/bin/env python
"""seglite beside its peers, in one run: same model, same 640x480 JPEG, same thread count.

Rows (each peer in its own subprocess, optionally from its own Python/venv):

- ai-edge-litert ``Interpreter.invoke()`` on an input tensor prepared once: the baseline;
- seglite ``Segmenter.segment()`` end to end: JPEG bytes -> full-size category mask;
- MediaPipe ``ImageSegmenter`` (category mask), from the JPEG file and from a decoded image;
- TFLite Task Library ``ImageSegmenter`` (tflite-support 0.4.4, which pins protobuf<4, so
  it usually lives in its own venv: ``--python-tasklib /path/to/venv/bin/python``);
- ONNX Runtime ``session.run`` on the ONNX twin of the model (made by ``seglite export``
  from the PyTorch import of the TFLite weights; scores agree with LiteRT to ~3e-5).

Every subprocess also times the bare invoke, interleaved with its own rows in short blocks,
so each ratio compares two things measured in the same process at the same moments; a
noisy neighbour slows both. MediaPipe and the Task Library refuse a float model without
normalization metadata, so they get ``lite-model_deeplabv3_1_metadata_2.tflite``: the same
graph and weights as ``deeplabv3_257_mv_gpu.tflite`` plus metadata (outputs bit-identical).

    python benchmarks/peers.py [--threads 2] [--runs 50] [--min-secs 2] [--markdown]
        [--python-tasklib /tmp/bench-venvs/tasklib/bin/python] [--json peers.json]

The worker half of this file (``--worker``) needs only numpy, Pillow and the peer's own
package, so it runs in a venv without seglite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLOCK_SECS = 0.2
STARTER = "deeplabv3"  # deeplabv3_257_mv_gpu.tflite
STARTER_WITH_METADATA = "deeplabv3-metadata"  # lite-model_deeplabv3_1_metadata_2.tflite

# ------------------------------------------------------------------------ worker (any Python)


def _versions(*dists: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            pass
    return out


def _bare_invoke(model: str, image: str, threads: int):
    """The baseline: LiteRT invoke() alone, on an input tensor set once."""
    import numpy as np
    from PIL import Image

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise SystemExit(
            "the baseline needs ai-edge-litert in this Python: pip install ai-edge-litert"
        ) from None
    interp = Interpreter(model_path=model, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    _, h, w, _ = inp["shape"]
    with Image.open(image) as img:
        px = np.asarray(img.convert("RGB").resize((int(w), int(h)), Image.Resampling.BILINEAR))
    interp.set_tensor(inp["index"], ((px.astype(np.float32) - 127.5) / 127.5)[None])
    out = interp.get_output_details()[0]["shape"]
    return interp.invoke, "x".join(str(int(d)) for d in out) + " scores"


def _peer_seglite(a) -> dict:
    """seglite end to end, from the encoded JPEG bytes and from decoded pixels."""
    import numpy as np
    from PIL import Image

    from seglite import Segmenter

    seg = Segmenter(a.model, num_threads=a.threads)
    data = Path(a.image).read_bytes()
    with Image.open(a.image) as img:
        rgb = np.asarray(img.convert("RGB"))
    h, w = seg.segment(data).category_mask.shape
    return {
        "seglite segment(), JPEG bytes": (lambda: seg.segment(data), f"{w}x{h} mask"),
        "seglite segment(), decoded RGB": (lambda: seg.segment(rgb), f"{w}x{h} mask"),
    }


def _peer_mediapipe(a) -> dict:
    """MediaPipe Tasks ImageSegmenter: category mask only (no confidence masks)."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    opts = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=a.model_with_metadata),
        running_mode=vision.RunningMode.IMAGE,
        output_category_mask=True,
        output_confidence_masks=False,
    )
    seg = vision.ImageSegmenter.create_from_options(opts)
    a._keep = seg  # closing it at interpreter exit raises in some versions: keep it alive
    decoded = mp.Image.create_from_file(a.image)
    h, w = seg.segment(decoded).category_mask.numpy_view().shape[:2]

    def from_file():
        return seg.segment(mp.Image.create_from_file(a.image)).category_mask.numpy_view()

    def from_decoded():
        return seg.segment(decoded).category_mask.numpy_view()

    return {
        "MediaPipe ImageSegmenter, JPEG file": (from_file, f"{w}x{h} mask"),
        "MediaPipe ImageSegmenter, decoded image": (from_decoded, f"{w}x{h} mask"),
    }


def _peer_tasklib(a) -> dict:
    """TFLite Task Library ImageSegmenter (tflite-support), category mask."""
    from tflite_support.task import core, vision

    opts = vision.ImageSegmenterOptions(
        base_options=core.BaseOptions(file_name=a.model_with_metadata, num_threads=a.threads)
    )
    seg = vision.ImageSegmenter.create_from_options(opts)
    decoded = vision.TensorImage.create_from_file(a.image)
    s = seg.segment(decoded).segmentations[0]
    out = f"{s.width}x{s.height} mask"

    def from_file():
        return (
            seg.segment(vision.TensorImage.create_from_file(a.image)).segmentations[0].category_mask
        )

    def from_decoded():
        return seg.segment(decoded).segmentations[0].category_mask

    rows = {
        "Task Library ImageSegmenter, JPEG file": (from_file, out),
        "Task Library ImageSegmenter, decoded image": (from_decoded, out),
    }
    if a.threads != 1:  # context: its thread pool suffers most on busy cores
        one = vision.ImageSegmenter.create_from_options(
            vision.ImageSegmenterOptions(
                base_options=core.BaseOptions(file_name=a.model_with_metadata, num_threads=1)
            )
        )
        rows["Task Library ImageSegmenter, decoded image, 1 thread"] = (
            lambda: one.segment(decoded).segmentations[0].category_mask,
            out,
        )
    return rows


def _peer_onnx(a) -> dict:
    """ONNX Runtime on the ONNX twin: session.run on a prepared input, and seglite over it."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as seglite's backend
    sess = ort.InferenceSession(a.onnx, sess_options=opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    nhwc = inp.shape[-1] == 3  # seglite export writes NHWC; other exporters NCHW
    h, w = inp.shape[1:3] if nhwc else inp.shape[2:4]
    with Image.open(a.image) as img:
        px = np.asarray(img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR))
    x = (px.astype(np.float32) - 127.5) / 127.5
    x = np.ascontiguousarray((x if nhwc else x.transpose(2, 0, 1))[None])
    shape = sess.run(None, {inp.name: x})[0].shape
    rows = {
        "ONNX Runtime session.run(), prepared input": (
            lambda: sess.run(None, {inp.name: x}),
            "x".join(map(str, shape)) + " scores",
        )
    }
    try:
        from seglite import Segmenter
    except ImportError:
        return rows
    seg = Segmenter(a.onnx, num_threads=a.threads, backend="onnx")
    data = Path(a.image).read_bytes()
    mh, mw = seg.segment(data).category_mask.shape
    rows["seglite segment() on onnx backend, JPEG bytes"] = (
        lambda: seg.segment(data),
        f"{mw}x{mh} mask",
    )
    return rows


PEERS = {
    "seglite": (_peer_seglite, ("seglite", "ai-edge-litert", "numpy", "Pillow")),
    "mediapipe": (_peer_mediapipe, ("mediapipe", "ai-edge-litert", "numpy")),
    "tasklib": (_peer_tasklib, ("tflite-support", "ai-edge-litert", "numpy", "protobuf")),
    "onnx": (_peer_onnx, ("onnxruntime", "ai-edge-litert", "seglite", "numpy")),
}


def worker(a) -> None:
    """Interleave the baseline and this peer's rows in short blocks; write raw samples."""
    import numpy as np

    fn, dists = PEERS[a.worker]
    base, base_out = _bare_invoke(a.model, a.image, a.threads)
    calls = {"ai-edge-litert Interpreter.invoke(), prepared input": (base, base_out)}
    calls.update(fn(a))
    names = list(calls)
    first, samples, warm = {}, {n: [] for n in names}, {}
    for n in names:  # first run, then warm-up (>= 1 run and >= 0.5 s), as benchmark_model
        f = calls[n][0]
        t0 = time.perf_counter()
        f()
        first[n] = (time.perf_counter() - t0) * 1e3
        ts, start = [], time.perf_counter()
        while not ts or time.perf_counter() - start < a.warmup_secs:
            t0 = time.perf_counter()
            f()
            ts.append((time.perf_counter() - t0) * 1e3)
        warm[n] = float(np.median(ts))
    block = {n: max(1, min(50, round(BLOCK_SECS * 1e3 / max(warm[n], 0.01)))) for n in names}
    rnd, start = 0, time.perf_counter()
    while any(len(samples[n]) < a.runs or sum(samples[n]) < a.min_secs * 1e3 for n in names):
        if time.perf_counter() - start > 600:
            break
        for k in range(len(names)):
            n = names[(rnd + k) % len(names)]
            f = calls[n][0]
            clock = time.perf_counter_ns
            for _ in range(block[n]):
                t0 = clock()
                f()
                samples[n].append((clock() - t0) / 1e6)
        rnd += 1
    result = {
        "peer": a.worker,
        "versions": _versions(*dists),
        "rows": [
            {"name": n, "output": calls[n][1], "first_ms": first[n], "samples_ms": samples[n]}
            for n in names
        ],
    }
    Path(a.out).write_text(json.dumps(result))
    os._exit(0)  # skip runtime destructors (MediaPipe's can raise at exit)


# ------------------------------------------------------------------------------ driver (seglite)


def onnx_twin(tflite: Path, out: Path) -> Path:
    """The ONNX twin of ``tflite``, made by ``seglite export`` (PyTorch import of the TFLite
    weights, torch.onnx, parity-checked against the PyTorch model) and cached at ``out``."""
    if out.is_file() and out.stat().st_mtime >= tflite.stat().st_mtime:
        return out
    from seglite.export.core import export_model

    out.parent.mkdir(parents=True, exist_ok=True)
    export_model(tflite, format="onnx", out=out)
    return out


def _run_worker(name: str, python: str, spec: dict, timeout: float) -> dict:
    """One peer in its own process; a failure becomes a 'skipped' note, not a crash."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "result.json"
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--out", str(out)]
        for k, v in spec.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GLOG_minloglevel="2")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"peer": name, "skipped": f"timed out after {timeout:.0f} s"}
        except OSError as exc:
            return {"peer": name, "skipped": f"cannot start {python}: {exc.strerror}"}
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit code {proc.returncode}"
            return {"peer": name, "skipped": why[:300]}
        return json.loads(out.read_text())


def _has_module(python: str, module: str) -> bool:
    code = f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=50, help="at least N timed runs per row")
    p.add_argument("--min-secs", type=float, default=2.0, help="at least S s of timed runs per row")
    p.add_argument("--warmup-secs", type=float, default=0.5)
    p.add_argument("--image", default=None, help="JPEG (default: 640x480 astronaut)")
    p.add_argument("--python-tasklib", default=None, help="Python with tflite-support 0.4.4")
    p.add_argument("--python-mediapipe", default=sys.executable, help="Python with mediapipe")
    p.add_argument("--onnx", default=None, help="ONNX twin (default: exported and cached)")
    p.add_argument("--only", default=None, help="comma list of: seglite,mediapipe,tasklib,onnx")
    p.add_argument("--json", default=None, help="write raw samples and versions here")
    p.add_argument("--markdown", action="store_true")
    # worker-side options
    p.add_argument("--worker", choices=list(PEERS), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--model-with-metadata", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a)
        return 0

    from seglite.bench import (
        Stats,
        cpu_name,
        default_jpeg,
        describe_environment,
        environment,
    )
    from seglite.cli import format_table
    from seglite.zoo import resolve

    if a.threads < 1 or a.runs < 1 or a.min_secs < 0:
        p.error("--threads and --runs must be positive, --min-secs non-negative")
    model = resolve(STARTER).path
    model_md = resolve(STARTER_WITH_METADATA).path
    work = Path(tempfile.mkdtemp(prefix="seglite-peers-"))
    if a.image:
        image = Path(a.image)
    else:
        image = work / "astronaut_640x480.jpg"
        image.write_bytes(default_jpeg())
    from PIL import Image

    with Image.open(image) as img:
        iw, ih = img.size

    only = set(a.only.split(",")) if a.only else set(PEERS)
    plan: list[tuple[str, str | None, str | None]] = []  # (peer, python, why skipped)
    plan.append(("seglite", sys.executable, None))
    mp_py = a.python_mediapipe
    plan.append(
        ("mediapipe", mp_py, None if _has_module(mp_py, "mediapipe") else "pip install mediapipe")
    )
    tl_py = a.python_tasklib or sys.executable
    plan.append(
        (
            "tasklib",
            tl_py,
            None
            if _has_module(tl_py, "tflite_support")
            else "tflite-support not importable in this Python; make a venv: python -m venv V && "
            "V/bin/pip install tflite-support==0.4.4 ai-edge-litert pillow (Debian: apt-get "
            "install libusb-1.0-0), then --python-tasklib V/bin/python",
        )
    )
    onnx_path, why = None, None
    if "onnx" in only:
        try:
            onnx_path = Path(a.onnx) if a.onnx else None
            if onnx_path is None:
                cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                onnx_path = onnx_twin(model, cache / "seglite" / "bench" / f"{model.stem}.onnx")
        except ImportError as exc:
            why = (
                f"cannot build the ONNX twin ({exc.name or exc} missing): it needs "
                "seglite.export with torch, onnx and onnxscript installed (or pass --onnx FILE)"
            )
        except Exception as exc:  # an exporter failure should not sink the other rows
            why = f"ONNX export of the twin failed: {str(exc).splitlines()[0][:200]}"
    plan.append(("onnx", sys.executable, why))

    spec = {
        "model": model,
        "model_with_metadata": model_md,
        "image": image,
        "threads": a.threads,
        "runs": a.runs,
        "min_secs": a.min_secs,
        "warmup_secs": a.warmup_secs,
    }
    results = []
    for name, python, skip in plan:
        if name not in only:
            continue
        if skip:
            results.append({"peer": name, "skipped": skip})
            print(f"peers: {name}: skipped ({skip})", file=sys.stderr)
            continue
        print(f"peers: {name} ({python}) ...", file=sys.stderr)
        s = dict(spec, onnx=onnx_path) if name == "onnx" else spec
        results.append(_run_worker(name, python, s, timeout=900))

    env = environment()
    rows, notes = [], []
    for res in results:
        if "skipped" in res:
            rows.append({"row": f"{res['peer']}: skipped", "output": res["skipped"][:100]})
            continue
        base = Stats.from_samples(res["rows"][0]["samples_ms"])
        for i, r in enumerate(res["rows"]):
            st = Stats.from_samples(r["samples_ms"])
            is_base = i == 0
            if is_base and res["peer"] != "seglite":
                continue  # shown once, from the seglite process; the others feed their ratios
            label = r["name"] + (" (baseline)" if is_base else "")
            rows.append(
                {
                    "row": label,
                    "output": r["output"],
                    "p50 ms": f"{st.p50:.1f}" + (" !" if st.noisy else ""),
                    "p90 ms": f"{st.p90:.1f}",
                    "x bare invoke": f"{st.p50 / base.p50:.2f}",
                    "invoke p50 there": f"{base.p50:.1f}",
                    "runs": str(st.count),
                }
            )
            if st.noisy or base.noisy:
                notes.append(
                    f"{label}: noisy (max/median {max(st.noise_ratio, base.noise_ratio):.1f})"
                )
    versions = {}
    for res in results:
        versions.update(res.get("versions", {}))
    head = (
        f"{model.name} ({STARTER_WITH_METADATA} file for MediaPipe and Task Library), "
        f"{iw}x{ih} JPEG, {a.threads} threads (MediaPipe: its default, not settable), "
        f"ratios = p50 / p50 of the bare invoke timed interleaved in the same process"
    )
    print(("_" + head + "_\n") if a.markdown else head)
    print(format_table(rows))
    print(f"\nMachine: {describe_environment(env)}")
    print("Peer versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    for n in notes:
        print(f"note: {n}")
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "environment": env,
                    "cpu": cpu_name(),
                    "settings": vars(a) | {"image": str(image)},
                    "results": results,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
