"""The HTTP service: a FastAPI app factory with the /v1 API, health probes and the web page.

The layer only formats: decoding, inference and pictures are the library's (``load_image``,
``Segmenter``, ``viz``). What it adds is what a network service needs, one module each:
``config`` (ServeConfig), ``upload`` (limits checked before and while reading, content
types), ``options`` (per-request options validated into one model), ``pool`` (inference in
worker threads behind a bounded queue), ``render`` (the work in the thread), ``errors``
(every error as JSON ``{"error": code, "detail": message}`` without a traceback),
``schema`` (OpenAPI) and ``exposure`` (API key, hosts, CORS, security headers). This file
wires them into routes. To add an HTTP output: ``options.RequestOptions.output`` and a
branch in ``render.render``.

Image outputs (mask, overlay, confidence) come back as the PNG itself (``image/png``, summary
in ``X-Seglite-*`` headers) so ``curl -o out.png`` works; with ``embed=true`` they come back as
JSON with the PNG base64-encoded in ``image``, which is what the web page uses.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import ImageError, require
from . import exposure, live, render
from .config import REQUEST_MAX_PIXELS, ServeConfig, default_workers
from .errors import UploadTimeout, install_error_handlers
from .options import resolve
from .pool import Service
from .schema import (
    SEGMENT_DOC,
    ErrorBody,
    Health,
    ModelsResponse,
    Readiness,
    SegmentResponse,
    register_schemas,
    segment_openapi,
)
from .upload import MULTIPART_SLACK, body_kind, check_declared_length, read_multipart, read_raw

__all__ = ["REQUEST_MAX_PIXELS", "ServeConfig", "create_app", "default_workers"]

log = logging.getLogger("seglite.serve")
STATIC = Path(__file__).with_name("static")
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _drain_on_exit_signals(service: Service) -> None:
    """/readyz answers 503 as soon as shutdown begins, in every server process.

    uvicorn installs its SIGINT/SIGTERM handlers before the lifespan starts; this chains
    onto them. Only a served app's lifespan runs in the main thread (a TestClient's does
    not, and leaves signals alone)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous) -> None:
            service.draining = True
            previous(signum, frame)

        signal.signal(sig, handler)


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
        _drain_on_exit_signals(service)
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
    app.add_middleware(exposure.SecurityHeaders)
    exposure.install(
        app,
        api_key=config.api_key,
        allowed_hosts=config.allowed_hosts,
        cors_origins=config.cors_origins,
    )
    install_error_handlers(app)
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
        description=SEGMENT_DOC,
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
        openapi_extra=segment_openapi(),
        tags=["segmentation"],
    )
    async def segment(request: Request) -> Response:
        started = time.perf_counter()
        kind = body_kind(request)
        body_limit = limit + (MULTIPART_SLACK if kind == "multipart" else 0)
        check_declared_length(request, body_limit)
        query = list(request.query_params.multi_items())
        if kind == "raw":  # every option is known now: refuse bad ones before reading
            resolve(service, query)
        # The upload is received first, in its own bounded set of places; an inference
        # place is taken only once the whole image is in.
        with service.receiving(config.max_uploads):
            try:
                with anyio.fail_after(config.read_timeout):
                    if kind == "multipart":
                        data, fields, _ = await read_multipart(request, limit)
                    else:
                        data, fields = bytes(await read_raw(request, limit)), []
            except TimeoutError:
                raise UploadTimeout(
                    f"the upload took longer than {config.read_timeout:g} s; send it faster"
                ) from None
        opts, pool, class_index = resolve(service, query + fields)
        if not data:
            raise ImageError("empty upload: the request carried no image bytes")
        with service.admit():
            admitted = time.perf_counter()
            rendered = await service.run(
                pool,
                lambda seg: render.render(seg, data, opts, class_index, started, admitted),
            )
        summary = rendered.summary
        headers = {
            "Cache-Control": "no-store",
            "Server-Timing": render.server_timing(summary["timings_ms"]),
        }
        if rendered.media_type == "image/png":
            headers.update(render.png_headers(summary))
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

    live.register(app, service, config)  # the /v1/live WebSocket (serve/live.py)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    register_schemas(app, [SegmentResponse, ErrorBody])
    return app
