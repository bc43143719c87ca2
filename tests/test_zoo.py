"""The model zoo: recorded checksums match the real files, and resolve() looks in the right order.

Resolution tests use a temporary zoo entry whose bytes are the packaged starter model, served by
a local HTTP server on 127.0.0.1 that counts requests; no other host is contacted.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from conftest import MODEL_DIR, NOT_IN_REPO

from seglite import zoo
from seglite.download import sha256_file
from seglite.errors import DownloadError, ModelError, ModelNotFoundError, OptionError
from seglite.labels import LABEL_SETS
from seglite.zoo import ZOO, ModelEntry, list_models, register, resolve

ASSET = zoo.packaged_path(ZOO["deeplabv3"])
ASSET_BYTES = ASSET.read_bytes()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No model dir, no mirror, online, and a private cache and home: a fresh machine."""
    for var in ("SEGLITE_MODEL_DIR", "SEGLITE_ZOO_MIRROR", "SEGLITE_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    ns = SimpleNamespace(cache=tmp_path / "cache", models=tmp_path / "models", home=tmp_path)
    monkeypatch.setenv("SEGLITE_CACHE_DIR", str(ns.cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ns.models.mkdir()
    return ns


@pytest.fixture
def entry():
    """A downloadable (not packaged) zoo entry for the starter model's bytes."""
    e = register(
        ModelEntry(
            name="test-model",
            filename="test_model.tflite",
            url="https://example.invalid/test_model.tflite",  # never used: tests pass a mirror
            sha256=hashlib.sha256(ASSET_BYTES).hexdigest(),
            size=len(ASSET_BYTES),
            labels="voc21",
            input_size=(257, 257),
            quantized=False,
            output="logits",
            description="test copy of the starter model",
            source="tests",
            license="Apache-2.0",
        )
    )
    yield e
    ZOO.pop(e.name, None)


class _CountingHandler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP mirror serving test_model.tflite; ``.hits`` lists the paths requested."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "test_model.tflite").write_bytes(ASSET_BYTES)
    handler = functools.partial(_CountingHandler, directory=str(root))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    srv.hits = []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{srv.server_address[1]}/", hits=srv.hits)
    srv.shutdown()
    srv.server_close()
    thread.join(5)


# --- the recorded zoo ------------------------------------------------------------------------


def test_expected_names_and_default():
    assert list(ZOO)[:7] == [
        "deeplabv3",
        "deeplabv3-metadata",
        "coral-pascal",
        "coral-pascal-dm05",
        "cityscapes",
        "ade20k",
        "coco-voc-fp16",
    ]
    assert zoo.DEFAULT_MODEL == "deeplabv3" and ZOO["deeplabv3"].packaged


DOWNLOADABLE = [n for n, e in ZOO.items() if e.url]
TRAINED_HERE = [n for n, e in ZOO.items() if not e.url]


@pytest.mark.parametrize("name", list(ZOO))
def test_entry_is_consistent(name):
    e = ZOO[name]
    assert e.name == name and e.labels in LABEL_SETS
    assert e.output in ("logits", "argmax", "sigmoid") and e.imports in ("yes", "native", "no")
    assert e.format in ("tflite", "safetensors")
    assert e.url.startswith("https://") or e.packaged  # no URL: it ships in the package
    assert len(e.input_size) == 2 and e.num_classes == len(LABEL_SETS[e.labels])


@pytest.mark.parametrize("name", TRAINED_HERE)
def test_models_trained_here_ship_with_their_recorded_bytes(name):
    e = ZOO[name]
    path = zoo.packaged_path(e)
    assert path is not None, f"{e.filename} missing from seglite/assets"
    assert path.stat().st_size == e.size and sha256_file(path) == e.sha256


IN_REPO = [n for n in DOWNLOADABLE if n not in NOT_IN_REPO and not ZOO[n].packaged]


def test_every_redistributable_zoo_file_is_in_the_repo():
    missing = [n for n in IN_REPO if not (MODEL_DIR / ZOO[n].filename).is_file()]
    assert not missing, f"add to scripts/make_test_data.py: {missing}"


@pytest.mark.parametrize("name", IN_REPO)
def test_entry_file_in_model_dir(name):
    e = ZOO[name]
    path = MODEL_DIR / e.filename
    assert path.stat().st_size == e.size
    assert sha256_file(path) == e.sha256


def test_packaged_default_matches_its_entry():
    assert ASSET.name == ZOO["deeplabv3"].filename
    assert sha256_file(ASSET) == ZOO["deeplabv3"].sha256


# --- resolution ------------------------------------------------------------------------------


def test_default_resolves_on_a_fresh_machine(env, monkeypatch):
    monkeypatch.setenv("SEGLITE_OFFLINE", "1")
    for model in (None, "deeplabv3"):
        r = resolve(model)
        assert r.path == ASSET and r.origin == "packaged" and r.entry is ZOO["deeplabv3"]
    assert not env.cache.exists()


def test_explicit_path_wins_and_finds_its_entry(env, entry, monkeypatch):
    (env.models / entry.filename).write_bytes(ASSET_BYTES)
    monkeypatch.setenv("SEGLITE_MODEL_DIR", str(env.models))
    mine = env.home / "my copy.bin"
    mine.write_bytes(ASSET_BYTES)
    for given in (mine, str(mine)):
        r = resolve(given)
        assert r.path == mine and r.origin == "path" and r.entry in (ZOO["deeplabv3"], entry)
    other = env.home / "other.tflite"
    other.write_bytes(b"x" * len(ASSET_BYTES))  # same size as a zoo file, other bytes
    assert resolve(other).entry is None and resolve(other).name == "other"


def test_model_dir_then_cache_then_download(env, entry, mirror, monkeypatch):
    (env.models / entry.filename).write_bytes(ASSET_BYTES)
    env.cache.mkdir()
    (env.cache / entry.filename).write_bytes(ASSET_BYTES)
    monkeypatch.setenv(
        "SEGLITE_MODEL_DIR", os.pathsep.join([str(env.home / "empty"), str(env.models)])
    )

    r = resolve("test-model", mirror=mirror.url)
    assert (r.origin, r.path, r.entry) == ("model_dir", env.models / entry.filename, entry)

    monkeypatch.delenv("SEGLITE_MODEL_DIR")
    r = resolve("test-model", mirror=mirror.url)
    assert (r.origin, r.path) == ("cache", env.cache / entry.filename)

    (env.cache / entry.filename).unlink()
    r = resolve("test-model", mirror=mirror.url, progress=False)
    assert (r.origin, r.path) == ("download", env.cache / entry.filename)
    assert r.path.read_bytes() == ASSET_BYTES and mirror.hits == ["/test_model.tflite"]

    r = resolve("test-model", mirror=mirror.url)
    assert r.origin == "cache" and len(mirror.hits) == 1  # the cache is used, no new request


def test_mirror_from_environment_and_xdg_cache(env, entry, mirror, monkeypatch):
    monkeypatch.delenv("SEGLITE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(env.home / "xdg"))
    monkeypatch.setenv("SEGLITE_ZOO_MIRROR", mirror.url.rstrip("/"))
    r = resolve("test-model", progress=False)
    assert r.path == env.home / "xdg" / "seglite" / entry.filename and len(mirror.hits) == 1


def test_mirror_can_be_a_local_folder(env, entry, monkeypatch):
    folder = env.home / "usb stick"
    folder.mkdir()
    (folder / entry.filename).write_bytes(ASSET_BYTES)
    monkeypatch.setenv("SEGLITE_ZOO_MIRROR", str(folder))
    assert zoo.url_for(entry).startswith("file://")
    r = resolve("test-model", progress=False)
    assert r.origin == "download" and r.path.read_bytes() == ASSET_BYTES


def test_home_cache_is_the_last_fallback(env, monkeypatch):
    monkeypatch.delenv("SEGLITE_CACHE_DIR")
    assert zoo.cache_dir() == env.home / "home" / ".cache" / "seglite"


def test_wrong_file_in_model_dir_is_reported(env, entry, mirror, monkeypatch):
    bad = env.models / entry.filename
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("SEGLITE_MODEL_DIR", str(env.models))
    with pytest.raises(ModelError, match="sha256") as info:
        resolve("test-model", mirror=mirror.url)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert mirror.hits == []
    assert {r["name"]: r["local"] for r in list_models()}["test-model"] == "no"


def test_wrong_file_in_cache_is_downloaded_again(env, entry, mirror):
    env.cache.mkdir()
    (env.cache / entry.filename).write_bytes(ASSET_BYTES[:-1] + b"!")
    r = resolve("test-model", mirror=mirror.url, progress=False)
    assert r.origin == "download" and len(mirror.hits) == 1
    assert sha256_file(r.path) == entry.sha256


def test_failed_download_leaves_the_cache_empty(env, entry, mirror):
    with pytest.raises(DownloadError, match="HTTP 404"):
        resolve("test-model", mirror=mirror.url + "missing/", progress=False)
    assert list(env.cache.iterdir()) == []


def test_offline_forbids_downloads(env, entry, mirror, monkeypatch):
    monkeypatch.setenv("SEGLITE_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="SEGLITE_OFFLINE"):
        resolve("test-model", mirror=mirror.url)
    assert mirror.hits == []


def test_unknown_name_lists_the_known_names(env):
    with pytest.raises(ModelNotFoundError) as info:
        resolve("deeplabv9")
    message = str(info.value)
    assert "deeplabv9" in message and "\n" not in message
    assert all(name in message for name in ZOO)


def test_missing_file_path(env):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve(env.home / "nope.tflite")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve("models/nope.tflite")


def test_files_are_hashed_once(env, entry, monkeypatch):
    calls = []
    monkeypatch.setattr(zoo, "sha256_file", lambda p: calls.append(p) or sha256_file(p))
    env.cache.mkdir()
    (env.cache / entry.filename).write_bytes(ASSET_BYTES)
    for _ in range(3):
        assert resolve("test-model").origin == "cache"
    assert len(calls) == 1
    small = env.home / "small.tflite"
    small.write_bytes(b"abc")
    assert resolve(small).entry is None and len(calls) == 1  # no zoo file has that size


# --- listing and registering -----------------------------------------------------------------


def test_list_models(env, monkeypatch):
    rows = list_models()
    assert [r["name"] for r in rows] == list(ZOO)
    assert set(rows[0]) == {
        "name", "size_mb", "input", "classes", "labels", "quantized", "output",
        "imports to PyTorch", "source", "local",
    }  # fmt: skip
    by_name = {r["name"]: r for r in rows}
    assert by_name["deeplabv3"]["local"] == "yes" and by_name["cityscapes"]["local"] == "no"
    assert by_name["ade20k"]["classes"] == 151 and by_name["coral-pascal"]["output"] == "argmax"
    assert by_name["deeplabv3"]["input"] == "257x257" and by_name["deeplabv3"]["size_mb"] == 2.8
    # Every DeepLab file imports into PyTorch; the person models are not DeepLabs.
    deeplabs = [
        r for r in rows if r["name"] not in ("selfie", "selfie-landscape", "camvid", "camvid-lite")
    ]
    assert all(r["imports to PyTorch"] == "yes" for r in deeplabs) and len(deeplabs) == 9
    assert by_name["selfie"]["imports to PyTorch"] == "no" and by_name["selfie"]["local"] == "yes"
    assert by_name["ade20k-mlperf"]["classes"] == 32 and by_name["selfie"]["classes"] == 2
    monkeypatch.setenv("SEGLITE_MODEL_DIR", str(MODEL_DIR))
    assert {r["name"] for r in list_models() if r["local"] != "yes"} <= set(NOT_IN_REPO)


def test_register_validates(entry):
    with pytest.raises(OptionError, match="already"):
        register(entry)
    register(replace(entry, description="changed"), replace=True)
    assert ZOO["test-model"].description == "changed"
    for bad in (
        {"labels": "voc22"},
        {"output": "mask"},
        {"sha256": "abc"},
        {"size": 0},
    ):
        with pytest.raises(OptionError):
            register(replace(entry, name="bad", **bad))
    assert "bad" not in ZOO


def test_packaged_safetensors_entry(env, entry, monkeypatch):
    """A trained checkpoint shipped in the assets: no URL, found in the package or model dir."""
    ckpt = register(
        replace(
            entry, name="camvid-test", filename="camvid_test.safetensors", url="", packaged=True
        )
    )
    try:
        assert ckpt.format == "safetensors" and zoo.packaged_path(ckpt) is None
        with pytest.raises(ModelNotFoundError, match="no download URL"):
            resolve("camvid-test")
        shutil.copy(ASSET, env.models / ckpt.filename)
        monkeypatch.setenv("SEGLITE_MODEL_DIR", str(env.models))
        assert resolve("camvid-test").origin == "model_dir"
    finally:
        ZOO.pop("camvid-test")
