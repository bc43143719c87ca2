"""Reading the upload: content type checked, size refused from the headers, then counted
while the body streams (chunked bodies declare no length), multipart or raw."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from ..errors import OptionError
from .config import MiB
from .errors import MalformedRequest, UnsupportedMedia, UploadTooLarge

MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and option fields around the file


def body_kind(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return "multipart"
    if ctype in ("", "application/octet-stream") or ctype.startswith("image/"):
        return "raw"
    raise UnsupportedMedia(
        f"unsupported Content-Type {ctype!r}: send multipart/form-data with the image in a "
        "'file' field, or the image itself as the body with Content-Type image/* or "
        "application/octet-stream"
    )


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"upload larger than the limit of {limit / MiB:g} MiB (the server's --max-upload-mb)"
    )


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse from the headers alone, before reading a byte of the body."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise MalformedRequest(f"Content-Length {declared!r} is not a number") from None
    if length > limit:
        raise _too_large(limit)


async def read_raw(request: Request, limit: int) -> bytearray:
    """The body, refused as soon as it passes the limit (chunked bodies declare no length)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit)
    return buf


async def read_multipart(request: Request, limit: int) -> tuple[bytes, list[tuple[str, str]], str]:
    """(image bytes, option fields, file name) from a multipart body, counted while streaming."""
    seen = 0
    receive = request.receive

    async def limited_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit + MULTIPART_SLACK:
                raise _too_large(limit)
        return message

    counted = Request(request.scope, limited_receive)
    try:
        form = await counted.form(max_files=1, max_fields=16)
    except (MultiPartException, StarletteHTTPException) as exc:
        detail = getattr(exc, "message", None) or getattr(exc, "detail", "")
        raise MalformedRequest(f"malformed multipart body: {detail}") from None
    try:
        upload = None
        fields: list[tuple[str, str]] = []
        for key, value in form.multi_items():
            if key == "file":
                upload = value
            elif isinstance(value, str):
                fields.append((key, value))
            else:
                raise OptionError(f"{key}: unexpected file; send the image in the 'file' field")
        if upload is None:
            raise OptionError("file: missing; send the image in a multipart field named 'file'")
        if not isinstance(upload, UploadFile):
            raise OptionError("file: must be a file upload, not a text field")
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/octet-stream" and not ctype.startswith("image/"):
            raise UnsupportedMedia(f"the uploaded file is {ctype!r}, not an image")
        data = await upload.read()
        if len(data) > limit:
            raise _too_large(limit)
        return data, fields, upload.filename or ""
    finally:
        await form.close()
