"""The same folder job on Ray Data, on a private Ray started here (loopback, temporary dir).

Every test that runs Ray has a timeout: an actor pool that takes all CPUs hangs for good
instead of failing, and that must show up as a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import photo_folder
from PIL import Image

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="the ray extra is not installed"
)


@pytest.fixture(scope="module")
def local_ray():
    """Ray with 2 CPUs on 127.0.0.1, its files in a short temp dir, nothing under $HOME."""
    from seglite import raydata

    home_ray = Path.home() / ".ray"
    had_home_ray = home_ray.exists()
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix socket paths must stay short
    started = raydata.connect(None, num_cpus=2, temp_dir=tmp)
    import ray

    yield ray
    if started:
        ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(tmp, ignore_errors=True)
    assert had_home_ray or not home_ray.exists(), "Ray wrote under the home directory"


@pytest.mark.timeout(150)
def test_folder_on_ray_writes_masks_and_jsonl_then_resumes(local_ray, tmp_path, capsys):
    from seglite.cli import main

    src = tmp_path / "in"
    photo_folder(src, 12, (480, 360))
    (src / "bad.png").write_text("not an image")
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--ray", "--jobs", "2", "-q"]

    assert main(args) == 1  # one bad file: reported, not fatal
    err = capsys.readouterr().err
    assert "12 segmented, 1 failed, 0 skipped" in err and "Traceback" not in err
    rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert len(rows) == 13
    by = {r["name"]: r for r in rows}
    assert by["bad"]["status"] == "failed" and "not an image" in by["bad"]["error"]
    good = [r for r in rows if r["status"] == "done"]
    assert len(good) == 12
    for r in good:
        assert r["width"] == 480 and r["classes"] and r["files"] == [f"{r['name']}.mask.png"]
        mask = Image.open(out / f"{r['name']}.mask.png")
        mask.load()
        assert mask.size == (480, 360) and mask.mode == "P"
    assert not (out / f"{good[0]['name']}.overlay.png").exists()  # Ray default: masks only
    stamp = (out / f"{good[0]['name']}.mask.png").stat().st_mtime_ns

    assert main(args) == 1  # resumed: nothing recomputed, the summary still covers all
    err = capsys.readouterr().err
    assert "0 segmented, 1 failed, 12 skipped" in err
    rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert len(rows) == 13
    assert sum(r.get("resumed", False) and r["status"] == "done" for r in rows) == 12
    assert (out / f"{good[0]['name']}.mask.png").stat().st_mtime_ns == stamp
    assert not list(out.glob(".*part*"))


def test_actors_leave_a_cpu_for_the_rest_of_the_job():
    from seglite.raydata import actor_cpus

    assert actor_cpus(2, 2) == 0.5  # 2 actors on 2 CPUs must not take both
    assert actor_cpus(64, 32) == 1.0
    assert 2 * actor_cpus(1, 2) < 1
    for cpus, n in ((2, 1), (2, 4), (8, 8), (16, 15)):
        assert n * actor_cpus(cpus, n) <= max(cpus - 1, 0.5)


def test_missing_ray_names_the_pip_extra(monkeypatch):
    from seglite.errors import MissingExtraError
    from seglite.raydata import connect

    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'seglite\[ray\]'"):
        connect("auto")
