"""The benchmark scripts the README quotes still run and report what they claim to."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PETS_VOC, REPO


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_peers_script_times_seglite_against_the_bare_invoke(tmp_path):
    out = tmp_path / "peers.json"
    r = _run("benchmarks/peers.py", "--only", "seglite", "--runs", "3", "--min-secs", "0",
             "--warmup-secs", "0", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seglite segment(), JPEG bytes" in r.stdout and "640x480 mask" in r.stdout
    data = json.loads(out.read_text())
    text = json.dumps(data)
    assert "Interpreter.invoke()" in text and "samples_ms" in text


def test_squash_quality_compares_both_squashes_on_real_ground_truth(tmp_path):
    out = tmp_path / "squash.json"
    r = _run("benchmarks/squash_quality.py", "--data", str(PETS_VOC), "--limit", "4",
             "--boot", "20", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(out.read_text())
    assert row["images"] == 4
    assert 0 < row["miou_graph"] <= 100 and 0 < row["miou_pillow"] <= 100
    assert row["ci95"][0] <= row["ci95"][1]


def test_cli_start_times_a_one_image_run_against_its_floor(tmp_path):
    out = tmp_path / "start.json"
    r = _run("benchmarks/cli_start.py", "--repeats", "1", "--json", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "/ floor" in r.stdout and "seglite --mask" in r.stdout
    times = json.loads(out.read_text())["times_s"]
    assert set(times) == {"python", "imports", "floor", "seglite --mask", "seglite"}
    assert all(len(v) == 1 and v[0] > 0 for v in times.values())


def test_load_serve_raw_client_reads_every_answer(tmp_path):
    """The raw keep-alive client gets every answer back, PNG and JSON bodies alike, and the
    report says what the client itself cost."""
    for output in ("mask", "json"):
        out = tmp_path / f"serve_{output}.json"
        r = _run("benchmarks/load_serve.py", "--requests", "24", "--concurrency", "4",
                 "--single-seconds", "0.3", "--output", output, "--json", str(out))  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        rep = json.loads(out.read_text())
        assert rep["client"] == "raw" and rep["ok"] == 24 and rep["failures"] == 0
        assert rep["client_cpu_ms_per_request"] > 0 and rep["throughput_rps"] > 0
        if output == "json":  # the server's own timings, parsed out of each JSON body
            assert rep["server_mean_total_ms"] > 0
