"""``labswarm serve``: the HTTP API and dashboard over a memory store, on uvicorn.

    labswarm serve                                  # embedded store in ./.labswarm, read-only
    labswarm serve --token s3cret --port 8765       # writes need "Authorization: Bearer s3cret"
    labswarm serve --memory postgresql://u@db/labswarm --chroma http://db:8000 \\
        --host 0.0.0.0 --token "$LABSWARM_TOKEN"

Every option also reads ``LABSWARM_<NAME>`` (``LABSWARM_TOKEN``, ``LABSWARM_PORT``, ...).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the memory over HTTP (API, OpenAPI at /docs, dashboard at /)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--memory",
        help="store: a directory (embedded SQLite + Chroma) or a PostgreSQL URL "
        "(default: $LABSWARM_MEMORY, else $LABSWARM_HOME or ./.labswarm)",
    )
    parser.add_argument("--chroma", help="Chroma server URL for a PostgreSQL store")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8765; 0 = any free port)")
    parser.add_argument(
        "--token", help="bearer token for writes (default $LABSWARM_TOKEN; none = read-only)"
    )
    parser.add_argument(
        "--open-writes",
        action="store_true",
        default=None,
        help="allow writes without a token (refused unless bound to loopback)",
    )
    parser.add_argument("--max-body-bytes", type=int, help="larger request bodies get 413")
    parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    overrides = {
        "memory": args.memory,
        "chroma": args.chroma,
        "host": args.host,
        "port": args.port,
        "token": args.token,
        "open_writes": args.open_writes,
        "max_body_bytes": args.max_body_bytes,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    app = create_app(settings=settings)
    store = app.state.store
    writes = {
        "token": "writes need the bearer token",
        "open": "writes open to anyone on this machine (no token)",
        "disabled": "read-only (no token)",
    }[settings.write_mode]
    print(f"labswarm: serving {store!r} on http://{settings.host}:{settings.port} ({writes})")
    print(f"labswarm: dashboard http://{settings.host}:{settings.port}/  API docs /docs")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
