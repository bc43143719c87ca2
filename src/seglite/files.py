"""Writing files whole: the one atomic write that outputs, checkpoints and logs share;
and the first line of an error, for the one-line messages that wrap a library's exception.

Readers (a resumed run, another process, a web server) must never see half a file, and the
file must get the permissions the user's umask asks for, not a temporary file's 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

# The files shipped inside the package (models, the argmax graph): a plain folder next to
# this module, read without importlib.resources (~8 ms of a one-image CLI run's imports).
ASSETS = Path(__file__).resolve().parent / "assets"

PART = ".part"  # suffix of the temporary files; a killed run's leftovers are found by it


def write_atomic(path: str | os.PathLike, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write to a temporary name beside ``path``, then rename it into place.

    ``fsync`` also flushes to disk before the rename, for files that must survive a power
    cut (checkpoints), at the cost of a sync.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}{PART}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 less the umask
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``str(exc)`` (its type's name if empty), at most ``limit`` characters:
    what a one-line SegliteError quotes of a runtime's or a decoder's multi-line message."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line[:limit]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks so large files do not fill memory."""
    import hashlib  # here: most runs never hash a file, and hashlib loads OpenSSL

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
