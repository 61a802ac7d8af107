"""The FastAPI app: JSON API under ``/api``, OpenAPI at ``/docs``, the dashboard at ``/``.

Build it with ``create_app(store)``; run it with ``labswarm serve`` (see
``agents/cli/serve.py``) or ``uvicorn --factory server.app:create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from memory.base import Store
from server import __version__
from server.errors import install_error_handlers
from server.limits import BodyLimitMiddleware, TrustedHostMiddleware, trusted_hosts
from server.routes import (
    champion,
    claims,
    experiments,
    findings,
    insights,
    meta,
    packs,
    search,
    swarms,
)
from server.settings import Settings, get_settings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def open_store(settings: Settings) -> Store:
    """The store the settings name (``memory.get_store`` resolves ``settings.memory``,
    else the embedded store in ``settings.home``; ``settings.chroma_url`` serves a
    PostgreSQL URL without ``?chroma=``)."""
    from memory import get_store

    return get_store(None, settings=settings)


def create_app(store: Store | None = None, settings: Settings | None = None) -> FastAPI:
    """An app over ``store`` (default: the one ``settings.memory`` names, opened here and
    closed at shutdown). ``settings`` default: read from ``LABSWARM_*`` variables."""
    settings = settings or get_settings()
    owned = store is None
    the_store = store if store is not None else open_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            the_store.close()

    app = FastAPI(
        title="labswarm",
        version=__version__,
        summary="The shared memory of a labswarm: experiments, claims, findings, search.",
        docs_url=None,  # served below from vendored files (no CDN)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.store = the_store
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    allowed = trusted_hosts(settings.host, settings.trusted_hosts)
    if allowed is None:
        log.warning(
            "answering any Host header (bound to %s): set LABSWARM_TRUSTED_HOSTS to the "
            "names clients use",
            settings.host,
        )
    else:  # added last, so it runs first
        app.add_middleware(TrustedHostMiddleware, allowed=allowed)
    for module in (experiments, champion, insights, search, claims, findings, swarms, packs, meta):
        app.include_router(module.router)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="labswarm API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
