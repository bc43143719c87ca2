"""What to segment: folders walked, URIs listed, output names made from their paths."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from ..errors import OptionError
from . import sinks
from .jobs import IMAGE_SUFFIXES, Item


def walk_images(
    paths: Sequence[str | os.PathLike], *, exclude: str | os.PathLike | None = None
) -> list[Item]:
    """Every image under ``paths`` (files or folders, walked), named relative to its folder.

    ``exclude`` (the output folder) is not walked, so outputs written inside an input
    folder are not segmented again on the next run.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirs, files in os.walk(path):
                base = Path(dirpath)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".") and (skip is None or (base / d).resolve() != skip)
                )
                for f in sorted(files):
                    if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith("."):
                        rel = (base / f).relative_to(path)
                        found.append(Item(str(base / f), rel.with_suffix("").as_posix()))
        else:
            found.append(Item(str(path), path.stem))
    return found


def walk_uris(uris: Sequence[str]) -> list[Item]:
    """Images under remote prefixes or single remote files, named relative to the prefix."""
    if not uris:
        return []
    fs_mod = sinks._arrow_fs()
    found: list[Item] = []
    for uri in uris:
        fs, base = fs_mod.FileSystem.from_uri(uri.rstrip("/"))
        scheme = uri.split("://", 1)[0]
        info = fs.get_file_info(base)
        if info.type == fs_mod.FileType.Directory:
            infos = fs.get_file_info(fs_mod.FileSelector(base, recursive=True))
            for i in sorted(infos, key=lambda i: i.path):
                if i.type == fs_mod.FileType.File and i.extension.lower() in {
                    s[1:] for s in IMAGE_SUFFIXES
                }:
                    rel = i.path[len(base) :].split("/")
                    found.append(Item(f"{scheme}://{i.path}", output_name(rel)))
        else:
            found.append(Item(uri, PurePosixPath(base).stem))
    return found


def items_from_list(lines: Iterable[str]) -> list[Item]:
    """Items for a list of paths/URIs (--files-from), named relative to their common folder."""
    srcs = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    parts = [s.split("://", 1)[-1].split("/") for s in srcs]
    common = 0
    if parts:
        shortest = min(len(p) for p in parts) - 1
        while common < shortest and all(p[common] == parts[0][common] for p in parts):
            common += 1
    return [Item(s, output_name(p[common:])) for s, p in zip(srcs, parts)]


def output_name(parts: Sequence[str]) -> str:
    """An image's output name (a relative posix path, no suffix) from its path's parts.

    '..', '.' and empty parts are dropped, so a list entry such as '../../etc/x.jpg' is
    written as 'etc/x.*' under --out, never beside it.
    """
    kept = [p for p in parts if p not in ("", ".", "..")]
    if not kept:
        raise OptionError(f"{'/'.join(parts)!r} names no file")
    return PurePosixPath(*kept).with_suffix("").as_posix()
