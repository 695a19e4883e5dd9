"""Raw bytes -> Click (contract §2) or Transaction (§2b), or a Rejection saying why (§6).
Never raises.

Error codes (the `error` field of a dead letter):
  empty, oversize, invalid_utf8, not_json, not_object, missing_field, wrong_type,
  invalid_value, invalid_ip, invalid_time
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from fraudapp.addresses import AddressError, canonical
from fraudapp.models import Click, Mouse, Transaction

MAX_ID_LENGTH = 128
# Largest mouse count / duration: integers JSON consumers (and orjson's int64) all represent.
MAX_COUNT = 2**53 - 1
# Epoch seconds accepted as event time: 2000-01-01 .. 2100-01-01. Outside that a number is
# far more likely to be milliseconds or garbage than a real click.
MIN_TS, MAX_TS = 946684800.0, 4102444800.0

OPTIONAL_STRINGS = ("session_id", "url", "campaign_id", "publisher_id", "ad_id", "user_agent", "fingerprint")
REJECTION_CODES = (
    "empty",
    "oversize",
    "invalid_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "invalid_ip",
    "invalid_time",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    error: str
    detail: str


class _Reject(Exception):
    def __init__(self, error: str, detail: str) -> None:
        self.rejection = Rejection(error, detail)


def json_object(raw: bytes, what: str) -> dict[str, Any] | Rejection:
    """`raw` as a JSON object, or why it is not one (`what`: "a blacklist update", ...)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {exc}"[:200])
    if not isinstance(obj, dict):
        return Rejection("not_object", f"{what} must be a JSON object")
    return obj


def _decoded(raw: bytes | None, max_bytes: int) -> Any:
    """The JSON value of a record's bytes, or why there is none."""
    if not raw:
        return Rejection("empty", "message has no value")
    if len(raw) > max_bytes:
        return Rejection("oversize", f"{len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Rejection("invalid_utf8", f"not UTF-8 at byte {uexc.start}")
        return Rejection("not_json", f"not JSON: {exc}"[:200])


def parse_click(raw: bytes | None, max_bytes: int = 65536) -> Click | Rejection:
    """Decode and validate one click; a Rejection instead of an exception on bad input."""
    obj = _decoded(raw, max_bytes)
    return obj if isinstance(obj, Rejection) else click_from_obj(obj)


def parse_transaction(raw: bytes | None, max_bytes: int = 65536) -> Transaction | Rejection:
    """Decode and validate one transfer (§2b)."""
    obj = _decoded(raw, max_bytes)
    return obj if isinstance(obj, Rejection) else transaction_from_obj(obj)


def transaction_from_obj(obj: Any) -> Transaction | Rejection:
    if not isinstance(obj, dict):
        return Rejection("not_object", f"expected a JSON object, got {_json_type(obj)}")
    try:
        ip = obj.get("ip")
        return Transaction(
            tx_id=_identifier("tx_id", obj.get("tx_id")),
            ts=_timestamp(obj.get("ts")),
            sender=_address("from", obj.get("from")),
            recipient=_address("to", obj.get("to")),
            amount=_amount("amount", obj.get("amount"), required=True),
            asset=_identifier("asset", obj.get("asset")),
            chain=_optional_string("chain", obj.get("chain")),
            fee=_amount("fee", obj.get("fee"), required=False),
            ip=_ip(ip) if ip is not None else None,
            device_id=_optional_string("device_id", obj.get("device_id")),
            platform_user=_optional_string("platform_user", obj.get("platform_user")),
        )
    except _Reject as rej:
        return rej.rejection


def _address(name: str, value: Any) -> str:
    if value is None:
        raise _Reject("missing_field", f"required field {name!r} is missing")
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"{name!r} must be a string, got {_json_type(value)}")
    try:
        return canonical(_text(name, value))
    except AddressError as exc:
        raise _Reject("invalid_value", f"{name!r}: {exc}") from None


