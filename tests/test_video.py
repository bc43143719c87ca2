"""Video: a clip of 100 frames panning over a real street photo round-trips with its overlay; bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import pan_frames
from PIL import Image

av = pytest.importorskip("av")

FRAMES = pan_frames(100, (480, 360))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seglite", "segment", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def make_video(path: Path, frames: list[np.ndarray], rate: int = 30) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))


def decode(path: Path) -> tuple[list[np.ndarray], object]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return frames, (s.frames, s.width, s.height, Fraction(s.average_rate))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    assert len(FRAMES) == 100
    path = tmp_path_factory.mktemp("video") / "camvid.mp4"
    make_video(path, FRAMES)
    return path


@pytest.mark.timeout(240)
def test_overlay_video_round_trips_with_frame_count_size_rate_and_overlay(clip, tmp_path):
    out, masks = tmp_path / "seg.mp4", tmp_path / "masks"
    proc = cli(str(clip), "--out", str(out), "--masks-dir", str(masks), "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "100 frames 480x360 at 30 fps" in proc.stderr and "segmented at" in proc.stderr
    src, src_meta = decode(clip)
    got, meta = decode(out)
    assert meta == src_meta == (100, 480, 360, Fraction(30))
    assert len(got) == len(src) == 100
    mask_files = sorted(masks.glob("frame_*.png"))
    assert len(mask_files) == 100

    palette = np.array(Image.open(mask_files[0]).getpalette()[: 256 * 3]).reshape(-1, 3)
    painted_frames = 0
    for i in range(0, 100, 9):
        mask = np.asarray(Image.open(mask_files[i]))
        painted = mask != 0  # background stays uncoloured
        a, b = src[i].astype(np.float32), got[i].astype(np.float32)
        assert np.abs(a - b)[~painted].mean() < 6  # outside the classes: the same picture
        if painted.sum() < 500:
            continue
        colour = palette[mask[painted]].astype(np.float32)
        before = np.abs(a[painted] - colour).mean()
        after = np.abs(b[painted] - colour).mean()
        assert after < 0.7 * before, (i, before, after)  # pulled towards the class colour
        painted_frames += 1
    assert painted_frames >= 5  # CamVid street scenes: cars (and people) in most frames

    before = out.stat().st_mtime_ns
    again = cli(str(clip), "--out", str(out))
    assert again.returncode == 0 and "already there" in again.stderr
    assert out.stat().st_mtime_ns == before
    assert not list(tmp_path.glob(".*part*"))


def test_corrupt_video_is_one_line_and_nonzero(clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(clip.read_bytes()[:4000])
    proc = cli(str(bad), "--out", str(tmp_path / "o.mp4"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.mp4" in lines[0] and "not a video" in lines[0], lines
    assert not (tmp_path / "o.mp4").exists()


def test_bad_video_options_are_one_line(clip, tmp_path):
    for args in (
        [str(clip), "--jobs", "2"],
        [str(clip), str(clip), "--out", str(tmp_path / "one.mp4")],
        ["--stream", str(clip), "--out", str(tmp_path / "folder")],
        [str(tmp_path / "missing.mp4")],
    ):
        proc = cli(*args)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)


def test_stream_reports_fps_and_writes_what_it_saw(clip, tmp_path):
    out = tmp_path / "live.mp4"
    proc = cli("--stream", str(clip), "--max-frames", "5", "--out", str(out), "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert " fps" in proc.stderr.splitlines()[-1]
    frames, (n, w, h, _) = decode(out)
    assert 1 <= n == len(frames) <= 5 and (w, h) == (480, 360)


def test_missing_extra_names_the_pip_extra(monkeypatch, clip, capsys):
    from seglite.cli import main

    monkeypatch.setitem(sys.modules, "av", None)
    assert main(["segment", str(clip)]) != 0
    assert "pip install 'seglite[video]'" in capsys.readouterr().err


def _flicker(masks_dir: Path, n: int) -> float:
    from conftest import pan_offset

    masks = [np.asarray(Image.open(p)) for p in sorted(masks_dir.glob("frame_*.png"))[:n]]
    changed = []
    for i in range(1, len(masks)):
        dx = pan_offset(i, 100, (480, 360))[0] - pan_offset(i - 1, 100, (480, 360))[0]
        a, b = masks[i - 1], masks[i]
        changed.append((a[:, dx:] != b[:, : b.shape[1] - dx]).mean())
    return float(np.mean(changed))


@pytest.mark.timeout(300)
def test_masks_are_smoothed_by_default_and_smooth_0_turns_it_off(clip, tmp_path):
    for name, extra in (("on", []), ("off", ["--smooth", "0"])):
        proc = cli(str(clip), "--out", str(tmp_path / f"{name}.mp4"), "--masks-dir",
                   str(tmp_path / name), "--max-frames", "20", "--threads", "2", *extra)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    on, off = _flicker(tmp_path / "on", 20), _flicker(tmp_path / "off", 20)
    assert on < 0.75 * off, (on, off)


@pytest.mark.timeout(300)
def test_background_effect_video_and_what_video_cannot_hold(clip, tmp_path):
    proc = cli(str(clip), "--effect", "color:#00ff00", "--out", str(tmp_path), "--max-frames",
               "8", "--threads", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames, (n, w, h, _) = decode(tmp_path / "camvid.color.mp4")
    assert n == 8 and (w, h) == (480, 360)
    green = (np.abs(frames[4].astype(int) - (0, 255, 0)).sum(-1) < 60).mean()
    assert 0.3 < green < 0.995  # the street's background replaced, its cars and people kept
    for args, message in (
        (["--effect", "cutout"], "RGBA"),
        (["--smooth", "1.5"], "--smooth must be between"),
    ):
        proc = cli(str(clip), *args, "--out", str(tmp_path / "x.mp4"))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
