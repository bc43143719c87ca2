"""Errors a user can cause. Each carries a one-line message that says what to do.

The CLI prints ``str(error)`` without a traceback; the service maps the class to a 4xx.
"""

from __future__ import annotations


class SegliteError(Exception):
    """Base class: a problem with the user's input, options or environment."""

    http_status = 400


class ImageError(SegliteError):
    """The image cannot be decoded, is empty, or is too large."""

    http_status = 400


class ImageFormatError(ImageError):
    """A file format seglite does not decode (only an allowlist of raster formats is read)."""

    http_status = 415


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""

    http_status = 413


class ModelError(SegliteError):
    """The model file is missing, corrupt, or not a segmentation model."""

    http_status = 422


class ModelNotFoundError(ModelError):
    """Neither a zoo name nor an existing file."""


class DownloadError(ModelError):
    """A model download failed or its checksum did not match."""


class OptionError(SegliteError, ValueError):
    """A bad option value (threads 0, unknown backend, bad scale...)."""

    http_status = 422


class MissingExtraError(SegliteError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""

    http_status = 501


class DatasetError(SegliteError):
    """A dataset folder is missing files or has masks that do not fit the images."""


def require(module: str, extra: str):
    """Import an optional dependency or raise a one-line MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"{module} is not installed: pip install 'seglite[{extra}]'"
        ) from exc
