"""The one place that turns errors into HTTP responses.

Every error body is ``{"error": name, "message": text}``; ``name`` is the stable name of
a ``memory.errors`` class (the HTTP store rebuilds that class from it) or, for errors the
HTTP layer makes itself, one of ``unauthorized``, ``forbidden``, ``payload_too_large``,
``unsupported_media_type``, ``method_not_allowed``, ``bad_host`` (``server.limits``),
``http_error``. A validation error (of the request, or of a model a route builds from it)
is a 422 naming the field; only a bug is a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
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
    415: "unsupported_media_type",
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
    400: {"model": ErrorBody, "description": "unknown Host header (bad_host)"},
    403: {
        "model": ErrorBody,
        "description": "wrong token, the server is read-only, or a cross-site write",
    },
    404: {"model": ErrorBody, "description": "unknown id"},
    409: {"model": ErrorBody, "description": "already claimed / already ran / conflict"},
    413: {"model": ErrorBody, "description": "request body over the size limit"},
    415: {"model": ErrorBody, "description": "a write without its declared Content-Type"},
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


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this request's path: each method is tried
    against every route with the public ``BaseRoute.matches`` (which also walks included
    routers, whatever FastAPI makes of them)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


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

    @app.exception_handler(ValidationError)
    async def _model_error(request: Request, exc: ValidationError) -> JSONResponse:
        # a model a route builds from valid parameters (TraceQuery, ...) refused them
        errors = [dict(err) for err in exc.errors()]
        return error_response(
            422, InvalidInput.name, validation_message(errors), detail=_jsonable_errors(errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_NAMES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and "parsing the body" in message:
            # FastAPI's answer to a body it cannot decode: a bad body, so 422 like the rest
            return error_response(
                422, InvalidInput.name, "body: could not be decoded as JSON (UTF-8 expected)"
            )
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            # Starlette's Allow names only the first route that matched the path (and FastAPI
            # hides included routers' methods): list every method any route takes
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}; use " + (
                " or ".join(allowed)
            )
        return error_response(exc.status_code, name, message, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, MemoryError_.name, f"internal error: {type(exc).__name__}")
