"""The command line as a user runs it: outputs written, bad input reported in one line, batch goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from conftest import EXAMPLES
from PIL import Image


def run(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "seglite", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_segment_writes_overlay_mask_and_json(tmp_path):
    proc = run("segment", str(EXAMPLES / "astronaut.jpg"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    mask = Image.open(tmp_path / "astronaut.mask.png")
    assert mask.mode == "P" and mask.size == (512, 512)
    assert mask.getpalette()[15 * 3 : 15 * 3 + 3] == [192, 128, 128]  # VOC colour of person
    overlay = Image.open(tmp_path / "astronaut.overlay.png")
    assert overlay.size[1] == 512 and overlay.size[0] > 512  # legend panel on the right
    summary = json.loads((tmp_path / "astronaut.json").read_text())
    assert {c["label"] for c in summary["classes"]} >= {"person", "background"}
    assert summary["width"] == 512


def test_batch_keeps_going_past_bad_files(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "good.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes())
    (src / "sub" / "good.jpg").write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    (src / "empty.jpg").write_bytes(b"")
    (src / "text.jpg").write_text("not an image")
    (src / "trunc.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes()[:3000])
    out = tmp_path / "out"
    proc = run("segment", str(src), "--out", str(out), "--mask")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("seglite:")]
    assert len(errors) == 3
    assert "2 segmented, 3 failed" in proc.stderr
    assert np.asarray(Image.open(out / "good.mask.png")).shape == (300, 451)
    assert (out / "sub" / "good.mask.png").exists()  # same stem in a sub-folder: no collision
    assert not list(out.rglob("*.part"))


def test_bad_model_and_options_exit_nonzero_without_traceback(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    for args in (
        ["segment", str(EXAMPLES / "chelsea.jpg"), "--model", str(bad)],
        ["segment", str(EXAMPLES / "chelsea.jpg"), "--model", "no-such-model"],
        ["segment", str(EXAMPLES / "chelsea.jpg"), "--threads", "0"],
        ["segment", str(EXAMPLES / "chelsea.jpg"), "--alpha", "3"],
        ["segment", str(tmp_path / "nothing-here")],
    ):
        proc = run(*args, "--out", str(tmp_path / "o"))
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip(), args


def test_models_lists_the_zoo():
    proc = run("models")
    assert proc.returncode == 0
    assert "deeplabv3" in proc.stdout and "cityscapes" in proc.stdout and "ade20k" in proc.stdout
    rows = json.loads(run("models", "--json").stdout)
    assert {r["name"] for r in rows} >= {"deeplabv3", "coral-pascal", "ade20k"}


def test_a_busy_port_is_one_line_before_any_banner():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run("serve", "--port", str(port))
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"seglite: error: 127.0.0.1:{port} is in use by another program: stop it or pick another --port\n"
    )


def test_a_mistyped_model_name_gets_a_suggestion():
    proc = run("segment", str(EXAMPLES / "astronaut.jpg"), "--model", "deeplab3")
    assert proc.returncode == 2 and "did you mean 'deeplabv3'?" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_runs_on_other_runtimes_print_no_litert_banner(tmp_path):
    """The argmax kernel is LiteRT without its default XNNPACK delegate: no INFO line."""
    proc = run(
        "segment", str(EXAMPLES / "chelsea.jpg"), "--model", "camvid", "--out", str(tmp_path), "-q"
    )
    assert proc.returncode == 0, proc.stderr
    assert "XNNPACK" not in proc.stderr and "INFO" not in proc.stderr, proc.stderr


def test_a_one_image_run_loads_only_what_it_uses(tmp_path):
    """`seglite segment one.jpg` is a start-up-bound command: it opens its model once (the
    check that the model loads is the run's model), builds one command's parser, imports
    no progress bar for one image and only the Pillow plugins of the formats it reads,
    and still writes every output."""
    script = f"""
import json, sys
import seglite.segmenter as s
opened = []
real = s.open_backend
s.open_backend = lambda *a, **k: opened.append(1) or real(*a, **k)
from seglite.cli import main
code = main(["segment", {str(EXAMPLES / "astronaut.jpg")!r}, "--out", {str(tmp_path)!r}])
print(json.dumps({{
    "code": code, "opened": len(opened), "tqdm": "tqdm" in sys.modules,
    "commands": sorted(m for m in sys.modules if m.startswith("seglite.commands.")),
    "plugins": sorted(m for m in sys.modules if m.endswith("ImagePlugin")),
}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0 and seen["opened"] == 1 and not seen["tqdm"], seen
    assert seen["commands"] == ["seglite.commands.segment"], seen
    assert "PIL.JpegImagePlugin" in seen["plugins"], seen
    assert "PIL.PsdImagePlugin" not in seen["plugins"], seen  # not every Pillow format
    for suffix in ("overlay.png", "mask.png", "json"):
        assert (tmp_path / f"astronaut.{suffix}").is_file()


def test_help_still_lists_every_command():
    proc = run("--help")
    assert proc.returncode == 0
    for name in ("segment", "models", "bench", "eval", "serve", "import"):
        assert f"    {name} " in proc.stdout, proc.stdout
