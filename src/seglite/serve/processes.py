"""``seglite serve --processes N``: N server processes on one listening socket.

In one process, HTTP parsing, multipart handling and PNG encoding hold the GIL beside
inference, so the second core does HTTP rather than segmentation. N processes, each a
whole service (its models, worker threads, queue and limits), accept from the socket
the parent bound; the kernel spreads connections between them. The processes are
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


def run_processes(processes: int, config: ServeConfig, sock, uvicorn_options: dict) -> None:
    """Serve ``config`` from ``processes`` spawned processes on the bound ``sock``."""
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
    Multiprocess(server_config, sockets=[sock]).run()
