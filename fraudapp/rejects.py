"""Bad input -> its dead letter on the dead-letter topic (CONTRACT §6), counted by reason."""

from __future__ import annotations

import orjson

from fraudapp import metrics
from fraudapp.app import topics
from fraudapp.batching import EventT, Outbox
from fraudapp.deadletters import dead_letter
from fraudapp.validate import Rejection


def reject(outbox: Outbox, event: EventT, rejection: Rejection) -> None:
    msg = event.message
    record = dead_letter(
        rejection, topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value
    )
    outbox.add(topics.dlq, msg.key, orjson.dumps(record))
    metrics.dead_letters.labels(rejection.error).inc()