def _amount(name: str, value: Any, required: bool) -> Any:
    if value is None:
        if required:
            raise _Reject("missing_field", f"required field {name!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Reject("wrong_type", f"{name!r} must be a number, got {_json_type(value)}")
    try:
        amount = float(value)
    except OverflowError:
        amount = math.inf
    if not math.isfinite(amount) or amount < 0:
        raise _Reject("invalid_value", f"{name!r} must be a finite number >= 0, got {_short(value)}")
    return amount


def click_from_obj(obj: Any) -> Click | Rejection:
    """Validate an already-decoded JSON value (used by POST /clicks too)."""
    if not isinstance(obj, dict):
        return Rejection("not_object", f"expected a JSON object, got {_json_type(obj)}")
    try:
        click_id = obj.get("click_id")
        if click_id is None:
            click_id = obj.get("transaction_id")
        return Click(
            click_id=_identifier("click_id", click_id),
            ts=_timestamp(obj.get("ts")),
            device_id=_identifier("device_id", obj.get("device_id")),
            ip=_ip(obj.get("ip")),
            mouse=_mouse(obj.get("mouse")),
            country=_country(obj.get("country")),
            **{name: _optional_string(name, obj.get(name)) for name in OPTIONAL_STRINGS},
        )
    except _Reject as rej:
        return rej.rejection


def _short(value: Any, limit: int = 64) -> str:
    """A bounded repr for error details (repr of an int over 4300 digits raises ValueError)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"(an integer of {value.bit_length()} bits)"
    return repr(value)[:limit]


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _text(name: str, value: str) -> str:
    """`value` unless it holds a lone surrogate: not Unicode text, so not encodable as UTF-8
    (orjson never decodes one, but other JSON parsers feeding click_from_obj do)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Reject("invalid_value", f"{name!r} is not valid Unicode text (lone surrogate)") from None
    return value


def _identifier(name: str, value: Any) -> str:
    if value is None:
        raise _Reject("missing_field", f"required field {name!r} is missing")
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"{name!r} must be a string, got {_json_type(value)}")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise _Reject("invalid_value", f"{name!r} must be 1..{MAX_ID_LENGTH} characters, got {len(value)}")
    return _text(name, value)


def _optional_string(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _text(name, value)
    raise _Reject("wrong_type", f"{name!r} must be a string, got {_json_type(value)}")


def _timestamp(value: Any) -> float:
    if value is None:
        raise _Reject("missing_field", "required field 'ts' is missing")
    if isinstance(value, bool):
        raise _Reject("wrong_type", "'ts' must be epoch seconds or an ISO-8601 string, got boolean")
    if isinstance(value, (int, float)):
        try:
            ts = float(value)
        except OverflowError:  # an integer beyond float range (orjson rejects those earlier)
            ts = math.inf
    elif isinstance(value, str):
        ts = _iso_timestamp(value)
    else:
        raise _Reject("wrong_type", f"'ts' must be epoch seconds or an ISO-8601 string, got {_json_type(value)}")
    if not math.isfinite(ts) or not MIN_TS <= ts <= MAX_TS:
        raise _Reject("invalid_time", f"'ts' {_short(value)} is outside 2000..2100 (epoch seconds expected)")
    return ts


def _iso_timestamp(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Reject("invalid_time", f"'ts' {text[:64]!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise _Reject("invalid_time", f"'ts' {text[:64]!r} has no UTC offset")
    return parsed.timestamp()


@lru_cache(maxsize=65536)
def _normalise_ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _ip(value: Any) -> str:
    if value is None:
        raise _Reject("missing_field", "required field 'ip' is missing")
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"'ip' must be a string, got {_json_type(value)}")
    ip = _normalise_ip(value) if len(value) <= 64 else None
    if ip is None:
        raise _Reject("invalid_ip", f"'ip' {value[:64]!r} is not an IPv4 or IPv6 address")
    return ip


def _country(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"'country' must be a string, got {_json_type(value)}")
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise _Reject("invalid_value", f"'country' {value[:16]!r} is not an ISO 3166 alpha-2 code")
    return value.upper()


def _mouse(value: Any) -> Mouse | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Reject("wrong_type", f"'mouse' must be an object, got {_json_type(value)}")
    moves, duration, straightness = value.get("moves"), value.get("duration_ms"), value.get("straightness")
    for name, v in (("moves", moves), ("duration_ms", duration)):
        if type(v) is not int or not 0 <= v <= MAX_COUNT:
            raise _Reject("invalid_value", f"'mouse.{name}' must be an integer 0..{MAX_COUNT}, got {_short(v)}")
    if isinstance(straightness, bool) or not isinstance(straightness, (int, float)) or not 0 <= straightness <= 1:
        raise _Reject("invalid_value", f"'mouse.straightness' must be a number in 0..1, got {_short(straightness)}")
    return Mouse(moves=moves, duration_ms=duration, straightness=float(straightness))
