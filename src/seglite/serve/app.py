"""The HTTP service: a FastAPI app factory with the /v1 API, health probes and the web page.

The layer only formats: decoding, inference and pictures are the library's (``load_image``,
``Segmenter``, ``viz``). What it adds is what a network service needs: upload limits checked
before and while reading, content-type checks, per-request options validated into one model,
inference in worker threads behind a bounded queue (``pool.Service``), and every error as JSON
``{"error": code, "detail": message}`` without a traceback.

Image outputs (mask, overlay, confidence) come back as the PNG itself (``image/png``, summary
in ``X-Seglite-*`` headers) so ``curl -o out.png`` works; with ``embed=true`` they come back as
JSON with the PNG base64-encoded in ``image``, which is what the web page uses.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__, viz
from ..errors import (
    ImageError,
    ImageFormatError,
    ImageTooLargeError,
    MissingExtraError,
    ModelError,
    OptionError,
    SegliteError,
    require,
)
from ..image import load_image, resize
from ..result import SegmentationResult
from ..segmenter import Segmenter
from . import exposure
from .pool import ModelPool, Overloaded, Service, available_cpus

log = logging.getLogger("seglite.serve")
STATIC = Path(__file__).with_name("static")
MiB = 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and option fields around the file
CONFIDENCE_BUDGET = 128 * MiB  # float32 bytes for all classes' probability maps, per request
DEFAULT_MAX_PIXELS = 16_000_000  # a 16 MP photo; bounds decode and overlay memory per request
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


# -- configuration -----------------------------------------------------------------------------


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
    max_pixels: int = DEFAULT_MAX_PIXELS
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


# -- errors ------------------------------------------------------------------------------------


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


def _install_error_handlers(app: FastAPI) -> None:
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
        return _error(422, "invalid_option", _describe_errors(exc.errors()))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody is listening; keep the log quiet

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal server error; the server log has the details")


class _SecurityHeaders:
    """Pure ASGI middleware (no body buffering): headers every response should carry."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- request options ---------------------------------------------------------------------------


class SegmentOptions(BaseModel):
    """Options of POST /v1/segment, from the query string or multipart form fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    model: str | None = Field(
        None, description="model name from GET /v1/models (default: the first)"
    )
    output: Literal["json", "mask", "overlay", "confidence"] = Field(
        "json",
        description="json: summary only; mask: palette PNG of class indices; overlay: the image "
        "with classes painted; confidence: 8-bit PNG of one class's probability (needs class)",
    )
    class_: str | None = Field(
        None, alias="class", description="class name or index, for output=confidence"
    )
    alpha: float = Field(0.55, ge=0.0, le=1.0, description="overlay opacity, 0..1")
    accurate: bool = Field(
        False, description="tiled multi-scale, mirrored inference: slower, sharper"
    )
    legend: bool = Field(False, description="draw a legend beside the overlay")
    embed: bool = Field(
        False, description="return image outputs as JSON with the PNG base64-encoded in `image`"
    )

    @model_validator(mode="after")
    def _class_goes_with_confidence(self) -> SegmentOptions:
        if self.output == "confidence" and not self.class_:
            raise ValueError("output=confidence needs class=<name or index>, e.g. class=person")
        if self.class_ and self.output != "confidence":
            raise ValueError("class is only used with output=confidence")
        return self


_OPTION_NAMES = tuple((f.alias or name) for name, f in SegmentOptions.model_fields.items())


def _describe_errors(errors: Any) -> str:
    """Pydantic's error list as one line a user can act on."""
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = f"unknown option (known: {', '.join(_OPTION_NAMES)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid options"


def _parse_options(items: list[tuple[str, str]]) -> SegmentOptions:
    raw: dict[str, str] = {}
    for key, value in items:
        if key in raw:
            raise OptionError(f"{key}: given more than once")
        raw[key] = value
    try:
        return SegmentOptions.model_validate(raw)
    except ValidationError as exc:
        raise OptionError(_describe_errors(exc.errors())) from None


