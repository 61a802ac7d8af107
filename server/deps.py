"""Dependencies shared by the routes, as ``Annotated`` aliases, and the guard of every
write route.

A write route declares what its body is: ``JsonWriter`` (``application/json``),
``PackWriter`` (``application/x-ndjson`` or ``application/jsonl``) or ``BodylessWriter``
(no body; it needs ``Content-Type: application/json`` or ``X-Labswarm-Write: 1``, so that
no form or plain ``fetch`` can trigger it). Any other content type is 415 naming the
expected one: a browser sends ``text/plain`` and form bodies cross-site without asking
first, but never ``application/json`` or a custom header.

On a server with open writes (no token, loopback only), a write must also come from this
server's own page or from a program: it needs ``X-Labswarm-Write: 1`` or a same-origin
``Origin`` / ``Sec-Fetch-Site``; a foreign ``Origin`` or ``Sec-Fetch-Site: cross-site`` /
``same-site`` is refused with 403 whatever else it sends.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from memory.base import Store
from server.settings import Settings

WRITE_HEADER = "X-Labswarm-Write"
JSON_MEDIA = "application/json"
PACK_MEDIA = "application/x-ndjson"
PACK_MEDIAS = (PACK_MEDIA, "application/jsonl")

_bearer = HTTPBearer(auto_error=False, description="the token the server was started with")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def media_type(request: Request) -> str:
    """The request's media type without parameters, lower case ("" when none is sent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _authorize(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    """401 without a token, 403 with a wrong one, 403 when the server is read-only."""
    mode = settings.write_mode
    if mode == "open":
        return
    if mode == "disabled":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this server is read-only: start it with a token (LABSWARM_TOKEN or "
            "--token-file) to enable writes",
        )
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert settings.token is not None
    expected = settings.token.get_secret_value().encode()
    if not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong bearer token")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def _same_origin_only(request: Request) -> None:
    """Open writes: refuse what a foreign web page can send (403 naming the reason)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    origin = request.headers.get("origin")
    if site and site not in ("same-origin", "none"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"cross-site write refused (Sec-Fetch-Site: {site}): this server takes writes "
            "without a token, so only its own page and programs may write",
        )
    own = _own_origin(request)
    if origin is not None and origin.lower() != own:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"cross-site write refused (Origin {origin!r} is not {own!r}): this server "
            "takes writes without a token, so only its own page and programs may write",
        )
    same_origin = site == "same-origin" or (origin is not None and origin.lower() == own)
    if not same_origin and request.headers.get(WRITE_HEADER) != "1":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing header {WRITE_HEADER}: 1 (this server takes writes without a token; "
            "the header proves the request does not come from another web site)",
        )


def _content_type(request: Request, expected: tuple[str, ...]) -> None:
    got = media_type(request)
    if expected:
        if got in expected:
            return
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type must be {' or '.join(expected)} (got {got or 'none'})",
        )
    if got == JSON_MEDIA or request.headers.get(WRITE_HEADER) == "1":
        return
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        f"this write takes no body: send Content-Type: {JSON_MEDIA} or the header "
        f"{WRITE_HEADER}: 1 (got {got or 'no Content-Type'})",
    )


def write_guard(*expected: str) -> Any:
    """The dependency of a write route whose body has one of the ``expected`` media
    types (none: a route without a body). Checks, in order: the token (or the
    read-only mode), the origin on an open-writes server, the content type."""

    async def guard(request: Request, settings: SettingsDep, credentials: Credentials) -> None:
        _authorize(settings, credentials)
        if settings.write_mode == "open":
            _same_origin_only(request)
        _content_type(request, expected)

    return Depends(guard)


JsonWriter = write_guard(JSON_MEDIA)
PackWriter = write_guard(*PACK_MEDIAS)
BodylessWriter = write_guard()
