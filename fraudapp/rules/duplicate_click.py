"""duplicate_click: a click with the same click_id was already accepted within the dedup horizon."""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule, event_time, seconds
from fraudapp.settings import Settings

NAME = "duplicate_click"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    first = features.duplicate_of_ts
    if first is None:
        return None
    return Hit(
        NAME,
        f"click_id {click.click_id} already accepted at ts {event_time(first)}"
        f" (horizon {seconds(settings.dedup_seconds)} s)",
    )


RULE = Rule(name=NAME, apply=apply)
