"""What ``seglite serve`` can set, validated in one frozen ServeConfig before anything loads.

The service's pixel limit is a memory budget per request in flight (decode, mask and overlay
at 7 bytes a pixel, times workers + queue), far below the library's decompression-bomb
limit (image.DEFAULT_MAX_PIXELS, 100 MP) that a single command-line run can afford.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OptionError
from .pool import available_cpus

MiB = 1024 * 1024
REQUEST_MAX_PIXELS = 16_000_000  # a 16 MP photo; bounds decode and overlay memory per request


def default_workers() -> int:
    return min(4, available_cpus())


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``seglite serve`` can set; validated here so the app never runs misconfigured."""

    models: tuple[str, ...] = ("deeplabv3",)
    workers: int = field(default_factory=default_workers)  # concurrent inferences
    threads: int = 1  # interpreter threads per inference
    queue: int = 16  # requests that may wait for a worker before 503
    max_upload_mb: float = 20.0
    max_pixels: int = REQUEST_MAX_PIXELS
    read_timeout: float = 60.0  # seconds a client may take to send its upload
    shutdown_timeout: float = 30.0  # seconds to wait for worker threads at shutdown
    # Uploads being received at once. None holds an inference place, and a slow sender
    # holds only the bytes it has sent, so this is as high as the connection cap: slow
    # clients then run into --max-connections (503) and --read-timeout (408), not into
    # a lockout of everyone else.
    max_uploads: int = 256
    max_connections: int = 256  # open connections; uvicorn answers 503 beyond (--max-connections)
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    api_key: str | None = None  # required as X-API-Key on /v1/* when set
    allowed_hosts: tuple[str, ...] = ("*",)  # Host header allowlist (serve: loopback names)
    cors_origins: tuple[str, ...] = ()  # origins other than the page's own that may call

    def __post_init__(self) -> None:
        checks = (
            (self.workers >= 1, f"workers must be at least 1, got {self.workers}"),
            (self.threads >= 1, f"threads must be at least 1, got {self.threads}"),
            (self.queue >= 0, f"queue must be 0 or more, got {self.queue}"),
            (
                0 < self.max_upload_mb <= 1024,
                f"max upload must be between 0 and 1024 MB, got {self.max_upload_mb}",
            ),
            (self.max_pixels >= 1, f"max pixels must be positive, got {self.max_pixels}"),
            (self.read_timeout > 0, f"read timeout must be positive, got {self.read_timeout}"),
            (self.max_uploads >= 1, f"max uploads must be at least 1, got {self.max_uploads}"),
            (
                self.max_connections >= 2,
                f"max connections must be at least 2, got {self.max_connections}",
            ),
            (self.keep_alive > 0, f"keep-alive must be positive, got {self.keep_alive}"),
        )
        for ok, message in checks:
            if not ok:
                raise OptionError(message)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MiB)
