"""Contract §2: every kind of bad input becomes a Rejection with its code; good input a Click."""

from __future__ import annotations

import ipaddress
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.deadletters import dead_letter
from fraudapp.models import Click
from fraudapp.validate import REJECTION_CODES, Rejection, click_from_obj, parse_click

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


# -- fuzzing: structured-but-wrong input ------------------------------------------------
# Any JSON value, including what orjson refuses but other parsers produce (integers past
# 64 bits, lone surrogates), for the fields a click has, plus unknown ones.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | st.sampled_from(["", "1.2.3.4", "::1", "2024-11-23T08:20:00+00:00", "x" * 129, "\ud800", "DE", "🙂"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)
FIELDS = [*GOOD, "transaction_id", "mouse", "country", "session_id", "url", "campaign_id", "publisher_id", "ad_id",
          "user_agent", "fingerprint"]
mouse_values = st.fixed_dictionaries(
    {}, optional={"moves": json_values | st.integers(), "duration_ms": json_values | st.integers(),
                  "straightness": json_values | st.floats(min_value=-1, max_value=2)},
)
# A valid click with some fields dropped and others replaced by anything.
wrong_clicks = st.builds(
    lambda drop, replace, mouse: {**{k: v for k, v in GOOD.items() if k not in drop}, **replace,
                                  **({"mouse": mouse} if mouse is not None else {})},
    st.sets(st.sampled_from(list(GOOD))),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=4),
    st.none() | mouse_values,
)


def assert_contract(result: Click | Rejection) -> None:
    """A Rejection with a documented code and a short detail, or a Click within CONTRACT §2
    that the pipeline can serialise."""
    assert isinstance(result, (Click, Rejection)), result
    if isinstance(result, Rejection):
        assert result.error in REJECTION_CODES, result
        assert result.detail and len(result.detail) <= 400
        return
    assert 1 <= len(result.click_id) <= 128 and 1 <= len(result.device_id) <= 128
    assert 946684800.0 <= result.ts <= 4102444800.0
    assert ipaddress.ip_address(result.ip).compressed == result.ip
    assert Click.from_row(orjson.loads(orjson.dumps(result.to_row()))) == result


@settings(max_examples=400, deadline=None)
@given(wrong_clicks)
def test_structured_but_wrong_objects_never_raise(obj: dict) -> None:
    assert_contract(click_from_obj(obj))


@settings(max_examples=300, deadline=None)
@given(wrong_clicks)
def test_structured_but_wrong_bytes_never_raise(obj: dict) -> None:
    # Through the byte decoder as a producer would send them (stdlib json writes what
    # orjson will not read: huge integers, NaN, lone surrogates).
    raw = json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    assert_contract(parse_click(raw))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
                max_size=6))
def test_mutated_bytes_of_a_valid_click_never_raise(edits: list[tuple[int, int, str]]) -> None:
    raw = bytearray(orjson.dumps({**GOOD, "mouse": {"moves": 3, "duration_ms": 400, "straightness": 0.5},
                                  "user_agent": "Mozilla/5.0", "country": "DE"}))
    for pos, byte, op in edits:
        pos %= len(raw) + 1
        if op == "insert":
            raw.insert(pos, byte)
        elif raw and pos < len(raw):
            if op == "set":
                raw[pos] = byte
            else:
                del raw[pos]
    result = parse_click(bytes(raw))
    assert_contract(result)
    if isinstance(result, Rejection):
        # and its dead letter is a JSON record whatever the bytes were
        letter = dead_letter(result, topic="clicks", partition=0, offset=1, key=bytes(raw[:8]), value=bytes(raw))
        assert orjson.loads(orjson.dumps(letter))["error"] == result.error


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({**GOOD, "ts": 10**400}, "invalid_time"),  # past float range: OverflowError before
        ({**GOOD, "ts": -(10**5000)}, "invalid_time"),  # repr() of it raised ValueError
        ({**GOOD, "device_id": "d\ud800"}, "invalid_value"),  # not encodable: crashed the producer
        ({**GOOD, "url": "\udfff"}, "invalid_value"),
        ({**GOOD, "mouse": {"moves": 2**64, "duration_ms": 1, "straightness": 0.5}}, "invalid_value"),
        ({**GOOD, "mouse": {"moves": 1, "duration_ms": 1, "straightness": 10**5000}}, "invalid_value"),
    ],
)
def test_values_other_parsers_produce_are_rejected(obj: dict, code: str) -> None:
    result = click_from_obj(obj)
    assert isinstance(result, Rejection) and result.error == code, result
