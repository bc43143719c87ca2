"""seglite bench: the statistics against known samples, the report shapes, real short runs of the
starter model (in worker processes and in-process), and bad options in one line.

No test asserts a latency: the machine is shared, so only shapes and invariants are checked.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seglite import bench
from seglite.bench import BenchConfig, Stats, make_configs, make_input, run_bench
from seglite.errors import ImageError, MissingExtraError, ModelNotFoundError, OptionError

FAST = dict(runs=5, warmup=1, warmup_secs=0.0, min_secs=0.0)

# ------------------------------------------------------------------------------------- stats


def test_stats_of_one_to_ten():
    s = Stats.from_samples([float(x) for x in range(10, 0, -1)])  # order must not matter
    assert s.count == 10
    assert s.avg == pytest.approx(5.5)
    assert s.std == pytest.approx(math.sqrt(8.25))  # population std, as benchmark_model
    assert (s.min, s.max) == (1.0, 10.0)
    # linear interpolation between order statistics
    assert s.p50 == pytest.approx(5.5)
    assert s.p90 == pytest.approx(9.1)
    assert s.p99 == pytest.approx(9.91)


def test_stats_of_one_sample_and_of_none():
    s = Stats.from_samples([12.5])
    assert (s.count, s.avg, s.std, s.min, s.p50, s.p99, s.max) == (
        1,
        12.5,
        0,
        12.5,
        12.5,
        12.5,
        12.5,
    )
    with pytest.raises(ValueError):
        Stats.from_samples([])


def test_noisy_flag_is_max_over_median_above_three():
    calm = Stats.from_samples([10.0] * 9 + [29.0])
    noisy = Stats.from_samples([10.0] * 9 + [31.0])
    assert calm.noise_ratio == pytest.approx(2.9) and not calm.noisy
    assert noisy.noise_ratio == pytest.approx(3.1) and noisy.noisy


def test_stats_as_dict_keys():
    d = Stats.from_samples([1.0, 2.0, 3.0]).as_dict()
    assert list(d) == ["count", "avg", "std", "min", "p50", "p90", "p99", "max"]
    assert d["count"] == 3 and isinstance(d["count"], int)


# ------------------------------------------------------------------------------------ memory


def test_memory_probes_see_an_allocation():
    rss = bench.rss_mb()
    assert rss is not None and rss > 1
    assert bench.peak_mb() >= rss * 0.99
    if not bench.reset_peak():
        pytest.skip("this kernel cannot reset the peak RSS")
    before = bench.peak_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    assert bench.peak_mb() - before > 40
    del block


def test_environment_names_machine_and_libraries():
    env = bench.environment()
    assert env["cpu"] and env["cores"] >= 1 and env["python"]
    assert {"seglite", "numpy", "ai-edge-litert"} <= set(env["libraries"])
    line = bench.describe_environment(env)
    assert "ai-edge-litert" in line and "\n" not in line


# ------------------------------------------------------------------------------------- input


def test_inputs_are_the_same_for_every_backend():
    default = make_input(None)
    assert default.data[:2] == b"\xff\xd8" and "640x480" in default.name
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(default.data)).size == (640, 480)
    a, b = default.pixels((257, 257)), default.pixels((257, 257))
    assert a.shape == (1, 257, 257, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    rnd = make_input("random")
    assert rnd.random and rnd.pixels((9, 7)).shape == (1, 9, 7, 3)
    np.testing.assert_array_equal(rnd.pixels((9, 7)), make_input("random").pixels((9, 7)))


def test_bad_input_files(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        make_input(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError):
        make_input(bad)


# --------------------------------------------------------------------------------- configs


def test_configs_are_models_x_backends_x_threads():
    configs = make_configs(["deeplabv3"], threads=[1, 2])
    assert [(c.model, c.backend, c.threads, c.stage) for c in configs] == [
        ("deeplabv3", "litert", 1, "invoke"),
        ("deeplabv3", "litert", 2, "invoke"),
    ]
    assert configs[0].path.endswith(".tflite")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"threads": [0]}, OptionError, "num_threads"),
        ({"backends": ["tpu"]}, OptionError, "unknown backend"),
        ({"stage": "train"}, OptionError, "unknown stage"),
    ],
)
def test_bad_configs(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_configs(["deeplabv3"], **kwargs)


def test_missing_model():
    with pytest.raises(ModelNotFoundError):
        make_configs(["no_such_model.tflite"])


def test_a_backend_module_or_runtime_missing_is_one_clear_line(monkeypatch):
    """--backend torch before seglite.runtime.torch exists, or onnx without onnxruntime."""
    import importlib.util

    real = importlib.util.find_spec
    gone = {"seglite.runtime.torch", "onnxruntime"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in gone else real(name, *a)
    )
    with pytest.raises(MissingExtraError, match="torch backend is not part of this seglite build"):
        make_configs(["deeplabv3"], backends=["torch"])
    with pytest.raises(MissingExtraError, match=r"seglite\[onnx\]"):
        bench.check_backend_available("onnx")


def test_bad_run_options():
    cfg = make_configs(["deeplabv3"], threads=[1])
    for kwargs in ({"runs": 0}, {"warmup": -1}, {"min_secs": -1.0}, {"min_secs": float("nan")}):
        with pytest.raises(OptionError):
            run_bench(cfg, **{**FAST, **kwargs})
    with pytest.raises(OptionError):
        run_bench([], **FAST)


# ------------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def starter_report():
    """A real, short, isolated run of the starter model at 1 and 2 threads."""
    return run_bench(make_configs(["deeplabv3"], threads=[1, 2]), **FAST)


def test_starter_rows(starter_report):
    rows = starter_report.results
    assert [r.threads for r in rows] == [1, 2]
    for r in rows:
        assert r.model == "deeplabv3" and r.backend == "litert" and r.isolated
        assert r.size_bytes == 2779264
        assert r.input_size == [257, 257] and r.output == "1x257x257x21 logits"
        assert r.stats.count >= 5 and len(r.samples_ms) == r.stats.count
        assert r.stats.min <= r.stats.p50 <= r.stats.p90 <= r.stats.p99 <= r.stats.max
        assert r.init_ms > 0 and r.first_ms > 0 and len(r.warmup_ms) >= 1
        # Opening a 2.7 MB float model grows the resident set by a few MB at least.
        assert r.rss_init_mb is not None and r.rss_init_mb > 1
        assert r.rss_overall_mb >= r.rss_init_mb * 0.5
        assert r.peak_mb > r.rss_overall_mb
    assert starter_report.ratios()[0] == 1.0


def test_json_shape(starter_report, tmp_path):
    path = bench.write_json(starter_report, tmp_path / "out" / "bench.json")
    d = json.loads(path.read_text())
    assert d["seglite_bench"] == 1
    assert {"cpu", "cores", "libraries", "platform", "python", "load_avg"} <= set(d["environment"])
    assert d["settings"]["stage"] == "invoke" and d["settings"]["runs"] == 5
    row = d["results"][0]
    for key in (
        "model", "size_bytes", "backend", "device", "threads", "init_ms", "first_ms",
        "warmup_avg_ms", "stats", "samples_ms", "rss_init_mb", "rss_overall_mb", "peak_mb",
        "noisy", "noise_ratio", "ratio_to_first",
    ):  # fmt: skip
        assert key in row, key
    assert set(row["stats"]) == {"count", "avg", "std", "min", "p50", "p90", "p99", "max"}
    assert row["ratio_to_first"] == 1.0


def test_text_and_markdown(starter_report):
    md = starter_report.to_text(markdown=True)
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| model"))
    for col in ("size", "backend", "device", "threads", "init ms", "first ms", "min ms", "avg ms",
                "p50 ms", "p90 ms", "p99 ms", "std ms", "RSS MB"):  # fmt: skip
        assert col in header
    assert sum(ln.startswith("| deeplabv3") for ln in lines) == 2
    assert any(ln.startswith("Machine: ") and "ai-edge-litert" in ln for ln in lines)
    assert "stage invoke" in starter_report.to_text()


def test_plot(starter_report, tmp_path):
    pytest.importorskip("matplotlib")
    path = bench.plot(starter_report, tmp_path / "lat.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OptionError, match="PNG"):
        bench.plot(starter_report, tmp_path / "lat.jpg")


def test_end2end_in_process():
    report = run_bench(
        make_configs(["deeplabv3"], threads=[2], stage="end2end"), isolate=False, **FAST
    )
    (r,) = report.results
    assert r.stage == "end2end" and r.output == "640x480 mask" and not r.isolated
    assert r.stats.count >= 5


def test_interleaving_gives_every_config_its_runs():
    cfg = make_configs(["deeplabv3"], threads=[1, 2])
    report = run_bench(cfg, isolate=False, runs=3, warmup=0, warmup_secs=0, min_secs=0.3)
    for r in report.results:
        assert r.stats.count >= 3 and sum(r.samples_ms) >= 300
        assert r.warmup_ms == []


def test_onnx_backend_in_bench(tmp_path):
    pytest.importorskip("onnxruntime")
    from test_onnx_backend import build

    path = build(tmp_path / "tiny.onnx")
    configs = make_configs([str(path)], threads=[1])
    assert configs[0].backend == "onnx" and configs[0].model == "tiny.onnx"
    report = run_bench(configs, isolate=False, input=make_input("random"), **FAST)
    assert report.results[0].output == "1x4x4x3 logits"


def test_worker_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    cfg = [BenchConfig("bad.tflite", str(bad), "litert", 1)]
    from seglite.errors import ModelError

    with pytest.raises(ModelError, match="not a TFLite model") as info:
        run_bench(cfg, **FAST)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------- CLI


def test_cli_table_json_and_plot(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    proc = subprocess.run(
        [sys.executable, "-m", "seglite", "bench", "deeplabv3", "--threads", "1,2", "--runs", "5",
         "--min-secs", "0", "--warmup-secs", "0", "--json", str(out_json), "--plot", str(out_png),
         "--markdown"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| deeplabv3")]
    assert len(rows) == 2
    d = json.loads(out_json.read_text())
    assert [r["threads"] for r in d["results"]] == [1, 2]
    assert out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["deeplabv3", "--backend", "tpu"], "unknown backend 'tpu'"),
        (["deeplabv3", "--threads", "0"], "--threads takes positive integers"),
        (["deeplabv3", "--threads", "2,x"], "--threads takes positive integers"),
        (["no_such_model.tflite"], "does not exist"),
        (["no_such_zoo_name"], "no_such_zoo_name"),
        (["deeplabv3", "--runs", "0"], "--runs takes a positive integer"),
        (["deeplabv3", "--min-secs", "-1"], "--min-secs"),
        (["deeplabv3", "--stage", "train"], "--stage"),
        (["deeplabv3", "--plot", "out.jpg"], "PNG"),
        (["deeplabv3", "--input", "no_such.jpg"], "no such file"),
        (["deeplabv3", "--backend", "onnx"], "TFLite model"),
        (["deeplabv3", "--backend", "torch"], "torch"),
    ],
)
def test_cli_bad_options_one_line(argv, message, capsys):
    from seglite.cli import main

    if argv[-1] == "onnx":
        pytest.importorskip("onnxruntime")
    extra = ["--runs", "1", "--min-secs", "0", "--warmup-secs", "0", "--no-isolate", "-q"]
    if "--runs" in argv:
        extra = extra[2:]
    if "--min-secs" in argv:
        extra = ["--runs", "1", "--warmup-secs", "0", "--no-isolate", "-q"]
    code = main(["bench", *argv, *extra])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("seglite: error:") and message in err and "\n" not in err, err
