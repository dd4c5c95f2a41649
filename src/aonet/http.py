"""What every unit's HTTP layer shares: errors are JSON `{"error": "..."}`, always.

Starlette answers unknown routes and methods with plain text; AO's clients expect JSON, so every app
installs these handlers (`Starlette(..., exception_handlers=JSON_ERRORS)`).
"""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import StatusError

log = logging.getLogger("aonet.http")


def json_error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return json_error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path[:200]}",
                      getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path[:200], exc_info=exc)
    return json_error(500, f"internal error: {type(exc).__name__}")


async def _status_error(request: Request, exc: StatusError) -> Response:
    return json_error(exc.status, str(exc))


JSON_ERRORS = {HTTPException: _http_error, StatusError: _status_error, Exception: _server_error}
