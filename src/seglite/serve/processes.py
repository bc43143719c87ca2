"""``seglite serve --processes N``: N server processes on one listening socket.

In one process, HTTP parsing, multipart handling and PNG encoding hold the GIL beside
inference, so the second core does HTTP rather than segmentation. N processes, each a
whole service (its models, worker threads, queue and limits), listens on the port with
its own ``SO_REUSEPORT`` socket, so the kernel hashes each new connection to one of
them. (One shared listening socket is not enough: asyncio accepts every pending
connection in a loop, so the first process to wake takes a whole burst of keep-alive
clients and the other sits idle; measured 1.04x for two processes.) The parent's
socket reserves the port, bound but never listening, so it is given no connection.
Where the kernel has no load-balancing ``SO_REUSEPORT`` (not Linux), the processes
share the parent's socket instead. The processes are
uvicorn's own ``Multiprocess`` supervisor's: it starts them (spawned, not forked:
interpreter thread pools do not survive a fork), pings them, replaces one that dies,
and passes SIGTERM on for a graceful stop; the parent loads no model.

Each process rebuilds the service from the ServeConfig the parent validated, which
travels in the environment (``SEGLITE_SERVE_CONFIG``, JSON): children inherit it, and
like the API key's own variable it is readable only by the service's user.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys

from .config import ServeConfig

CONFIG_ENV = "SEGLITE_SERVE_CONFIG"


def app_from_environment():
    """The app factory each process runs (uvicorn imports it by name)."""
    from .app import create_app

    raw = json.loads(os.environ[CONFIG_ENV])
    fields = {f.name: f for f in dataclasses.fields(ServeConfig)}
    config = ServeConfig(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in raw.items() if k in fields})  # fmt: skip
    return create_app(config)


def balances_by_port() -> bool:
    """Whether this kernel spreads connections over sockets sharing a port (Linux does)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _open_own_listener(family: int, address: tuple) -> socket.socket:
    """In each server process: its own socket on the port the parent reserved."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class _OwnListener:
    """Stands for the port in the supervisor; unpickled in a spawned process, it becomes
    that process's own ``SO_REUSEPORT`` socket (uvicorn hands every process the same
    socket list, so the per-process socket is made where the list arrives)."""

    def __init__(self, reserved: socket.socket):
        self.family = reserved.family
        self.address = reserved.getsockname()[:2]

    def __reduce__(self):
        return _open_own_listener, (self.family, self.address)


def run_processes(processes: int, config: ServeConfig, sock, uvicorn_options: dict) -> None:
    """Serve ``config`` from ``processes`` spawned processes on the port of the bound
    ``sock`` (bound with ``SO_REUSEPORT`` where :func:`balances_by_port`)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .header_deadline import HeaderDeadlineProtocol

    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    header_timeout = uvicorn_options.pop("header_timeout")
    server_config = uvicorn.Config(
        f"{__name__}:app_from_environment", factory=True, workers=processes,
        http=HeaderDeadlineProtocol, **uvicorn_options,
    )  # fmt: skip
    server_config.header_timeout = header_timeout
    reserved = sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) if balances_by_port() else 0
    sockets = [_OwnListener(sock)] if reserved else [sock]
    Multiprocess(server_config, sockets=sockets).run()
