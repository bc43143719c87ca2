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
