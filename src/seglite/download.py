"""Fetch a file over HTTP(S) or file:// with a progress bar, a sha256 check and an atomic write.

Only urllib: the inference path must stay dependency-light. The bytes go to a temporary file
in the destination folder (so the final ``os.replace`` is atomic on the same file system) and
are hashed while they stream; the destination only ever holds a complete, verified file.
Every failure removes the temporary file and raises one ``DownloadError`` line that says what
went wrong and what to do about it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .errors import DownloadError
from .files import sha256_file  # noqa: F401  (callers import it from here too)

CHUNK = 1 << 16
USER_AGENT = "seglite (python urllib)"
DEADLINE = 900.0  # seconds for a whole download: a server trickling bytes cannot hold us
STALE_PART = 3600.0  # a partial file this old belongs to a download that died


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib's default also follows ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.URLError(f"refused a redirect to a {scheme or 'relative'}:// URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _hint(dest: Path) -> str:
    return (
        f"check the network or set SEGLITE_ZOO_MIRROR, or place {dest.name} in $SEGLITE_MODEL_DIR"
    )


def _fail(url: str, dest: Path, what: str) -> DownloadError:
    return DownloadError(f"download of {url} failed: {what}; {_hint(dest)}")


def _describe(exc: BaseException, timeout: float) -> str:
    """A short human reason for a network/file error (urllib wraps them in several layers)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".rstrip()
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)
        exc = exc.reason
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({len(exc.partial)} bytes in the last read)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    *,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 30,
    deadline: float = DEADLINE,
) -> Path:
    """Download ``url`` to ``dest`` if and only if its sha256 is ``sha256``; return ``dest``.

    ``size`` (bytes), when known, is the length that counts: a server announcing or sending
    another is refused before it can fill the disk. ``timeout`` bounds each wait for data,
    ``deadline`` the whole transfer. ``progress`` shows a tqdm bar on a terminal.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(dest)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DownloadError(
            f"cannot write to {dest.parent}: {_describe(exc, timeout)}; "
            f"set SEGLITE_CACHE_DIR to a writable folder, or place {dest.name} in "
            f"$SEGLITE_MODEL_DIR"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, received, expected = _fetch(
                url, out, size, progress, timeout, dest, time.monotonic() + deadline
            )
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and received != expected:
            raise _fail(url, dest, f"truncated transfer ({received} of {expected} bytes)")
        if digest != sha256.lower():
            raise _fail(
                url,
                dest,
                f"sha256 mismatch (got {digest[:12]}..., expected {sha256[:12]}..., "
                f"{received} bytes)",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        # Reached with the temp file still present only on failure (or Ctrl-C).
        tmp.unlink(missing_ok=True)
    return dest


def _remove_stale_parts(dest: Path) -> None:
    """Delete partial files that killed downloads of ``dest`` left behind (old ones only:
    a fresh one may be another process's download in progress)."""
    now = time.time()
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART:
                part.unlink()
        except OSError:
            pass


def _fetch(url, out, size, progress, timeout, dest, end) -> tuple[str, int, int | None]:
    """Stream the body into ``out``; return (sha256 hex, bytes received, expected bytes)."""
    h = hashlib.sha256()
    received = 0
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            announced = int(length) if length and length.isdigit() else None
            if size is not None and announced is not None and announced != size:
                raise _fail(url, dest, f"server announces {announced} bytes, expected {size}")
            expected = size if size is not None else announced
            show = progress and sys.stderr is not None and sys.stderr.isatty()
            with tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not show,
                leave=False,
            ) as bar:
                while True:
                    if time.monotonic() > end:
                        raise _fail(url, dest, f"not finished within {round(end - start):g} s")
                    try:
                        block = resp.read1(CHUNK)  # returns after each arrival: deadline checks
                    except http.client.IncompleteRead as exc:
                        received += len(exc.partial)
                        break
                    if not block:
                        break
                    h.update(block)
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
                    if expected is not None and received > expected:
                        raise _fail(url, dest, f"server sent more than {expected} bytes")
    except DownloadError:
        raise
    except ValueError as exc:  # urlopen on a malformed URL ("unknown url type")
        raise _fail(url, dest, str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        raise _fail(url, dest, _describe(exc, timeout)) from None
    return h.hexdigest(), received, expected