def _resolve(
    service: Service, items: list[tuple[str, str]]
) -> tuple[SegmentOptions, ModelPool, int | None]:
    """Options, the model's pool and the confidence class index, or a 422."""
    opts = _parse_options(items)
    pool = service.pool(opts.model)
    return opts, pool, _class_index(pool, opts)


def _class_index(pool: ModelPool, opts: SegmentOptions) -> int | None:
    if opts.output != "confidence":
        return None
    if not pool.confidence:
        raise OptionError(
            f"{pool.name} outputs class ids only (an ArgMax): output=confidence is not available"
        )
    name = opts.class_ or ""
    n = len(pool.label_set)
    if name.isascii() and name.isdigit():
        if int(name) < n:
            return int(name)
        raise OptionError(f"class index {name} is out of range: {pool.name} has {n} classes")
    try:
        return pool.label_set.index(name)
    except KeyError:
        raise OptionError(
            f"{pool.name} has no class {name!r}; GET /v1/models lists its labels"
        ) from None


# -- reading the upload ------------------------------------------------------------------------


def _body_kind(request: Request) -> str:
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


def _check_declared_length(request: Request, limit: int) -> None:
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


async def _read_raw(request: Request, limit: int) -> bytearray:
    """The body, refused as soon as it passes the limit (chunked bodies declare no length)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit)
    return buf


async def _read_multipart(request: Request, limit: int) -> tuple[bytes, list[tuple[str, str]], str]:
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


# -- the work done in a worker thread ----------------------------------------------------------


@dataclass
class Rendered:
    """What one request produced: the body to send and the summary for headers."""

    body: bytes
    media_type: str
    summary: dict[str, Any]


def _confidence_png(
    seg: Segmenter, data: bytes, index: int
) -> tuple[SegmentationResult, bytes, tuple[int, int]]:
    """One class's probability as an 8-bit PNG at the original size, in bounded time and memory.

    All C probability maps at full size cost 4*C bytes a pixel (1 GB for a 12 MP photo) and
    seconds of upsampling, so they are computed at twice the model's resolution per side (less
    if CONFIDENCE_BUDGET says so) and only the class asked for is brought to full size. The
    model's own output is that coarse, so nothing is lost: bilinear of bilinear is bilinear.
    """
    t0 = time.perf_counter()
    n = len(seg.label_set)
    h_in, w_in = seg.input_size
    budget = max(h_in * w_in, min(4 * h_in * w_in, CONFIDENCE_BUDGET // (4 * n)))
    side = int(math.sqrt(budget))
    loaded = load_image(data, max_pixels=seg.max_pixels, min_size=(side, side))
    full = loaded.size
    img = loaded.image
    if full[0] * full[1] > budget:
        s = math.sqrt(budget / (full[0] * full[1]))
        img = resize(img, (max(1, round(full[0] * s)), max(1, round(full[1] * s))))
    elif img.size != full:
        img = resize(img, full)
    decode_ms = (time.perf_counter() - t0) * 1e3
    result = seg.segment(img)
    result.timings.decode += decode_ms
    t1 = time.perf_counter()
    prob = result.confidence(index)
    u8 = np.clip(prob * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = Image.fromarray(u8, mode="L")
    if out.size != full:
        out = out.resize(full, Image.Resampling.BILINEAR)
    result.timings.postprocess += (time.perf_counter() - t1) * 1e3
    return result, viz.png_bytes(out), full


def _refuse_bombs(data: bytes, max_pixels: int | None) -> None:
    """Check the pixel count from the file header alone, before anything decodes.

    ``load_image`` checks too, but only after ``getexif()``, which for a PNG decodes the whole
    image: a 110 KB PNG declaring 30000x30000 would cost ~1 GB and seconds before the check.
    """
    if max_pixels is None:
        return
    from ..image import open_image

    try:
        with open_image(io.BytesIO(data), max_pixels=max_pixels) as im:  # the header only
            w, h = im.size
    except ImageTooLargeError:
        raise
    except Exception:  # undecodable or refused: load_image will say why, in its words
        return
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(the server's --max-pixels)"
        )


def _render(
    seg: Segmenter,
    data: bytes,
    opts: SegmentOptions,
    class_index: int | None,
    started: float,
    admitted: float,
) -> Rendered:
    """Decode, segment, draw and encode: everything CPU-bound, off the event loop."""
    queue_ms = (time.perf_counter() - admitted) * 1e3
    _refuse_bombs(data, seg.max_pixels)
    png: bytes | None = None
    encode_ms = 0.0
    if opts.output == "confidence":
        assert class_index is not None
        result, png, size = _confidence_png(seg, data, class_index)
    else:
        t0 = time.perf_counter()
        picture = load_image(data, max_pixels=seg.max_pixels).image  # decoded once, for both
        decode_ms = (time.perf_counter() - t0) * 1e3
        result = seg.segment(picture)
        result.timings.decode += decode_ms
        size = result.size
        t = time.perf_counter()
        if opts.output == "overlay":
            drawn = viz.overlay(picture, result, alpha=opts.alpha, legend=opts.legend)
            del picture  # the photo's memory is free before the PNG is encoded
            png = viz.png_bytes(drawn)
        elif opts.output == "mask":
            png = viz.png_bytes(viz.mask_image(result))
        encode_ms = (time.perf_counter() - t) * 1e3
    summary = result.summary()
    summary.pop("source", None)
    timings = summary.pop("timings_ms")
    timings.update(queue=round(queue_ms, 3), encode=round(encode_ms, 3))
    summary.update(
        width=size[0],
        height=size[1],
        output=opts.output,
        accurate=seg.accurate,
        labels=list(result.labels),
        timings_ms=timings,
    )
    if png is None or opts.embed:
        if png is not None:
            summary["image"] = base64.b64encode(png).decode("ascii")
            summary["image_type"] = "image/png"
        timings["server"] = round((time.perf_counter() - started) * 1e3, 3)
        body = json.dumps(summary, separators=(",", ":")).encode()
        return Rendered(body, "application/json", summary)
    timings["server"] = round((time.perf_counter() - started) * 1e3, 3)
    return Rendered(png, "image/png", summary)


def _server_timing(timings: dict[str, Any]) -> str:
    keys = ("queue", "decode", "preprocess", "invoke", "postprocess", "encode", "server")
    return ", ".join(f"{k};dur={timings[k]:.1f}" for k in keys if k in timings)


def _png_headers(summary: dict[str, Any]) -> dict[str, str]:
    classes = {c["label"]: c["fraction"] for c in summary["classes"]}
    return {
        "X-Seglite-Model": exposure.header_safe(summary["model"]),
        "X-Seglite-Size": f"{summary['width']}x{summary['height']}",
        "X-Seglite-Classes": json.dumps(classes, separators=(",", ":"), ensure_ascii=True),
        "Content-Disposition": f'inline; filename="{summary["output"]}.png"',
    }


# -- response models (for the OpenAPI schema) --------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. bad_image, too_large")
    detail: str = Field(description="what went wrong and what to do")


class ClassShare(BaseModel):
    index: int
    label: str
    fraction: float = Field(description="share of the image's pixels, 0..1")
    color: str = Field(description="#rrggbb, as in the mask and overlay")


class SegmentTimings(BaseModel):
    decode: float
    preprocess: float
    invoke: float
    postprocess: float
    total: float = Field(description="decode + preprocess + invoke + postprocess")
    invocations: int
    queue: float = Field(description="waiting for a free worker")
    encode: float = Field(description="drawing and PNG encoding")
    server: float = Field(description="from the request's arrival to the response body")


class SegmentResponse(BaseModel):
    model: str
    width: int
    height: int
    output: str
    accurate: bool
    classes: list[ClassShare] = Field(description="classes present, largest share first")
    labels: list[str] = Field(description="all the model's labels; mask pixel values index this")
    timings_ms: SegmentTimings
    image: str | None = Field(None, description="base64 PNG (image outputs with embed=true)")
    image_type: str | None = None


class ModelInfo(BaseModel):
    name: str
    description: str
    file: str
    input_size: list[int] = Field(description="[height, width]")
    classes: int
    labels: list[str]
    colors: list[str]
    output: str = Field(description="logits (class scores) or argmax (class ids only)")
    confidence: bool = Field(description="whether output=confidence is available")
    quantized: bool | None
    workers: int
    threads: int
    default: bool


class ModelsResponse(BaseModel):
    default: str
    accurate_scales: list[float]
    unpainted: list[str] = Field(description="class names overlays leave uncoloured")
    max_upload_mb: float
    max_pixels: int
    models: list[ModelInfo]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, saturated (every place taken), starting or draining")
    models: list[str]
    workers: int
    queue: int
    capacity: int
    in_progress: int
    running: int
    served: int
    rejected: int


def _segment_openapi() -> dict[str, Any]:
    props = SegmentOptions.model_json_schema(by_alias=True)["properties"]
    params = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": spec.get("description", ""),
            "schema": {k: v for k, v in spec.items() if k not in ("title", "description")},
        }
        for name, spec in props.items()
    ]
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}, **props},
    }
    return {
        "parameters": params,
        "requestBody": {
            "required": True,
            "description": "The image: a multipart upload (field `file`, options as fields or "
            "in the query) or the raw image as the body (options in the query).",
            "content": {
                "multipart/form-data": {"schema": form},
                "image/*": binary,
                "application/octet-stream": binary,
            },
        },
    }


_SEGMENT_DOC = """Segment one image.

