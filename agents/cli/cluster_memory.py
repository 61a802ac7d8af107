"""The driver's embedded memory served to a cluster's agents: the labswarm server app
(:func:`server.app.create_app`) on uvicorn in a thread of the driver, on the address the
nodes reach, writes behind a token generated for this swarm. It lives in the CLI
package because ``agents`` imports ``server`` only here (the one place that wires)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from memory.base import Store

START_TIMEOUT_S = 30.0


@dataclass
class ServedMemory:
    """A running server over one store; ``close()`` stops it."""

    url: str
    token: str
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _sock: socket.socket = field(repr=False)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


def serve_memory(store: Store, host: str, token: str) -> ServedMemory:
    """Serve ``store`` on ``host`` (a free port); writes need ``token``."""
    import uvicorn

    from server.app import create_app
    from server.settings import Settings

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    settings = Settings(host=host, port=port, token=SecretStr(token), trusted_hosts=[host])
    app = create_app(store, settings)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"memory-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the memory server did not start on {host}:{port}")
        time.sleep(0.02)
    return ServedMemory(f"http://{host}:{port}", token, server, thread, sock)
