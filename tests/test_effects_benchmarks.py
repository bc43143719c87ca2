"""The matte, flicker and effect-cost benchmarks the README quotes still run and report what
they claim to (tiny settings, on the repo's own pet photos)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import PETS_VOC, REPO


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_matte_quality_scores_each_model_with_and_without_the_filter(tmp_path):
    out = tmp_path / "matte.json"
    r = _run("benchmarks/matte_quality.py", "--data", str(PETS_VOC), "--limit", "2",
             "--models", "selfie,deeplabv3", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert {(row["model"], row["matte"]) for row in rows} == {
        (m, v) for m in ("selfie", "deeplabv3") for v in ("guided", "plain")
    }
    assert all(row["data"] == "pets" and row["images"] == 2 for row in rows)
    assert all(0 < row["iou"] <= 100 and 0 <= row["boundary_f"] <= 100 for row in rows)


def test_flicker_compares_smoothing_strengths_on_known_motion(tmp_path):
    out = tmp_path / "flicker.json"
    r = _run("benchmarks/flicker.py", "--data", str(PETS_VOC), "--clips", "1", "--frames", "6",
             "--smooth", "0,0.8", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(row["motion"], str(row["smooth"])) for row in rows] == [
        ("pan", "0.0"), ("pan", "0.8 (default)"), ("zoom", "0.0"), ("zoom", "0.8 (default)")
    ]  # fmt: skip
    assert all(row["flicker_%"] >= 0 and 0 < row["miou"] <= 100 for row in rows)
    assert rows[0]["vs_off"] == 1.0


def test_effects_cost_times_every_step(tmp_path):
    out = tmp_path / "cost.json"
    r = _run("benchmarks/effects_cost.py", "--models", "selfie", "--sizes", "320x240",
             "--rounds", "1", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    steps = {row["step"] for row in json.loads(out.read_text())}
    assert {"blur", "color", "image", "cutout", "smooth (one step)"} <= steps
