"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from memory.base import Store
from server.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="the token the server was started with")


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_writer(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Guard for write endpoints: 401 without a token, 403 with a wrong one, 403 when the
    server is read-only."""
    mode = settings.write_mode
    if mode == "open":
        return
    if mode == "disabled":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this server is read-only: start it with a token (LABSWARM_TOKEN or --token) "
            "to enable writes",
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


Writer = Depends(require_writer)
