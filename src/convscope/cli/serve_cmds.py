"""``convscope serve``: the dashboard, a local web server over the same probes as the CLI.

FastAPI and uvicorn are imported inside the handler only, so ``--help`` stays quick
(the bounds' defaults are plain numbers here, checked against the server's in the tests).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
import sys
from pathlib import Path
from typing import Any

from convscope.cli.app import add_command
from convscope.cli.output import add_store_argument
from convscope.errors import ConvscopeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DEFAULT_MAX_MODELS = 8
DEFAULT_MODELS_MB = 2048
DEFAULT_CACHE_MB = 256
"""Memory bounds: as :data:`convscope.serve.modelpool.MAX_MODELS` / ``MAX_MB`` and
:data:`convscope.serve.cache.CACHE_MB` (not imported, so ``--help`` loads no server)."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``serve``."""
    serve = add_command(
        commands,
        "serve",
        "Start the dashboard: everything the CLI draws, interactive, and live while a\n"
        "model trains (`convscope train` or `study` writing the same --store beside it).\n\n"
        "Security: it listens on 127.0.0.1 only and refuses requests sent under another\n"
        "host name; another --host needs a token (one is made and printed if not given).\n\n"
        "Memory: loaded models are kept in a pool of at most --max-models models and\n"
        "--models-mb MB of weights, results (maps, tiles, pictures) in a cache of at most\n"
        "--cache-mb MB; the least recently used go first.",
        "  convscope serve                                  # then open the URL it prints\n"
        "  convscope serve --store demo-out/runs --open     # and open the browser\n"
        "  convscope serve --model lenet.ckpt --port 0      # a checkpoint too; any free port\n"
        "  convscope serve --model resnet50=imagenet        # a zoo model with trained weights\n"
        "  convscope serve --host 0.0.0.0 --token s3cret    # reachable from other machines\n"
        "  convscope serve --base-url /proxy/8765/          # behind the JupyterHub proxy",
    )
    add_store_argument(serve)
    serve.add_argument(
        "--model",
        dest="models",
        action="extend",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="a model to offer beside the zoo and the runs: a checkpoint, a Keras file, "
        "or MODEL=WEIGHTS (resnet50=imagenet, lenet5=w.pth: --weights of the other "
        "commands); each is loaded at start, so a broken one stops the server at once",
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"the address to listen on ({DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port ({DEFAULT_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--token",
        metavar="T",
        help="every request must carry it (needed for a non-loopback --host; made if not given)",
    )
    serve.add_argument(
        "--base-url",
        default="/",
        metavar="PATH",
        help="the path prefix the dashboard is served under (/)",
    )
    serve.add_argument(
        "--max-models",
        type=int,
        default=DEFAULT_MAX_MODELS,
        metavar="N",
        help=f"most models kept loaded at once ({DEFAULT_MAX_MODELS})",
    )
    serve.add_argument(
        "--models-mb",
        type=int,
        default=DEFAULT_MODELS_MB,
        metavar="MB",
        help=f"most MB of weights the loaded models hold together ({DEFAULT_MODELS_MB})",
    )
    serve.add_argument(
        "--cache-mb",
        type=int,
        default=DEFAULT_CACHE_MB,
        metavar="MB",
        help=f"most MB of results (maps, tiles, pictures) kept; 0 keeps none ({DEFAULT_CACHE_MB})",
    )
    serve.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    serve.set_defaults(handler=run_serve)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (only this machine can connect)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); a failure is one line."""
    if not 0 <= port <= 65535:
        raise ConvscopeError(f"--port must be from 0 to 65535, not {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise ConvscopeError(f"cannot listen on {host}: {error}; pass another --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise ConvscopeError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); "
            "pass another --port (0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def dashboard_url(host: str, port: int, base_url: str, token: str | None) -> str:
    """The URL to open: the bound name (this machine's name for a wildcard), port, prefix, token."""
    name = socket.gethostname() if host in WILDCARD_HOSTS else host
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    query = f"?token={token}" if token else ""
    return f"http://{name}:{port}{base_url}{query}"


def check_store(store: Path) -> None:
    """A missing store is fine (the page shows its empty state); a file is not."""
    if store.exists() and not store.is_dir():
        raise ConvscopeError(f"{store} is a file, not a run store directory; pass another --store")


def check_bounds(args: argparse.Namespace) -> None:
    """The memory bounds must let the server work: one model at least, no negative MB."""
    if args.max_models < 1:
        raise ConvscopeError(f"--max-models must be at least 1, not {args.max_models}")
    if args.models_mb < 1:
        raise ConvscopeError(f"--models-mb must be at least 1, not {args.models_mb}")
    if args.cache_mb < 0:
        raise ConvscopeError(f"--cache-mb must be at least 0, not {args.cache_mb}")


def serve_config(args: argparse.Namespace, port: int, token: str | None) -> Any:
    """The server's :class:`~convscope.serve.state.ServeConfig` for ``serve``'s options."""
    from convscope.serve.app import normalized_base_url
    from convscope.serve.state import ServeConfig

    return ServeConfig(
        store=args.store,
        models=tuple(args.models),
        host=args.host,
        port=port,
        token=token,
        base_url=normalized_base_url(args.base_url),
        max_models=args.max_models,
        models_mb=args.models_mb,
        cache_mb=args.cache_mb,
    )


def run_serve(args: argparse.Namespace) -> int:
    import secrets

    from convscope.serve.app import create_app

    check_store(args.store)
    check_bounds(args)
    token = args.token
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]+", token):
        raise ConvscopeError(
            "--token may hold only letters, digits and . _ ~ - (it goes into a URL and a cookie)"
        )
    if token is None and not is_loopback(args.host):
        token = secrets.token_urlsafe(24)
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    config = serve_config(args, port, token)
    app = create_app(config)
    preload_models(app)
    url = dashboard_url(args.host, port, config.base_url, token)
    print(f"convscope dashboard: {url} (Ctrl-C stops it)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    return serve_until_stopped(app, sock, config)


def preload_models(app: Any) -> None:
    """Load every ``--model`` now: a file that does not load is this command's one-line
    error (exit 2), not five failed requests in the page later."""
    pool = app.state.convscope.models
    for name, spec in pool.given.items():
        try:
            pool.get(name)
        except ConvscopeError as error:
            raise ConvscopeError(f"--model {spec}: {error}") from None


def serve_until_stopped(app: Any, sock: socket.socket, config: Any) -> int:
    """Serve ``app`` on ``sock`` until Ctrl-C or SIGTERM, then stop cleanly (status 0)."""
    from convscope.serve.app import DashboardServer

    server = DashboardServer(app, config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        sys.stderr.write("convscope: error: the dashboard did not start (see above)\n")
        return 1
    return 0
