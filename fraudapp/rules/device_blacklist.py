"""device_blacklist: the click's device_id is a blacklisted device."""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule, with_reason
from fraudapp.settings import Settings

NAME = "device_blacklist"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    entry = features.device_entry
    if entry is None:
        return None
    return Hit(NAME, with_reason(f"device {click.device_id} is blacklisted", entry.reason))


RULE = Rule(name=NAME, apply=apply)
