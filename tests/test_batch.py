"""Folders at scale: the process pool, resume after a kill, one bad file never stops a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, photo_folder
from PIL import Image

from seglite.batch import (
    RUN_RECORD,
    Item,
    LocalSink,
    Outputs,
    SegmenterSpec,
    items_from_list,
    make_sink,
    plan,
    run_pool,
    run_serial,
    walk_images,
)

OUTPUT_SUFFIXES = (".mask.png", ".json", ".overlay.png")


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seglite", "segment", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def stamps(out: Path) -> dict[str, tuple[int, int]]:
    """Inode and mtime of every file: a rewrite (atomic rename) changes the inode."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file()
    }


def complete(out: Path, stems: list[str]) -> set[str]:
    return {s for s in stems if all((out / f"{s}{x}").exists() for x in OUTPUT_SUFFIXES)}


@pytest.mark.timeout(180)
def test_kill_halfway_then_resume_keeps_finished_work(tmp_path):
    src = photo_folder(tmp_path / "in", 24)
    stems = [p.stem for p in src]
    out = tmp_path / "out"
    args = (str(tmp_path / "in"), "--out", str(out), "--jobs", "2", "-q")
    proc = cli(*args, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(complete(out, stems)) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # parent and workers, mid-write or not
    proc.wait()
    done_before = complete(out, stems)
    assert 8 <= len(done_before) < len(stems)
    before = stamps(out)

    again = cli(*args)
    _, err = again.communicate(timeout=150)
    assert again.returncode == 0, err
    assert f"{len(stems) - len(done_before)} segmented, 0 failed, {len(done_before)} skipped" in err
    after = stamps(out)
    for stem in done_before:  # not recomputed: same file, same time
        for x in OUTPUT_SUFFIXES:
            assert after[f"{stem}{x}"] == before[f"{stem}{x}"], stem
    # Every image: exactly its three outputs, each complete; nothing else left behind.
    made = [f"{s}{x}" for s in stems for x in OUTPUT_SUFFIXES]
    assert sorted(after) == sorted([*made, RUN_RECORD])
    for path in src:
        size = Image.open(path).size
        mask = Image.open(out / f"{path.stem}.mask.png")
        mask.load()
        assert mask.size == size
        Image.open(out / f"{path.stem}.overlay.png").load()
        assert json.loads((out / f"{path.stem}.json").read_text())["width"] == size[0]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(120)
def test_workers_stop_when_the_parent_is_killed(tmp_path):
    photo_folder(tmp_path / "in", 30)
    proc = cli(str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--jobs", "2", "-q")
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").glob("*.mask.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = _children(proc.pid)  # the two workers and multiprocessing's resource tracker
    assert len(workers) >= 2
    proc.kill()  # the parent only
    proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "orphaned workers kept running"


def test_pool_and_serial_write_the_same_and_survive_bad_files(tmp_path):
    photo_folder(tmp_path / "in", 5)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    items = walk_images([tmp_path / "in"])
    spec = SegmenterSpec(None, {"num_threads": 1})
    outputs = Outputs(overlay=False, mask=True, json=True)
    got: dict[str, list] = {"serial": [], "pool": []}
    run_serial(spec, items, outputs, LocalSink(tmp_path / "serial"), got["serial"].append)
    run_pool(spec, items, outputs, tmp_path / "pool", got["pool"].append, jobs=2)
    for outcomes in got.values():
        status = {o.name: o.status for o in outcomes}
        assert sorted(status.values()).count("done") == 5
        assert status["broken"] == status["empty"] == "failed"
        errors = [o.error for o in outcomes if o.status == "failed"]
        assert all(e.startswith(str(tmp_path / "in")) for e in errors), errors
    for item in items[:5]:
        a = (tmp_path / "serial" / f"{item.name}.mask.png").read_bytes()
        assert a == (tmp_path / "pool" / f"{item.name}.mask.png").read_bytes(), item.name


class CrashingSpec(SegmenterSpec):
    """A real Segmenter whose process dies (like a native crash) on 13x7 images."""

    def build(self):
        seg = super().build()
        inner = seg.segment

        def segment(image):
            if getattr(image, "size", None) == (13, 7):
                os._exit(3)
            return inner(image)

        seg.segment = segment
        return seg


@pytest.mark.timeout(120)
def test_a_worker_crash_fails_one_image_and_the_run_goes_on(tmp_path):
    photo_folder(tmp_path / "in", 6)
    Image.new("RGB", (13, 7), (200, 10, 10)).save(tmp_path / "in" / "crash.png")
    items = walk_images([tmp_path / "in"])
    outcomes = []
    run_pool(
        CrashingSpec(None, {"num_threads": 1}),
        items,
        Outputs(overlay=False, mask=True, json=False),
        tmp_path / "out",
        outcomes.append,
        jobs=2,
    )
    status = {o.name: o for o in outcomes}
    assert len(outcomes) == len(items) == 7
    assert status["crash"].status == "failed" and "died" in status["crash"].error
    assert sum(o.status == "done" for o in outcomes) == 6


def test_plan_skips_done_redoes_stale_and_refuses_name_clashes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.jpg", "a.png", "b.jpg", "c.jpg"):
        shutil.copy(EXAMPLES / "chelsea.jpg", src / name)
    out = tmp_path / "out"
    outputs = Outputs(overlay=False, mask=True, json=True)
    for stem in ("b", "c"):
        for f in outputs.files(stem):
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            (out / f).write_text("x")
    os.utime(src / "c.jpg", (time.time() + 100, time.time() + 100))  # c changed since
    (out / ".b.mask.png.abc123.part").write_bytes(b"half")  # left by a killed run
    todo, known = plan(walk_images([src]), outputs, make_sink(out))
    assert [i.src for i in todo] == [str(src / "a.jpg"), str(src / "c.jpg")]
    by = {o.src: o for o in known}
    assert by[str(src / "b.jpg")].status == "skipped"
    clash = by[str(src / "a.png")]
    assert clash.status == "failed" and "same output name" in clash.error
    assert not (out / ".b.mask.png.abc123.part").exists()
    todo, _ = plan(walk_images([src]), outputs, make_sink(out), overwrite=True)
    assert len(todo) == 3


def test_outputs_inside_the_input_folder_are_not_walked_again(tmp_path):
    photo_folder(tmp_path / "in", 1)
    out = tmp_path / "in" / "seg"
    (out / "x.mask.png").parent.mkdir(parents=True)
    Image.new("P", (4, 4)).save(out / "x.mask.png")
    assert len(walk_images([tmp_path / "in"], exclude=out)) == 1
    assert len(walk_images([tmp_path / "in"])) == 2


def test_list_of_uris_is_named_relative_to_its_common_folder():
    items = items_from_list(
        ["s3://bkt/run/a/x.jpg", "s3://bkt/run/b/x.jpg", "# comment", "", "s3://bkt/run/y.png"]
    )
    assert items == [
        Item("s3://bkt/run/a/x.jpg", "a/x"),
        Item("s3://bkt/run/b/x.jpg", "b/x"),
        Item("s3://bkt/run/y.png", "y"),
    ]


def test_arrow_sink_writes_and_lists(tmp_path):
    pytest.importorskip("pyarrow.fs")
    from seglite.batch import ArrowSink

    sink = ArrowSink(f"file://{tmp_path}/remote")
    sink.write("sub/a.mask.png", b"png")
    sink.write("b.json", "{}")
    assert set(sink.existing()) == {"sub/a.mask.png", "b.json"}
    assert (tmp_path / "remote" / "sub" / "a.mask.png").read_bytes() == b"png"


def test_shipped_spec_rebuilds_the_model_elsewhere(starter, tmp_path):
    spec = SegmenterSpec.shipped(starter, {"num_threads": 1})
    with spec.build() as seg:
        assert seg.labels == starter.labels and seg.model_name == starter.model_name
        a = seg.segment(EXAMPLES / "chelsea.jpg").category_mask
    assert np.array_equal(a, starter.segment(EXAMPLES / "chelsea.jpg").category_mask)


def test_cli_jobs_zero_and_bad_files_in_a_pool(tmp_path):
    proc = cli(str(EXAMPLES / "chelsea.jpg"), "--jobs", "0", "--out", str(tmp_path / "o"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err
    assert err.strip().splitlines() == ["seglite: error: --jobs must be a positive integer, got 0"]

    photo_folder(tmp_path / "in", 3)
    (tmp_path / "in" / "bad.png").write_text("not a png")
    proc = cli(str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--jobs", "2", "--mask", "-q")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err
    assert "3 segmented, 1 failed, 0 skipped" in err
    assert f"  {tmp_path / 'in' / 'bad.png'}: not an image file" in err  # listed with its reason
    assert len(list((tmp_path / "o").glob("*.mask.png"))) == 3


class _LocalAsRemote:
    """pyarrow.fs, with mem:///abs/path URIs served by the local file system."""

    def __init__(self):
        import pyarrow.fs as fs

        self.FileSelector, self.FileType = fs.FileSelector, fs.FileType

    class FileSystem:
        @staticmethod
        def from_uri(uri: str):
            import pyarrow.fs as fs

            if uri.startswith("mem://"):
                return fs.LocalFileSystem(), uri[len("mem://") :]
            return fs.FileSystem.from_uri(uri)


def test_uris_in_and_out_go_through_pyarrow(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow.fs")
    import seglite.batch as batch

    monkeypatch.setattr(batch.sinks, "_arrow_fs", _LocalAsRemote)
    photo_folder(tmp_path / "bucket" / "imgs" / "a", 2, (480, 360))
    photo_folder(tmp_path / "bucket" / "imgs" / "b", 1, (480, 360))
    items = batch.walk_uris([f"mem://{tmp_path}/bucket/imgs/"])
    assert [i.name.split("/")[0] for i in items] == ["a", "a", "b"]
    assert all(i.src.startswith(f"mem://{tmp_path}/bucket/imgs/") for i in items)
    sink = make_sink(f"mem://{tmp_path}/bucket/seg")
    outputs = Outputs(overlay=True, mask=True, json=False)
    outcomes = []
    run_serial(SegmenterSpec(None, {"num_threads": 2}), items, outputs, sink, outcomes.append)
    assert [o.status for o in outcomes] == ["done"] * 3
    todo, known = plan(items, outputs, sink)
    assert not todo and [o.status for o in known] == ["skipped"] * 3
    mask = Image.open(tmp_path / "bucket" / "seg" / f"{items[2].name}.mask.png")
    assert mask.size == (480, 360)


def test_outputs_of_another_model_are_not_taken_for_done(tmp_path, capsys):
    """A re-run with model B into model A's folder is refused, and redone with --overwrite."""
    from seglite.cli import main

    photo_folder(tmp_path / "in", 2)
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "in"), "--out", str(out), "--mask", "-q"]
    assert main(args) == 0
    first = {p.name: p.read_bytes() for p in out.glob("*.mask.png")}
    capsys.readouterr()
    assert main([*args, "--model", "coral-pascal-dm05"]) == 2
    err = capsys.readouterr().err
    assert "made by deeplabv3 with other settings (model, model_sha256 differ)" in err
    assert "--overwrite" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.glob("*.mask.png")} == first  # untouched
    assert main([*args, "--scales", "1.5"]) == 2  # other options: the same refusal
    assert "scales differ" in capsys.readouterr().err
    assert main([*args, "--model", "coral-pascal-dm05", "--overwrite"]) == 0
    assert "2 segmented, 0 failed, 0 skipped" in capsys.readouterr().err
    again = {p.name: p.read_bytes() for p in out.glob("*.mask.png")}
    assert again.keys() == first.keys() and again != first
    assert main([*args, "--model", "coral-pascal-dm05"]) == 0  # same settings: resumes
    assert "0 segmented, 0 failed, 2 skipped" in capsys.readouterr().err
