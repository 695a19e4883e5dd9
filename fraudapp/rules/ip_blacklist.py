"""ip_blacklist: the click's IP equals a blacklisted IP or lies in a blacklisted CIDR range."""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule, with_reason
from fraudapp.settings import Settings

NAME = "ip_blacklist"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    entry = features.ip_entry
    if entry is None:
        return None
    if entry.kind == "cidr":
        text = f"ip {click.ip} in blacklisted range {entry.value}"
    else:
        text = f"ip {click.ip} is blacklisted"
    return Hit(NAME, with_reason(text, entry.reason))


RULE = Rule(name=NAME, apply=apply)
