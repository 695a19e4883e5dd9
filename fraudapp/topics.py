"""Every topic fraudapp reads or writes, declared once.

Public topics carry contract names (overridable by settings); internal repartition topics
carry the app id, as Faust's changelogs do. All values are raw bytes: decoding happens in
`validate.py` / `pipeline.py`, so a bad message can never crash an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from fraudapp.settings import Settings


@dataclass(frozen=True)
class Topics:
    clicks: faust.TopicT
    clicks_rekeyed: faust.TopicT
    by_click_id: faust.TopicT
    by_session: faust.TopicT
    alert_scopes: faust.TopicT
    verdicts: faust.TopicT
    alerts: faust.TopicT
    blacklist_updates: faust.TopicT
    dlq: faust.TopicT


def declare(app: faust.App, s: Settings) -> Topics:
    def raw(name: str, **kw: object) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=s.partitions,
            **kw,
        )

    internal = f"{s.app_id}-"
    return Topics(
        clicks=raw(s.topic_clicks),
        # Clicks whose Kafka key is not their device_id, re-keyed so that a device's clicks
        # share one partition (and one window state).
        clicks_rekeyed=raw(internal + "clicks-by-device", internal=True),
        by_click_id=raw(internal + "clicks-by-click-id", internal=True),
        by_session=raw(internal + "clicks-by-session", internal=True),
        alert_scopes=raw(internal + "verdicts-by-scope", internal=True),
        verdicts=raw(s.topic_verdicts),
        alerts=raw(s.topic_alerts),
        blacklist_updates=raw(s.topic_blacklist),
        dlq=raw(s.topic_dlq),
    )
