"""The dashboard's ASGI app (routes, the error contract, the guards) and its server.

:func:`create_app` builds one app per :class:`~convscope.serve.state.ServeConfig`;
its :class:`~convscope.serve.state.ServeState` lives on ``app.state.convscope`` and the
store's :class:`~convscope.serve.events.EventWatcher` on ``app.state.events``; the
lifespan starts the watcher and closes both (no process-wide state).
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from convscope import __version__
from convscope.serve.errors import install_error_handlers
from convscope.serve.state import ServeConfig, ServeState


def normalized_base_url(base_url: str) -> str:
    """``proxy/8765`` -> ``/proxy/8765/``: one leading and one trailing slash."""
    inner = base_url.strip().strip("/")
    return f"/{inner}/" if inner else "/"


class BaseUrlMiddleware:
    """Serve the app under a path prefix (``/proxy/8765/``), with or without it in requests.

    A proxy may pass the prefix on or strip it; either way the request reaches the
    routes with ``root_path`` set to the prefix, so any URL the app builds includes it.
    """

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.prefix = normalized_base_url(base_url).rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.prefix and scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if path == self.prefix:  # `/proxy/8765` -> `/proxy/8765/`
                await _redirect(scope, send, f"{self.prefix}/")
                return
            if not path.startswith(f"{self.prefix}/"):
                path = f"{self.prefix}{path}"
            scope = dict(scope, path=path, root_path=self.prefix)
        await self.app(scope, receive, send)


async def _redirect(scope: Scope, send: Send, location: str) -> None:
    query = scope.get("query_string", b"")
    target = location.encode() + (b"?" + query if query else b"")
    headers = [(b"location", target), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 307, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def create_app(config: ServeConfig) -> FastAPI:
    """The dashboard's app for ``config``."""
    from convscope.serve import (
        events,
        routes_browse,
        routes_examples,
        routes_models,
        routes_runs,
        routes_tiles,
        static,
    )
    from convscope.serve.security import SecurityMiddleware

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher: events.EventWatcher = app.state.events
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            app.state.convscope.close()

    app = FastAPI(  # no /docs or /redoc: FastAPI's pages load scripts from a CDN
        title="convscope dashboard",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.convscope = ServeState(config)
    app.state.events = events.EventWatcher(config.store)
    install_error_handlers(app)
    app.include_router(routes_runs.router)
    app.include_router(events.router)
    app.include_router(routes_browse.router)
    app.include_router(routes_tiles.router)
    app.include_router(routes_examples.router)
    app.include_router(routes_models.router)
    app.include_router(static.static_router(static.package_static_dir()))
    app.add_middleware(BaseUrlMiddleware, base_url=config.base_url)
    app.add_middleware(SecurityMiddleware, config=config)  # the outermost: runs first
    return app


class DashboardServer(uvicorn.Server):
    """uvicorn's server for one app; Ctrl-C and SIGTERM stop it cleanly.

    uvicorn raises a captured signal again once it has shut down, which would turn the
    expected way out into ``KeyboardInterrupt``; this server does not. Open event
    streams are ended first, so shutting down does not wait for them.
    """

    def __init__(self, app: FastAPI, config: ServeConfig) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        self.dashboard = app

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.dashboard.state.events.end_streams()
        await super().shutdown(sockets)
