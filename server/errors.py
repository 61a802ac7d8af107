"""The one place that turns errors into HTTP responses.

Every error body is ``{"error": name, "message": text}``; ``name`` is the stable name of
a ``memory.errors`` class (the HTTP store rebuilds that class from it) or, for errors the
HTTP layer makes itself, one of ``unauthorized``, ``forbidden``, ``payload_too_large``,
``method_not_allowed``, ``http_error``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from memory.errors import InvalidInput, MemoryError_, NotFound

log = logging.getLogger(__name__)

_HTTP_NAMES = {
    401: "unauthorized",
    403: "forbidden",
    404: NotFound.name,
    405: "method_not_allowed",
    413: "payload_too_large",
    422: InvalidInput.name,
}


class ErrorBody(BaseModel):
    """Body of every error response."""

    error: str
    message: str
    detail: list[dict[str, Any]] | None = None


# documented on every route (OpenAPI), all with the ``ErrorBody`` shape
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "write without a bearer token"},
    403: {"model": ErrorBody, "description": "wrong token, or the server is read-only"},
    404: {"model": ErrorBody, "description": "unknown id"},
    409: {"model": ErrorBody, "description": "already claimed / already ran / conflict"},
    413: {"model": ErrorBody, "description": "request body over the size limit"},
    422: {"model": ErrorBody, "description": "bad parameter or body; the message names it"},
    503: {"model": ErrorBody, "description": "a database, index or server is unreachable"},
}


def error_response(
    code: int,
    name: str,
    message: str,
    *,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=name, message=message, detail=detail)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=code, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """``query.limit: Input should be less than or equal to 1000; body.task: Field required``."""
    parts = [f"{_field_path(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in errors]
    return "; ".join(parts) or "invalid request"


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # drop ``input``/``ctx`` (may hold bytes or exceptions), keep what names the field
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in errors
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods.update(route_methods)
            if "GET" in route_methods:
                methods.add("HEAD")
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MemoryError_)
    async def _memory_error(request: Request, exc: MemoryError_) -> JSONResponse:
        if exc.code >= 500:
            log.error("%s %s: %s: %s", request.method, request.url.path, exc.name, exc.message)
        return error_response(exc.code, exc.name, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return error_response(
            422, InvalidInput.name, validation_message(errors), detail=_jsonable_errors(errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_NAMES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = exc.headers
        if exc.status_code == 400 and "parsing the body" in message:
            # FastAPI's answer to a body it cannot decode: a bad body, so 422 like the rest
            return error_response(
                422, InvalidInput.name, "body: could not be decoded as JSON (UTF-8 expected)"
            )
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            # Starlette's Allow names only the first route of a path; list every method
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"{request.method} is not allowed on {request.url.path}; use " + (
                " or ".join(allowed)
            )
        return error_response(exc.status_code, name, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, MemoryError_.name, f"internal error: {type(exc).__name__}")
