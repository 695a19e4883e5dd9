"""Fuzzing POST /clicks on the real route (fraudapp.views on Faust's aiohttp app, no broker):
arbitrary bodies and headers get a 2xx or a 4xx with a reason, never a 5xx, and whatever
is published is a valid click."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudapp import views
from fraudapp.app import app
from fraudapp.models import Click
from fraudapp.validate import REJECTION_CODES, parse_click

TOKEN = "ingest-fuzz-token"
GOOD = {"click_id": "c1", "ts": 1732350000.5, "device_id": "d1", "ip": "203.0.113.7"}


class CapturingPublisher:
    """Stands in for the worker's Kafka producer: records what the route publishes."""

    producer = object()

    def __init__(self) -> None:
        self.records: list[tuple[str, list[tuple[bytes, bytes]]]] = []

    async def send_many(self, topic: str, records: list[tuple[bytes, bytes]],
                        headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        self.records.append((topic, records))


class Harness:
    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.publisher = CapturingPublisher()
        self.client: TestClient | None = None

    def start(self) -> None:
        async def start() -> TestClient:
            app.web.init_server()  # registers the pages and fraudapp's middleware (once)
            client = TestClient(TestServer(app.web.web_app))
            await client.start_server()
            return client

        self.client = self.runner.run(start())

    def post(self, body: Any, headers: dict[str, str]) -> tuple[int, Any, str]:
        assert self.client is not None
        client = self.client

        async def post() -> tuple[int, Any, str]:
            resp = await client.post("/clicks", data=body, headers=headers)
            text = await resp.text()
            return resp.status, text, resp.headers.get("Content-Type", "")

        return self.runner.run(post())

    def close(self) -> None:
        if self.client is not None:
            self.runner.run(self.client.close())
        self.runner.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    mp = pytest.MonkeyPatch()
    h = Harness()
    mp.setattr(views, "settings", views.settings.replace(ingest_token=TOKEN))
    mp.setattr(views.live, "publisher", h.publisher)
    try:
        h.start()
        yield h
    finally:
        h.close()
        mp.undo()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["1.2.3.4", "::1", "2024-11-23T08:20:00+00:00", "DE", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
click_like = st.builds(
    lambda drop, replace: {**{k: v for k, v in GOOD.items() if k not in drop}, **replace},
    st.sets(st.sampled_from(list(GOOD))),
    st.dictionaries(st.sampled_from([*GOOD, "mouse", "country", "url", "session_id"]), json_values, max_size=3),
)
bodies = (
    st.binary(max_size=400)
    | json_values.map(orjson.dumps)
    | click_like.map(orjson.dumps)
    | st.lists(click_like | json_values, max_size=6).map(orjson.dumps)
    # stdlib json: NaN, huge numbers, lone surrogates (escaped) that orjson refuses
    | st.lists(click_like, max_size=3).map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"", b"[]", b"{}", b"null", b"NaN", b"[" * 500 + b"]" * 500, b'{"a":' * 300 + b"1" + b"}" * 300])
)
token_chars = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='()<>@,;:\\"/[]?={}')
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
extra_headers = st.dictionaries(
    st.text(token_chars, min_size=1, max_size=12).filter(
        lambda n: n.lower() not in {"content-length", "transfer-encoding", "host", "authorization", "expect",
                                    "content-encoding", "connection"}),
    header_values, max_size=3,
)
authorization = st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}x", "Bearer", "Basic abc", "", f"bearer {TOKEN}"])
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "application/json; charset=latin-1", ""])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=bodies, auth=authorization, content_type=content_types, extra=extra_headers)
def test_post_clicks_never_answers_5xx(harness: Harness, body: bytes, auth: str, content_type: str,
                                       extra: dict[str, str]) -> None:
    headers = {**extra, "Authorization": auth, "Content-Type": content_type}
    published_before = len(harness.publisher.records)
    status, text, ctype = harness.post(body, headers)
    assert status < 500, (status, text)
    answer = json.loads(text)
    assert ctype.startswith("application/json")
    if auth.lower() != f"bearer {TOKEN}":  # the auth scheme is case-insensitive (RFC 7235)
        assert status == 401 and answer["error"]
        assert len(harness.publisher.records) == published_before
        return
    if status != 202:
        assert 400 <= status < 500 and isinstance(answer["error"], str) and answer["error"]
        assert len(harness.publisher.records) == published_before
        for rejected in answer.get("rejected", []):
            assert rejected["error"] in (*REJECTION_CODES, "too_many") and rejected["detail"]
        return
    # Accepted: exactly what was published, each record a valid click keyed by its device.
    topic, records = harness.publisher.records[-1]
    assert len(harness.publisher.records) == published_before + 1
    assert topic == views.settings.topic_clicks
    assert answer["accepted"] == len(records) == len(answer["clicks"])
    for key, value in records:
        click = parse_click(value)
        assert isinstance(click, Click), click
        assert key == click.device_id.encode()
    for rejected in answer["rejected"]:
        assert rejected["error"] in REJECTION_CODES and rejected["detail"]


def test_chunked_body_without_length(harness: Harness) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'[{"click_id":"c9","ts":1732350000,'
        yield b'"device_id":"d9","ip":"198.51.100.4"}, 5]'

    status, text, _ = harness.post(chunks(), {"Authorization": f"Bearer {TOKEN}"})
    answer = json.loads(text)
    assert status == 202 and answer["accepted"] == 1
    assert answer["rejected"] == [{"index": 1, "error": "not_object", "detail": "expected a JSON object, got number"}]
