"""Request body limit (413) as an aiohttp middleware, and the JSON body reader.

Faust's own body reader (`request.content.read()`) bypasses aiohttp's `client_max_size`,
so the limit is enforced here for every route: by Content-Length before anything is
read, and for chunked bodies while reading, never buffering more than the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

BODY_KEY = web.RequestKey("fraudapp_body", bytes)
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def error_response(status: int, reason: str, **extra: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": reason, **extra}), status=status, content_type="application/json"
    )


def body_limit_middleware(max_bytes: int) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def limit_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in METHODS_WITH_BODY:
            if request.content_length is not None and request.content_length > max_bytes:
                return error_response(413, f"request body of {request.content_length} bytes exceeds {max_bytes}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    return error_response(413, f"request body exceeds {max_bytes} bytes")
                chunks.append(chunk)
            request[BODY_KEY] = b"".join(chunks)
        return await handler(request)

    return limit_body


def json_body(request: Any) -> Any:
    """The request's JSON body (read by the middleware); BodyError(400) when not JSON."""
    raw = request.get(BODY_KEY, b"")
    if not raw:
        raise BodyError(400, "empty request body: expected JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"request body is not JSON: {exc}"[:200]) from None
