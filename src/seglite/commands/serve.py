"""seglite serve: the HTTP API and the web page, on uvicorn (needs ``seglite[serve]``)."""

from __future__ import annotations

import argparse
import sys

from ..cli import int_at_least, positive_int


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="HTTP API and web page for segmentation",
        description="Serve POST /v1/segment, GET /v1/models, /healthz, /readyz, the web page at / "
        "and the OpenAPI docs at /docs. Inference runs in worker threads, one interpreter each; "
        "requests beyond workers + queue get 503 at once.",
    )
    p.add_argument(
        "--model",
        "-m",
        action="append",
        metavar="NAME|FILE",
        help="zoo name or model file; repeat to serve several (the first is the default; "
        "default: deeplabv3)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="concurrent inferences, i.e. interpreters per model, in this one process "
        "(default: CPUs, at most 4)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=1, help="threads per interpreter (default: 1)"
    )
    p.add_argument(
        "--queue",
        type=int_at_least(0),
        default=16,
        help="requests that may wait for a worker before the server answers 503 (default: 16)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=20.0,
        help="largest accepted upload in MiB; larger ones get 413 (default: 20)",
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        help="largest accepted image in pixels; larger ones get 413 (default: 16000000)",
    )
    p.add_argument(
        "--read-timeout",
        type=_positive_float,
        default=60.0,
        help="seconds a client may take to send its upload; slower ones get 408 (default: 60)",
    )
    p.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="server processes sharing the port, each with its own models, --workers and "
        "--queue: HTTP and encoding then run beside inference on every core (default: 1)",
    )
    p.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds a client may take to send its request headers; slower ones get 408 "
        "and are disconnected (default: 10)",
    )
    p.add_argument(
        "--max-connections",
        type=int_at_least(2),
        default=256,
        help="open connections at most; beyond, new ones get 503 at once (default: 256, and "
        "never more than the open-file limit allows)",
    )
    g = p.add_argument_group("exposure (see the README's production notes)")
    g.add_argument(
        "--api-key-env",
        metavar="VAR",
        default=None,
        help="require the key in environment variable VAR as X-API-Key on /v1/* (the page "
        "takes it as #key=... in its URL); an env var, so the key is not in `ps`",
    )
    g.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="Host header to accept; repeat (default: the loopback names when bound to "
        "loopback, which stops DNS rebinding; '*' when bound elsewhere)",
    )
    g.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="another site allowed to call the API from a browser, e.g. https://app.example; "
        "repeat (default: none)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds requests in flight may take to finish at shutdown (default: 30)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (default: info)",
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    return p


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from ..errors import MissingExtraError, OptionError, require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    # python-multipart parses uploads; found, not imported (its old name warns on import).
    if not any(importlib.util.find_spec(m) for m in ("python_multipart", "multipart")):
        raise MissingExtraError("python-multipart is not installed: pip install 'seglite[serve]'")

    from ..serve.app import REQUEST_MAX_PIXELS, ServeConfig, create_app, default_workers
    from ..serve.header_deadline import HeaderDeadlineProtocol

    if not 0 <= args.port <= 65535:
        raise OptionError(f"--port must be between 0 and 65535, got {args.port}")
    # a busy port is one line, before models load
    sock = _bind(args.host, args.port, reuse_port=args.processes > 1)
    config = ServeConfig(
        models=tuple(args.model or ("deeplabv3",)),
        workers=args.workers or default_workers(),
        threads=args.threads,
        queue=args.queue,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels or REQUEST_MAX_PIXELS,
        read_timeout=args.read_timeout,
        shutdown_timeout=args.graceful_timeout,
        max_connections=_fits_open_files(args.max_connections),
        api_key=_api_key(args.api_key_env),
        allowed_hosts=tuple(args.allowed_host or _default_hosts(args.host)),
        cors_origins=tuple(args.cors_origin or ()),
    )
    app = create_app(config)  # loads every model now: a bad one fails here, in one line
    service = app.state.service
    options = dict(
        host=args.host, port=args.port, log_level=args.log_level, access_log=not args.no_access_log,
        timeout_graceful_shutdown=args.graceful_timeout, server_header=False,
        limit_concurrency=config.max_connections, timeout_keep_alive=config.keep_alive,
    )  # fmt: skip
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"seglite serve: http://{host}:{sock.getsockname()[1]}/  models: {', '.join(service.pools)}; "
        + (f"{args.processes} processes x " if args.processes > 1 else "")
        + f"{config.workers} workers x {config.threads} threads, queue {config.queue}",
        file=sys.stderr,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "seglite serve: listening beyond this machine"
            + ("" if config.api_key else "; no API key (--api-key-env), anyone can call it"),
            file=sys.stderr,
        )
    if args.processes > 1:
        from ..serve.processes import run_processes

        del app, service  # validated here; each process loads its own models
        run_processes(
            args.processes, config, sock, {**options, "header_timeout": args.header_timeout}
        )
        return 0
    server_config = uvicorn.Config(app, http=HeaderDeadlineProtocol, **options)
    server_config.header_timeout = args.header_timeout
    server = uvicorn.Server(server_config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _api_key(var: str | None) -> str | None:
    import os

    from ..errors import OptionError

    if var is None:
        return None
    key = os.environ.get(var, "")
    if len(key) < 16:
        raise OptionError(f"--api-key-env {var}: set {var} to a key of 16 characters or more")
    return key


def _default_hosts(host: str) -> tuple[str, ...]:
    from ..serve.exposure import LOOPBACK_HOSTS

    return LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else ("*",)


def _fits_open_files(wanted: int) -> int:
    """Connections at most, kept under the process's open-file limit (with room for model
    files, logs and the worker threads' needs): at that limit accept() fails and uvicorn
    goes silent, logging a traceback per connection, instead of answering 503."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(2, min(wanted, soft - 64))


def _bind(host: str, port: int, reuse_port: bool = False):
    """The listening socket, bound now, so that the server's banner means it is listening;
    ``reuse_port`` lets each of ``--processes`` bind its own socket to the same port."""
    import errno
    import socket

    from ..errors import OptionError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        from ..serve.processes import balances_by_port

        if balances_by_port():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        busy = exc.errno == errno.EADDRINUSE
        why = "is in use by another program" if busy else f"cannot be used ({exc.strerror})"
        raise OptionError(f"{host}:{port} {why}: stop it or pick another --port") from None
    sock.set_inheritable(True)
    return sock
