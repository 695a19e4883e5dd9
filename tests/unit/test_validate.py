"""Contract §2: every kind of bad input becomes a Rejection with its code; good input a Click."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.models import Click
from fraudapp.validate import REJECTION_CODES, Rejection, parse_click

GOOD = {"click_id": "c1", "ts": 1732350000.5, "device_id": "d1", "ip": "203.0.113.7"}


def with_(**changes: object) -> bytes:
    body = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            body.pop(k)
        else:
            body[k] = v
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty"),
        (None, "empty"),
        (b"x" * 70000, "oversize"),
        (b"\xff\xfe{", "invalid_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"a string"', "not_object"),
        (with_(click_id=...), "missing_field"),
        (with_(device_id=...), "missing_field"),
        (with_(ip=...), "missing_field"),
        (with_(ts=...), "missing_field"),
        (with_(click_id=5), "wrong_type"),
        (with_(device_id=""), "invalid_value"),
        (with_(device_id="x" * 129), "invalid_value"),
        (with_(ip="999.1.1.1"), "invalid_ip"),
        (with_(ip="not-an-ip"), "invalid_ip"),
        (with_(ip=17), "wrong_type"),
        (with_(ts="yesterday"), "invalid_time"),
        (with_(ts="2024-11-23T10:00:00"), "invalid_time"),  # no offset
        (with_(ts=1732350000500), "invalid_time"),  # milliseconds
        (with_(ts=True), "wrong_type"),
        (with_(url=3), "wrong_type"),
        (with_(mouse={"moves": -1, "duration_ms": 5, "straightness": 0.5}), "invalid_value"),
        (with_(mouse={"moves": 3, "duration_ms": 5, "straightness": 1.5}), "invalid_value"),
        (with_(mouse=[1]), "wrong_type"),
        (with_(country="USA"), "invalid_value"),
    ],
)
def test_rejections(raw: bytes | None, code: str) -> None:
    result = parse_click(raw, max_bytes=65536)
    assert isinstance(result, Rejection), result
    assert result.error == code
    assert result.error in REJECTION_CODES
    assert result.detail


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({}, "ts", 1732350000.5),
        ({"ts": "2024-11-23T08:20:00+00:00"}, "ts", 1732350000.0),
        ({"ts": "2024-11-23T08:20:00Z"}, "ts", 1732350000.0),
        ({"ts": 1732350000}, "ts", 1732350000.0),
        ({"ip": "2001:DB8:0:0::1"}, "ip", "2001:db8::1"),
        ({"click_id": ..., "transaction_id": "t9"}, "click_id", "t9"),
        ({"country": "de"}, "country", "DE"),
        ({"unknown_field": {"nested": 1}}, "device_id", "d1"),
    ],
)
def test_accepted(changes: dict, field: str, expected: object) -> None:
    result = parse_click(with_(**changes))
    assert isinstance(result, Click)
    assert getattr(result, field) == expected


def test_mouse_is_parsed() -> None:
    click = parse_click(with_(mouse={"moves": 12, "duration_ms": 800, "straightness": 0.6}))
    assert isinstance(click, Click) and click.mouse is not None
    assert (click.mouse.moves, click.mouse.duration_ms, click.mouse.straightness) == (12, 800, 0.6)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20) | st.integers(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(list(GOOD) + ["mouse", "url"]), inner, max_size=6),
    max_leaves=12,
).map(lambda v: json.dumps(v).encode()))
def test_never_raises(raw: bytes) -> None:
    result = parse_click(raw)
    assert isinstance(result, (Click, Rejection))
    if isinstance(result, Rejection):
        assert result.error in REJECTION_CODES
