"""Live camera over one WebSocket: ``/v1/live``, frames in, masks or effects out.

Per-frame HTTP requests pay headers, multipart and a connection slot each time; a live view
wants one persistent connection. The protocol:

1. the client opens ``/v1/live`` and sends one text message, the options as JSON (the names
   of POST /v1/segment: ``model``, ``output`` = mask | overlay | cutout | effect, ``effect``,
   ``classes``, ``feather``, ``invert``, ``accurate``...; output defaults to mask; plus ``api_key`` when the server
   has one, since browsers cannot set headers on a WebSocket);
2. the server answers ``{"ready": true, "model": ..., "labels": [...]}`` (or
   ``{"error": ..., "detail": ...}`` and closes);
3. the client sends frames as binary messages (JPEG or PNG); for each frame it segments,
   the server sends a text message (the summary: classes, timings, ``frame``, ``dropped``)
   and then the PNG as a binary message.

Frames are never queued: while one is being segmented, a newer arrival replaces the waiting
one (``dropped`` counts them), so a camera faster than the server costs latency nothing.
The page sends its next frame when the previous answer came (one in flight), so in practice
nothing is dropped and the frame rate is what the server sustains.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import OptionError, SegliteError
from . import render
from .options import parse_options
from .pool import Overloaded, Service

LIVE_OUTPUTS = ("mask", "overlay", "cutout", "effect")
MAX_FRAME = 8 * 1024 * 1024  # bytes of one encoded frame


def register(app, service: Service, config) -> None:
    """Add the ``/v1/live`` WebSocket route to ``app``."""

    @app.websocket("/v1/live")
    async def live(ws: WebSocket) -> None:
        if not _origin_ok(ws, config):
            await ws.close(code=1008)
            return
        await ws.accept()
        try:
            opts, pool, class_index = await _hello(ws, service, config)
        except (SegliteError, ValueError, PermissionError) as exc:
            await _send_error(ws, exc)
            return
        except WebSocketDisconnect:
            return
        await _serve(ws, service, opts, pool, class_index)


def _origin_ok(ws: WebSocket, config) -> bool:
    """Refuse cross-site pages (a WebSocket is not covered by CORS): the Origin, when sent,
    must be this server's own or one of --cors-origin."""
    origin = ws.headers.get("origin")
    if not origin:
        return True  # not a browser
    host = ws.headers.get("host", "")
    own = {f"http://{host}", f"https://{host}"}
    return origin in own or origin in set(getattr(config, "cors_origins", ()) or ())


async def _hello(ws: WebSocket, service: Service, config):
    text = await ws.receive_text()
    try:
        raw = json.loads(text)
    except ValueError:
        raise OptionError("the first message must be the options as JSON") from None
    if not isinstance(raw, dict):
        raise OptionError("the first message must be a JSON object of options")
    key = raw.pop("api_key", None)
    if config.api_key and not (
        isinstance(key, str) and hmac.compare_digest(key.encode(), config.api_key.encode())
    ):
        raise PermissionError("this server needs an API key: send it as api_key")
    raw.setdefault("output", "mask")
    items = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items()]
    opts = parse_options(items)
    if opts.output not in LIVE_OUTPUTS:
        raise OptionError(f"live output must be one of {', '.join(LIVE_OUTPUTS)}")
    opts.effect_spec()
    opts = opts.model_copy(update={"embed": False})
    pool = service.pool(opts.model)
    await ws.send_text(
        json.dumps({"ready": True, "model": pool.name, "labels": list(pool.label_set.names)})
    )
    return opts, pool, None


async def _send_error(ws: WebSocket, exc: BaseException) -> None:
    code = "unauthorized" if isinstance(exc, PermissionError) else "invalid_option"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        await ws.send_text(json.dumps({"error": code, "detail": detail}))
        await ws.close(code=1008)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _serve(ws: WebSocket, service: Service, opts, pool, class_index) -> None:
    newest: dict[str, Any] = {"data": None, "frame": 0, "dropped": 0}
    arrived = anyio.Event()
    closed = False

    async def receive() -> None:
        nonlocal arrived, closed
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("bytes")
                if not data or len(data) > MAX_FRAME:
                    continue
                if newest["data"] is not None:
                    newest["dropped"] += 1  # never queue: the newer frame replaces it
                newest["data"] = data
                newest["frame"] += 1
                arrived.set()
        finally:
            closed = True
            arrived.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(receive)
        try:
            while True:
                await arrived.wait()
                arrived = anyio.Event()
                if closed:
                    break
                data, frame = newest["data"], newest["frame"]
                newest["data"] = None
                if data is None:
                    continue
                started = time.perf_counter()
                try:
                    with service.admit():
                        admitted = time.perf_counter()
                        rendered = await service.run(
                            pool,
                            lambda seg, d=data, t0=started, t1=admitted: render.render(
                                seg, d, opts, class_index, t0, t1
                            ),
                        )
                except Overloaded:
                    newest["dropped"] += 1
                    continue
                except SegliteError as exc:
                    summary = {"error": type(exc).__name__, "detail": str(exc), "frame": frame}
                    await ws.send_text(json.dumps(summary))
                    continue
                summary = dict(rendered.summary, frame=frame, dropped=newest["dropped"])
                await ws.send_text(json.dumps(summary, separators=(",", ":")))
                await ws.send_bytes(rendered.body)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            tg.cancel_scope.cancel()
