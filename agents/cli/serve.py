"""``labswarm serve``: the HTTP API and dashboard over a memory store, on uvicorn.

    labswarm serve                                  # embedded store in ./.labswarm, read-only
    LABSWARM_TOKEN=s3cret labswarm serve            # writes need "Authorization: Bearer s3cret"
    labswarm serve --token-file ~/.labswarm-token   # the same, the token read from a file
    labswarm serve --memory postgresql://u@db/labswarm --chroma http://db:8000 \\
        --host 0.0.0.0 --token-file /run/secrets/labswarm --trusted-host db.lab.example

Every option also reads ``LABSWARM_<NAME>`` (``LABSWARM_TOKEN``, ``LABSWARM_PORT``, ...;
``--chroma`` is ``LABSWARM_CHROMA_URL``). Prefer ``LABSWARM_TOKEN`` or ``--token-file``
to ``--token``: a command line is visible to every user of the machine (``ps``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
    parser.add_argument(
        "--chroma", help="Chroma server URL for a PostgreSQL store (default $LABSWARM_CHROMA_URL)"
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8765; 0 = any free port)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file",
        type=Path,
        help="read the bearer token for writes from this file (one line; the trailing "
        "newline is dropped)",
    )
    token.add_argument(
        "--token",
        help="bearer token for writes; visible in the process list, so prefer "
        "$LABSWARM_TOKEN or --token-file (default $LABSWARM_TOKEN; none = read-only)",
    )
    parser.add_argument(
        "--open-writes",
        action="store_true",
        default=None,
        help="allow writes without a token (refused unless bound to loopback); writes then "
        "need the header 'X-Labswarm-Write: 1' or a same-origin request",
    )
    parser.add_argument("--max-body-bytes", type=int, help="larger request bodies get 413")
    parser.add_argument(
        "--trusted-host",
        action="append",
        dest="trusted_hosts",
        metavar="NAME",
        help="a Host name clients use besides loopback and --host (repeat; "
        "$LABSWARM_TRUSTED_HOSTS, comma-separated); other Host headers get 400",
    )
    parser.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (default $LABSWARM_LOG_LEVEL or info)",
    )
    parser.set_defaults(func=serve)


def read_token_file(path: Path) -> str:
    """The token in ``path``: its text without the trailing newline (``echo tok > f``).
    Other surrounding whitespace is kept, so the settings refuse it rather than guess."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"labswarm serve: --token-file {path}: {exc}") from None
    return text.removesuffix("\n").removesuffix("\r")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from memory.settings import Settings
    from server.app import create_app

    token = args.token
    if args.token_file is not None:
        token = read_token_file(args.token_file)
    elif args.token is not None:
        print(
            "labswarm: warning: --token is visible to every user of this machine in the "
            "process list; use LABSWARM_TOKEN or --token-file instead",
            file=sys.stderr,
        )
    overrides = {
        "memory": args.memory,
        "chroma_url": args.chroma,
        "host": args.host,
        "port": args.port,
        "token": token,
        "open_writes": args.open_writes,
        "max_body_bytes": args.max_body_bytes,
        "trusted_hosts": args.trusted_hosts,
        "log_level": args.log_level,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    app = create_app(settings=settings)
    store = app.state.store
    writes = {
        "token": "writes need the bearer token",
        "open": "writes open to programs on this machine (no token; header X-Labswarm-Write: 1)",
        "disabled": "read-only (no token)",
    }[settings.write_mode]
    print(f"labswarm: serving {store!r} on http://{settings.host}:{settings.port} ({writes})")
    print(f"labswarm: dashboard http://{settings.host}:{settings.port}/  API docs /docs")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0
