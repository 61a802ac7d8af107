"""Schemathesis hooks for the fuzz runs (loaded through ``SCHEMATHESIS_HOOKS``): how to
send a generated body as ``application/x-ndjson`` (``POST /api/packs`` takes JSONL)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    # generated strings are sent as they are (lone surrogates kept), anything else as JSON
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", errors="surrogatepass")
