"""Every error as JSON ``{"error": code, "detail": message}`` with its HTTP status, and never
a traceback: the service's own error types, the code of each, the handlers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..errors import (
    ImageError,
    ImageFormatError,
    ImageTooLargeError,
    MissingExtraError,
    ModelError,
    OptionError,
    SegliteError,
)
from .options import describe_errors
from .pool import Overloaded

log = logging.getLogger("seglite.serve")


class UploadTooLarge(SegliteError):
    http_status = 413


class UploadTimeout(SegliteError):
    http_status = 408


class UnsupportedMedia(SegliteError):
    http_status = 415


class MalformedRequest(SegliteError):
    http_status = 400


_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (UploadTooLarge, "too_large"),
    (ImageTooLargeError, "too_large"),
    (ImageFormatError, "unsupported_media_type"),
    (ImageError, "bad_image"),
    (UnsupportedMedia, "unsupported_media_type"),
    (UploadTimeout, "timeout"),
    (MalformedRequest, "bad_request"),
    (Overloaded, "overloaded"),
    (OptionError, "invalid_option"),
    (ModelError, "model_error"),
    (MissingExtraError, "missing_extra"),
)


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SegliteError)
    async def seglite_error(request: Request, exc: SegliteError) -> Response:
        code = next((c for cls, c in _CODES if isinstance(exc, cls)), "error")
        headers = {"Retry-After": "1"} if exc.http_status == 503 else None
        return _error(exc.http_status, code, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_option", describe_errors(exc.errors()))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody is listening; keep the log quiet

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal server error; the server log has the details")
