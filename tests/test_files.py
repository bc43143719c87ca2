"""Files are written whole and with the permissions the user's umask asks for."""

from __future__ import annotations

import os

import pytest

from seglite.files import write_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_write_atomic_leaves_one_complete_file_with_the_umask_mode(tmp_path, umask):
    path = write_atomic(tmp_path / "sub" / "a.json", '{"x": 1}', fsync=True)
    assert path.read_text() == '{"x": 1}'
    assert os.listdir(path.parent) == ["a.json"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "b.bin", object())  # not bytes: refused before any rename
    assert list(tmp_path.iterdir()) == []


def test_checkpoints_follow_the_umask_not_0600(tmp_path, umask):
    pytest.importorskip("torch")
    from seglite.models import deeplab
    from seglite.models.checkpoint import load_checkpoint, save_checkpoint

    model = deeplab(version="v3", backbone="mobilenet_v2", num_classes=3, depth_multiplier=0.35)
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"note": "x"})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert load_checkpoint(path).num_classes == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
