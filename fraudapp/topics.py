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
    device_input: faust.TopicT  # what the device stage reads: clicks + clicks_rekeyed
    clicks_rekeyed: faust.TopicT
    by_click_id: faust.TopicT
    by_session: faust.TopicT
    alert_scopes: faust.TopicT
    by_entity: faust.TopicT
    verdicts: faust.TopicT
    alerts: faust.TopicT
    blacklist_updates: faust.TopicT
    transaction_input: faust.TopicT  # what the transaction stage reads: transactions + transactions_rekeyed
    transactions_rekeyed: faust.TopicT
    transaction_verdicts: faust.TopicT
    transaction_dlq: faust.TopicT
    rules: faust.TopicT
    rules_shadow: faust.TopicT
    rules_audit: faust.TopicT
    dlq: faust.TopicT


def declare(app: faust.App, s: Settings) -> Topics:
    def raw(*names: str, partitions: int = s.partitions, **kw: object) -> faust.TopicT:
        # internal=True: Faust creates the topic when it is missing (brokers in production
        # usually refuse auto-creation); an existing topic is left as it is.
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            replicas=s.replication_factor,
            internal=True,
            **kw,
        )

    internal = f"{s.app_id}-"
    return Topics(
        clicks=raw(s.topic_clicks),
        # internal=True makes Faust create both topics (with our partition count) if missing.
        device_input=raw(s.topic_clicks, internal + "clicks-by-device"),
        # Clicks whose Kafka key is not their device_id, re-keyed so that a device's clicks
        # share one partition (and one window state).
        clicks_rekeyed=raw(internal + "clicks-by-device"),
        by_click_id=raw(internal + "clicks-by-click-id"),
        by_session=raw(internal + "clicks-by-session"),
        alert_scopes=raw(internal + "verdicts-by-scope"),
        # What the reputation stage counts: one item per click and entity (state/reputation.py).
        by_entity=raw(internal + "clicks-by-entity"),
        verdicts=raw(s.topic_verdicts),
        alerts=raw(s.topic_alerts),
        # One partition: adds and removes of an entry keep their order for every worker.
        blacklist_updates=raw(s.topic_blacklist, partitions=1),
        transaction_input=raw(s.topic_transactions, internal + "transactions-by-wallet"),
        # Transfers whose Kafka key is not their sender's compared address (a checksummed
        # EVM key, or none), re-keyed so that a wallet's transfers share one partition.
        transactions_rekeyed=raw(internal + "transactions-by-wallet"),
        transaction_verdicts=raw(s.topic_transaction_verdicts),
        transaction_dlq=raw(s.topic_transactions_dlq),
        # Rule sets by name, the latest version of each kept (CONTRACT §4c).
        rules=raw(s.topic_rules, partitions=1, compacting=True),
        # Read whole by every worker's report of a shadow run (shadow.py).
        rules_shadow=raw(s.topic_rules_shadow, partitions=1),
        # The history of rule-set changes: never expired by time.
        rules_audit=raw(s.topic_rules_audit, partitions=1, config={"retention.ms": "-1"}),
        dlq=raw(s.topic_dlq),
    )
