"""The request-body limit middleware (413) and JSON body reading (400), on a bare aiohttp app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fraudapp.web.body import BodyError, body_limit_middleware, json_body

LIMIT = 1024


async def echo(request: web.Request) -> web.Response:
    try:
        body = json_body(request)
    except BodyError as exc:
        return web.json_response({"error": exc.reason}, status=exc.status)
    return web.json_response({"got": body})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[body_limit_middleware(LIMIT)])
    app.router.add_post("/echo", echo)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_body_at_the_limit_passes(client: TestClient) -> None:
    payload = b'"' + b"x" * (LIMIT - 2) + b'"'
    resp = await client.post("/echo", data=payload)
    assert resp.status == 200


async def test_declared_oversize_is_413(client: TestClient) -> None:
    resp = await client.post("/echo", data=b"x" * (LIMIT + 1))
    assert resp.status == 413
    assert "exceeds" in (await resp.json())["error"]


async def test_chunked_oversize_is_413_without_content_length(client: TestClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    resp = await client.post("/echo", data=chunks())
    assert resp.status == 413


@pytest.mark.parametrize("payload", [b"", b"{not json", b"\xff\xfe"])
async def test_malformed_body_is_400_with_reason(client: TestClient, payload: bytes) -> None:
    resp = await client.post("/echo", data=payload)
    assert resp.status == 400
    assert (await resp.json())["error"]
