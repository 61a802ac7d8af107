"""Guards at the edge, before any route runs: a ``Host`` header the server does not know
gets 400 (against DNS rebinding), an oversized request body gets 413 before the app reads
it into memory. Both answer with the JSON error body of ``server.errors``."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def _error(name: str, message: str) -> bytes:
    return json.dumps({"error": name, "message": message}).encode()


def _body(limit: int) -> bytes:
    return _error(
        "payload_too_large",
        f"request body exceeds the server's limit of {limit} bytes (LABSWARM_MAX_BODY_BYTES)",
    )


async def _answer(send: Send, code: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _host_name(value: str) -> str:
    """``[::1]:8765`` -> ``[::1]``, ``Example.org:80`` -> ``example.org``; a bare IPv6
    address is bracketed, as in a Host header."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    if value.count(":") > 1:  # a bare IPv6 address (a setting, not a header)
        return f"[{value}]"
    return value.rsplit(":", 1)[0] if ":" in value else value


def trusted_hosts(host: str, extra: Iterable[str]) -> list[str] | None:
    """The Host names a server bound to ``host`` answers: loopback names, ``host`` itself
    and ``extra`` (``LABSWARM_TRUSTED_HOSTS``). ``None`` (any) for a server bound to every
    interface (0.0.0.0, ::) with no ``extra`` names, whose clients may use any of the
    machine's names; ``*`` in ``extra`` also means any."""
    names = [_host_name(name) for name in extra if name.strip()]
    if "*" in names:
        return None
    try:
        wildcard = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard or not host.strip():
        if not names:
            return None
    else:
        names.append(_host_name(host))
    return list(dict.fromkeys([*LOOPBACK_NAMES, *names]))


class TrustedHostMiddleware:
    """Pure ASGI middleware: 400 for a request whose ``Host`` is not one of ``allowed``
    (a web page that rebinds its own name to 127.0.0.1 still sends its own name)."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k == b"host"), b"")
        host = _host_name(raw.decode("latin-1"))
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # none served; refuse before accepting
            await send({"type": "websocket.close", "code": 1008})
            return
        message = (
            f"unknown Host {host or '(none)'!r}: this server answers "
            f"{', '.join(sorted(self.allowed))}; add a name with LABSWARM_TRUSTED_HOSTS"
        )
        await _answer(send, 400, _error("bad_host", message))


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses a ``Content-Length`` over the limit before reading
    anything; a streamed (chunked) body is read here up to the limit, then replayed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        await _answer(send, 413, _body(self.max_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        if not any(key == b"content-length" for key, _ in scope.get("headers", [])):
            # a streamed (chunked) body: read it here, up to the limit, then replay it
            chunks: list[bytes] = []
            seen = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    await self._refuse(send)
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
