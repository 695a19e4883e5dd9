"""click_spam: the device already has at least T earlier clicks with event time in [ts - W, ts]."""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule, ordinal, seconds
from fraudapp.settings import Settings

NAME = "click_spam"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    prior = features.device_prior_in_window
    limit = settings.click_spam_threshold
    if prior < limit:
        return None
    window = seconds(settings.click_spam_window_seconds)
    return Hit(NAME, f"{ordinal(prior + 1)} click in {window} s (limit {limit})")


RULE = Rule(name=NAME, apply=apply)
