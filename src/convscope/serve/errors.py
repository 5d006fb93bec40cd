"""The dashboard's error contract: every failure is ``{"error": "one line"}``.

A user's mistake (:class:`~convscope.errors.ConvscopeError`, a bad parameter) is a 4xx
carrying the same line the CLI prints: 404 when it names something that does not exist
(a run, study, job or model), 400 otherwise. Anything else is a bug: 500 with the
exception's type only, never a traceback in a response.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from convscope.errors import ConvscopeError

logger = logging.getLogger("convscope.serve")

NOT_FOUND = re.compile(r"^(no (run|study|job) |unknown model |timm has no model )")
"""How the library starts the line for something that does not exist."""


class NotFoundError(ConvscopeError):
    """Raised by a route for a thing that does not exist (answered 404)."""


def one_line(text: object) -> str:
    """``text`` with its whitespace collapsed, as the CLI prints an error."""
    return " ".join(str(text).split())


def error_response(status: int, message: object) -> JSONResponse:
    """``{"error": message}`` with ``status``."""
    return JSONResponse({"error": one_line(message)}, status_code=status)


def status_of(error: ConvscopeError) -> int:
    """404 for something that does not exist, 400 for any other user's mistake."""
    if isinstance(error, NotFoundError) or NOT_FOUND.match(one_line(error)):
        return 404
    return 400


def validation_line(error: RequestValidationError) -> str:
    """One line naming the first bad parameter and what is wrong with it."""
    problems = error.errors()
    if not problems:
        return "bad request"
    first = problems[0]
    where = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body")]
    name = ".".join(where) or "the request"
    return f"bad parameter {name}: {first.get('msg', 'invalid')}"


async def _convscope_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConvscopeError)
    return error_response(status_of(error), error)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(400, validation_line(error))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    message = error.detail
    if error.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path} (openapi.json lists the routes)"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error_response(error.status_code, message)
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _bug(request: Request, error: Exception) -> JSONResponse:
    logger.error("internal error on %s", request.url.path, exc_info=error)
    return error_response(500, f"internal error (a bug): {type(error).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as ``{"error": "one line"}``."""
    app.add_exception_handler(ConvscopeError, _convscope_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)
