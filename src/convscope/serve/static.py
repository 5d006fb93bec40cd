"""The built front end: ``/`` is its ``index.html``, ``/assets/NAME`` its scripts and styles.

Files come only from the package's ``convscope/serve/static/`` directory (found with
:mod:`importlib.resources`); a request's name is checked and must resolve inside it, so
no request reaches another file. Hashed asset names (``index-3fa2c1d0.js``) never
change content, so they are cached for good; ``index.html`` is revalidated each time.
Without a build, ``/`` says how to make one, so the API works from a source checkout.
"""

from __future__ import annotations

import mimetypes
import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from convscope.serve.errors import NotFoundError

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convscope dashboard</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>convscope dashboard</h1>
<p>the dashboard's front end is not built: run <code>make setup</code>
(it builds <code>frontend/</code> into <code>src/convscope/serve/static/</code>),
then reload this page. The API answers meanwhile, e.g. <a href="api/health">api/health</a>.</p>
</body></html>
"""

ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
"""Names an asset may have: plain segments, none starting with a dot."""
HASHED = re.compile(r"[-.][A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")
"""A bundler's content-hashed name (``index-BQ3x9Kza.js``)."""
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".wasm": "application/wasm",
}


def package_static_dir() -> Path | None:
    """The package's ``serve/static`` directory when it holds a build, else None."""
    folder = resources.files("convscope.serve").joinpath("static")
    if not isinstance(folder, Path):  # a zipped install: not supported, say "not built"
        return None
    return folder if (folder / "index.html").is_file() else None


def content_type(path: Path) -> str:
    """The ``Content-Type`` of a front-end file (a fixed table first, then mimetypes)."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def asset_path(root: Path, name: str) -> Path:
    """The file ``assets/NAME`` inside ``root``; anything else is a :class:`NotFoundError`."""
    missing = NotFoundError(f"no front-end file {name!r}")
    if not ASSET_NAME.fullmatch(name):
        raise missing
    base = root.resolve()
    path = (base / "assets" / name).resolve()
    if not path.is_relative_to(base / "assets") or not path.is_file():
        raise missing
    return path


def static_router(root: Path | None) -> APIRouter:
    """Routes serving the front end built into ``root`` (None: not built)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def index() -> Response:
        if root is None:
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": REVALIDATE})
        return FileResponse(
            root / "index.html",
            media_type=CONTENT_TYPES[".html"],
            headers={"Cache-Control": REVALIDATE},
        )

    @router.get("/assets/{name:path}")
    def asset(name: str) -> Response:
        if root is None:
            raise NotFoundError("the dashboard's front end is not built: run `make setup`")
        path = asset_path(root, name)
        cache = IMMUTABLE if HASHED.search(path.name) else REVALIDATE
        return FileResponse(path, media_type=content_type(path), headers={"Cache-Control": cache})

    return router
