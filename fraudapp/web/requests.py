"""Pure pieces of the write routes: parse POST /clicks and /blacklist bodies into records.

Kept apart from the views so that they can be tested without a server or a broker.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import orjson

from fraudapp.addresses import EVM
from fraudapp.blacklist_updates import update_from_obj
from fraudapp.validate import Rejection, click_from_obj

MAX_ITEMS = 10_000  # per request: the body limit bounds it too, this bounds the work


@dataclass
class Parsed:
    """Records to publish (key, value) and, for each refused item, why."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def parse_clicks(body: Any, max_click_bytes: int) -> Parsed:
    """One click object or a JSON array of them -> records keyed by device_id."""
    out = Parsed()
    clicks = body if isinstance(body, list) else [body]
    if len(clicks) > MAX_ITEMS:
        out.errors.append({"index": None, "error": "too_many", "detail": f"at most {MAX_ITEMS} clicks a request"})
        return out
    for i, obj in enumerate(clicks):
        click = click_from_obj(obj)
        if isinstance(click, Rejection):
            out.errors.append({"index": i, "error": click.error, "detail": click.detail})
            continue
        value = orjson.dumps(obj)  # as sent: unknown fields travel on (CONTRACT §2)
        if len(value) > max_click_bytes:
            out.errors.append(
                {"index": i, "error": "oversize", "detail": f"{len(value)} bytes exceeds the limit of {max_click_bytes}"}
            )
            continue
        out.records.append((click.device_id.encode(), value))
        out.items.append({"index": i, "click_id": click.click_id})
    return out


def infer_kind(value: str) -> str:
    """Blacklist kind of a bare value: an IP literal -> ip, a network -> cidr, an EVM address
    -> wallet, else device (other wallet forms need kind=wallet)."""
    if EVM.fullmatch(value):
        return "wallet"
    try:
        ipaddress.ip_address(value)
        return "ip"
    except ValueError:
        pass
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
            return "cidr"
        except ValueError:
            pass
    return "device"


def parse_blacklist_entries(body: Any, now: float) -> Parsed:
    """One entry or {"entries": [...]} -> §4 add updates keyed by the entry's value.

    All or nothing: an admin's batch with a bad entry publishes none of it.
    """
    out = Parsed()
    if isinstance(body, dict) and "entries" in body:
        entries = body["entries"]
        if not isinstance(entries, list) or not entries:
            out.errors.append({"index": None, "error": "invalid_value", "detail": "'entries' must be a non-empty list"})
            return out
    else:
        entries = [body]
    if len(entries) > MAX_ITEMS:
        out.errors.append({"index": None, "error": "too_many", "detail": f"at most {MAX_ITEMS} entries a request"})
        return out
    for i, obj in enumerate(entries):
        if not isinstance(obj, dict):
            out.errors.append({"index": i, "error": "not_object", "detail": "an entry must be a JSON object"})
            continue
        if obj.get("op", "add") != "add":
            out.errors.append({"index": i, "error": "invalid_value", "detail": "POST adds entries; use DELETE to remove"})
            continue
        update = update_from_obj(obj, now)
        if isinstance(update, Rejection):
            out.errors.append({"index": i, "error": update.error, "detail": update.detail})
            continue
        key, entry = update
        assert entry is not None
        message = {
            "op": "add",
            "kind": entry["kind"],
            "value": entry["value"],
            "reason": entry["reason"],
            "ttl_seconds": obj.get("ttl_seconds"),
        }
        out.records.append((entry["value"].encode(), orjson.dumps(message)))
        out.items.append({**message, "key": key})
    if out.errors:
        out.records.clear()
        out.items.clear()
    return out


def removal(value: str, kind: str | None) -> tuple[str, bytes, bytes] | Rejection:
    """(table key, Kafka key, value) of the §4 remove update for DELETE /blacklist/{value}."""
    kind = kind or infer_kind(value)
    update = update_from_obj({"op": "remove", "kind": kind, "value": value}, 0.0)
    if isinstance(update, Rejection):
        return update
    key, _ = update
    normalised = key.partition(":")[2]
    message = {"op": "remove", "kind": kind, "value": normalised}
    return key, normalised.encode(), orjson.dumps(message)
