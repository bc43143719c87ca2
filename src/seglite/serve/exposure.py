"""What stands between the service and a network it does not trust: an optional API key,
a Host allowlist (DNS rebinding against a local service), a CORS allowlist, and the
headers every response carries (nosniff, no referrer).

Hosts and CORS are Starlette's own middleware; the key check is ours (a constant-time
comparison of one header), applied to the API only so the page and the docs still load.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
PROTECTED = "/v1/"  # API routes; the page, /docs, /healthz and /readyz stay open


class _ApiKey:
    """401 for API requests without ``X-API-Key: <key>`` (or ``Authorization: Bearer <key>``)."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED):
            given = _presented_key(scope)
            if given is None or not hmac.compare_digest(given, self.key):
                body = json.dumps(
                    {
                        "error": "unauthorized",
                        "detail": "this server needs an API key: send it as X-API-Key",
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="seglite"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _presented_key(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            return value
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:]
    return None


def install(
    app,
    *,
    api_key: str | None,
    allowed_hosts: Sequence[str],
    cors_origins: Sequence[str],
) -> None:
    """Add the middleware a deployment asked for (outermost first: hosts, CORS, key)."""
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    if api_key:
        app.add_middleware(_ApiKey, key=api_key)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
            expose_headers=["X-Seglite-Model", "X-Seglite-Size", "X-Seglite-Classes"],
        )
    if list(allowed_hosts) != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))


def header_safe(text: str) -> str:
    """``text`` as an HTTP header value: non-ASCII and control characters percent-encoded
    (a model file named in Cyrillic used to break every image response)."""
    from urllib.parse import quote

    return quote(text, safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")


class SecurityHeaders:
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
