"""session_url_repeat: at least the N-th click on one url in one session within W seconds."""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule, ordinal, seconds
from fraudapp.settings import Settings

NAME = "session_url_repeat"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    prior = features.session_url_prior_in_window
    # Both fields are needed; the count covers all devices of the session.
    if prior is None or not click.session_id or not click.url:
        return None
    nth = prior + 1
    limit = settings.session_url_threshold
    if nth < limit:
        return None
    window = seconds(settings.session_url_window_seconds)
    return Hit(
        NAME,
        f"{ordinal(nth)} click on {click.url} in session {click.session_id} within {window} s (limit {limit})",
    )


RULE = Rule(name=NAME, apply=apply)
