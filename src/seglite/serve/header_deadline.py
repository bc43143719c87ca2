"""A deadline for request headers, which uvicorn does not have.

uvicorn bounds an idle keep-alive connection, and seglite bounds the upload body (the
read timeout), but a client that opens a connection and sends its request line and
headers a byte at a time, or nothing at all, holds its connection for ever: a few
hundred of them fill the connection cap (slowloris). This protocol gives every request
``header_timeout`` seconds from its connection (or from its first byte on a kept-alive
connection) to complete its headers, then closes the connection with a 408.

It is uvicorn's own h11 protocol with one timer, so every other behaviour (keep-alive,
limits, WebSocket upgrades, shutdown) is uvicorn's; h11 says when the headers are in:
its view of the client stays IDLE until a whole request head has been parsed.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_BODY = b'{"detail":"request headers not received in time (408)"}\n'
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


DEFAULT_HEADER_TIMEOUT = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request heads.

    The deadline is the uvicorn Config's ``header_timeout`` attribute (seconds), set by
    ``seglite serve``: a module-level class and a plain attribute, so that the Config
    pickles into the processes of ``--processes N``."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self._deadline is not None and self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in: the body has the read timeout

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        timeout = getattr(self.config, "header_timeout", DEFAULT_HEADER_TIMEOUT)
        self._deadline = self.loop.call_later(timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()
