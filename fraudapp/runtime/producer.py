"""Faust's producer: what fraudapp needs from the aiokafka producer under it, which Faust
offers no accessor for (checked against the releases in `versions.py`)."""

from __future__ import annotations

import asyncio

import faust


async def partitions_of(app: faust.App, topic: str, timeout: float | None = None) -> list[int]:
    """`topic`'s partitions, as Faust's producer knows them (fetching its metadata first if
    it has never sent to it: Faust's table router hashes keys with what the producer
    knows). Raises aiokafka's KafkaError, or TimeoutError after `timeout` seconds."""
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    return sorted(await asyncio.wait_for(producer.partitions_for(topic), timeout))