Send it as multipart/form-data (`curl -F file=@photo.jpg`) or as the raw body
(`curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'`). Options go in the query
string, or as form fields beside the file.

`output=json` answers the summary. `mask`, `overlay` and `confidence` answer the PNG itself
(`image/png`; the summary is in the `X-Seglite-Model`, `X-Seglite-Size` and
`X-Seglite-Classes` headers, timings in `Server-Timing`), or, with `embed=true`, the JSON
summary with the PNG base64-encoded in `image`.

The mask is a palette PNG: each pixel's value is an index into `labels`, its colour the
class colour. The confidence PNG is 8-bit grey: 255 means probability 1.
"""


# -- the app -----------------------------------------------------------------------------------


def create_app(config: ServeConfig | None = None, **overrides: Any) -> FastAPI:
    """Load the models (once; errors surface here, before serving) and build the app."""
    if config is None:
        config = ServeConfig(**overrides)
    elif overrides:
        raise TypeError("pass either a ServeConfig or keyword overrides, not both")
    service = Service(
        list(config.models),
        workers=config.workers,
        threads=config.threads,
        queue=config.queue,
        max_pixels=config.max_pixels,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        log.info(
            "seglite serve ready: models %s, %d workers x %d threads, queue %d",
            ", ".join(service.pools),
            config.workers,
            config.threads,
            config.queue,
        )
        try:
            yield
        finally:
            import anyio.to_thread

            # Requests in flight have finished (the server waits for them before this runs);
            # wait for their worker threads too, then free the interpreters.
            await anyio.to_thread.run_sync(service.close, config.shutdown_timeout)

    # fastapi-offline: FastAPI with Swagger UI and ReDoc served from its own files, so /docs
    # works where FastAPI's default CDN cannot be reached.
    app = require("fastapi_offline", "serve").FastAPIOffline(
        static_url="/docs/assets",
        title="seglite",
        version=__version__,
        summary="DeepLab semantic segmentation over HTTP",
        description="Upload an image, get class masks, overlays, per-class shares and timings. "
        "The web page is at `/`.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.config = config
    app.add_middleware(_SecurityHeaders)
    exposure.install(
        app,
        api_key=config.api_key,
        allowed_hosts=config.allowed_hosts,
        cors_origins=config.cors_origins,
    )
    _install_error_handlers(app)
    limit = config.max_upload_bytes

    error_docs: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "undecodable image or malformed body"},
        408: {"model": ErrorBody, "description": "the upload was sent too slowly"},
        413: {"model": ErrorBody, "description": "upload or image (pixels) over the limit"},
        415: {"model": ErrorBody, "description": "not an image content type"},
        422: {"model": ErrorBody, "description": "bad option, unknown model or class"},
        503: {"model": ErrorBody, "description": "queue full or shutting down (Retry-After)"},
    }

    @app.post(
        "/v1/segment",
        summary="Segment an image",
        description=_SEGMENT_DOC,
        response_class=Response,
        responses={
            200: {
                "description": "JSON summary, or the PNG for image outputs",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/SegmentResponse"}
                    },
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            **error_docs,
        },
        openapi_extra=_segment_openapi(),
        tags=["segmentation"],
    )
    async def segment(request: Request) -> Response:
        started = time.perf_counter()
        kind = _body_kind(request)
        body_limit = limit + (MULTIPART_SLACK if kind == "multipart" else 0)
        _check_declared_length(request, body_limit)
        query = list(request.query_params.multi_items())
        if kind == "raw":  # every option is known now: refuse bad ones before reading
            _resolve(service, query)
        # The upload is received first, in its own bounded set of places; an inference
        # place is taken only once the whole image is in.
        with service.receiving(config.max_uploads):
            try:
                with anyio.fail_after(config.read_timeout):
                    if kind == "multipart":
                        data, fields, _ = await _read_multipart(request, limit)
                    else:
                        data, fields = bytes(await _read_raw(request, limit)), []
            except TimeoutError:
                raise UploadTimeout(
                    f"the upload took longer than {config.read_timeout:g} s; send it faster"
                ) from None
        opts, pool, class_index = _resolve(service, query + fields)
        if not data:
            raise ImageError("empty upload: the request carried no image bytes")
        with service.admit():
            admitted = time.perf_counter()
            rendered = await service.run(
                pool,
                lambda seg: _render(seg, data, opts, class_index, started, admitted),
                accurate=opts.accurate,
                confidence=opts.output == "confidence",
            )
        summary = rendered.summary
        headers = {
            "Cache-Control": "no-store",
            "Server-Timing": _server_timing(summary["timings_ms"]),
        }
        if rendered.media_type == "image/png":
            headers.update(_png_headers(summary))
        return Response(rendered.body, media_type=rendered.media_type, headers=headers)

    @app.get("/v1/models", response_model=ModelsResponse, tags=["segmentation"])
    async def models() -> dict[str, Any]:
        """The models this server runs, with their labels and colours."""
        from ..segmenter import ACCURATE_SCALES
        from ..viz import UNCOLOURED

        return {
            "default": service.default,
            "accurate_scales": list(ACCURATE_SCALES),
            "unpainted": sorted(UNCOLOURED),
            "max_upload_mb": config.max_upload_mb,
            "max_pixels": config.max_pixels,
            "models": [
                {**p.info(), "default": name == service.default}
                for name, p in service.pools.items()
            ],
        }

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "saturated, starting or draining"}},
        tags=["operations"],
    )
    async def readyz() -> Response:
        """Readiness: models loaded and not shutting down; with live load figures."""
        status = service.status()
        body = {"status": status, "models": list(service.pools), **service.stats()}
        return JSONResponse(body, status_code=200 if status == "ready" else 503)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _register_schemas(app, [SegmentResponse, ErrorBody])
    return app


def _register_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Put models referenced only from hand-written OpenAPI parts into components/schemas."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for m in models:
            js = m.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps.setdefault(m.__name__, js)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
