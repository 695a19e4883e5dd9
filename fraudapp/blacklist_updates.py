"""Blacklist update messages (contract §4) -> table key and entry, or a Rejection."""

from __future__ import annotations

from typing import Any

from fraudapp.models import BlacklistEntry
from fraudapp.state.blacklist_index import entry_key
from fraudapp.validate import Rejection, json_object

KINDS = ("ip", "cidr", "device", "wallet")


def parse_update(raw: bytes | None, now: float) -> tuple[str, dict[str, Any] | None] | Rejection:
    """(table key, entry dict) for an add, (table key, None) for a remove."""
    if not raw:
        return Rejection("empty", "blacklist update has no value")
    obj = json_object(raw, "a blacklist update")
    return obj if isinstance(obj, Rejection) else update_from_obj(obj, now)


def update_from_obj(obj: dict[str, Any], now: float) -> tuple[str, dict[str, Any] | None] | Rejection:
    op = obj.get("op", "add")
    kind, value = obj.get("kind"), obj.get("value")
    if op not in ("add", "remove"):
        return Rejection("invalid_value", f"'op' must be 'add' or 'remove', got {op!r}")
    if kind not in KINDS:
        return Rejection("invalid_value", f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(value, str) or not value or len(value) > 256:
        return Rejection("invalid_value", "'value' must be a non-empty string of at most 256 characters")
    try:
        key = entry_key(kind, value)
    except ValueError as exc:
        return Rejection("invalid_ip" if kind in ("ip", "cidr") else "invalid_value", str(exc)[:200])
    if op == "remove":
        return key, None
    ttl = obj.get("ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0):
        return Rejection("invalid_value", f"'ttl_seconds' must be a positive number or null, got {ttl!r}")
    reason = obj.get("reason") or ""
    if not isinstance(reason, str):
        return Rejection("wrong_type", "'reason' must be a string")
    normalised = key.partition(":")[2]
    entry = BlacklistEntry(
        kind=kind,
        value=normalised,
        reason=reason[:500],
        added_at=now,
        expires_at=None if ttl is None else now + float(ttl),
    )
    return key, entry.to_dict()
