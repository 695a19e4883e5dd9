"""Where a record that is not judged where it arrived goes: bad input to its dead-letter
topic (CONTRACT §6), counted by reason; a record keyed otherwise than its state to the
re-keyed topic, remembering where it came from."""

from __future__ import annotations

import faust
import orjson

from fraudapp import metrics
from fraudapp.app import topics
from fraudapp.batching import EventT, Outbox
from fraudapp.deadletters import dead_letter
from fraudapp.validate import Rejection


def reject(outbox: Outbox, event: EventT, rejection: Rejection, dlq: faust.TopicT | None = None) -> None:
    """To the clicks' dead-letter topic, or `dlq` (transactions have their own)."""
    msg = event.message
    record = dead_letter(
        rejection, topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value
    )
    outbox.add(dlq or topics.dlq, msg.key, orjson.dumps(record))
    metrics.dead_letters.labels(rejection.error).inc()


SOURCE_HEADER = "fraudapp-source"


def rekey(outbox: Outbox, event: EventT, topic: faust.TopicT, key: bytes) -> None:
    """Send the record on under `key`; its verdict will still name where it came from."""
    msg = event.message
    source = orjson.dumps([msg.topic, msg.partition, msg.offset])
    outbox.add(topic, key, msg.value, {SOURCE_HEADER: source})


def source_of(event: EventT) -> tuple[str, int, int]:
    """[topic, partition, offset] of the record as first produced (before any re-keying)."""
    msg = event.message
    for name, value in msg.headers or ():
        if name == SOURCE_HEADER:
            topic, partition, offset = orjson.loads(value)
            return topic, partition, offset
    return msg.topic, msg.partition, msg.offset
