"""Where outputs go: a local folder, or any pyarrow file system (s3://, gs://, ...)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..errors import OptionError
from ..files import PART, write_atomic


class Sink(Protocol):
    """Somewhere outputs are written whole: a local folder or an object store."""

    def existing(self) -> dict[str, float]: ...

    def write(self, rel: str, data: bytes | str) -> None: ...

    def read(self, rel: str) -> bytes | None: ...

    def describe(self, rel: str = "") -> str: ...


def is_uri(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


class LocalSink:
    """A local (or shared, e.g. NFS) folder; files appear by rename, complete or not at all."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def existing(self) -> dict[str, float]:
        """Relative posix name -> mtime of every output already there.

        Also removes temporary files a killed run left behind (one run per folder).
        """
        found: dict[str, float] = {}
        if not self.root.is_dir():
            return found
        for dirpath, _dirs, files in os.walk(self.root):
            base = Path(dirpath)
            for f in files:
                p = base / f
                if f.startswith(".") and f.endswith(PART):
                    p.unlink(missing_ok=True)
                    continue
                try:
                    found[p.relative_to(self.root).as_posix()] = p.stat().st_mtime
                except OSError:
                    pass
        return found

    def write(self, rel: str, data: bytes | str) -> None:
        # Lexical check on purpose: a folder the user linked into --out is theirs to use.
        write_atomic(self.root / _safe_rel(rel), data)

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except OSError:
            return None

    def describe(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else f"{self.root}/"


class ArrowSink:
    """An object store or remote file system (s3://, gs://, abfs://, hdfs://) via pyarrow.fs.

    A single PUT is atomic on object stores, so no rename is needed there.
    """

    def __init__(self, uri: str):
        fs_mod = _arrow_fs()
        self.uri = uri.rstrip("/")
        self.fs, self.base = fs_mod.FileSystem.from_uri(self.uri)

    def existing(self) -> dict[str, float]:
        fs_mod = _arrow_fs()
        sel = fs_mod.FileSelector(self.base, recursive=True, allow_not_found=True)
        found: dict[str, float] = {}
        for info in self.fs.get_file_info(sel):
            if info.type == fs_mod.FileType.File:
                rel = info.path[len(self.base) :].lstrip("/")
                found[rel] = info.mtime.timestamp() if info.mtime else 0.0
        return found

    def write(self, rel: str, data: bytes | str) -> None:
        path = f"{self.base}/{_safe_rel(rel)}"
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self.fs.open_output_stream(path) as fh:
            fh.write(payload)

    def read(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(f"{self.base}/{rel}") as fh:
                return fh.read()
        except OSError:
            return None

    def describe(self, rel: str = "") -> str:
        return f"{self.uri}/{rel}"


def make_sink(out: str | os.PathLike) -> Sink:
    text = str(out)
    if is_uri(text):
        return ArrowSink(text)
    return LocalSink(text.removeprefix("file://"))


def _arrow_fs():
    from ..errors import require

    return require("pyarrow.fs", "ray")


def read_uri(uri: str) -> bytes:
    """The bytes of a remote file (s3://, gs://, ...)."""
    fs, path = _arrow_fs().FileSystem.from_uri(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read()


def _safe_rel(rel: str) -> str:
    """Refuse an output name that would climb out of the output root (absolute, or '..')."""
    if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
        raise OptionError(f"output name {rel!r} would leave the output folder")
    return rel
