"""The dashboard's ASGI app: routes, error contract and security around them.

:func:`create_app` builds one app per :class:`~convscope.serve.state.ServeConfig`;
its :class:`~convscope.serve.state.ServeState` lives on ``app.state.convscope`` and is
closed when the app shuts down (no process-wide state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from convscope import __version__
from convscope.serve.errors import install_error_handlers
from convscope.serve.state import ServeConfig, ServeState


def create_app(config: ServeConfig) -> FastAPI:
    """The dashboard's app for ``config``."""
    from convscope.serve import routes_models

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ServeState = app.state.convscope
        try:
            yield
        finally:
            state.close()

    app = FastAPI(title="convscope dashboard", version=__version__, lifespan=lifespan)
    app.state.convscope = ServeState(config)
    install_error_handlers(app)
    app.include_router(routes_models.router)
    return app
