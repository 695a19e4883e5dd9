"""Plain aiokafka clients of the web side, outside Faust's consumer group and transactions.

* `Publisher`: POST /clicks and /blacklist publish through their own idempotent producer.
  Faust's producer under exactly_once sends through the transactional producer of the
  *target* partition (TransactionManager.send), which a worker that does not own that
  partition does not have, and would tie an HTTP answer to the next stream commit.
* `TopicTap`: every worker reads *all* partitions of the verdicts and alerts topics with
  no consumer group, from the end, read_committed (only verdicts of committed
  transactions), and feeds them to VerdictStats - so any worker's /stats and dashboard
  show every worker's verdicts. The transaction verdicts have a tap of their own (views.py),
  into a VerdictStats of their own; wallet alerts come with the other alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import mode
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from fraudapp.settings import Settings

log = logging.getLogger(__name__)


class Publisher(mode.Service):
    """An idempotent producer, started with the worker; `send` waits for the broker's ack."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, linger_ms=2, **self.settings.kafka_client_options()
        )
        await self.producer.start()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def send_many(self, topic: str, records: list[tuple[bytes | None, bytes]],
                        headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        """Publish all records; returns once every one is acknowledged (raises otherwise)."""
        if self.producer is None:
            raise RuntimeError("publisher not started")
        futures = [await self.producer.send(topic, key=key, value=value, headers=headers) for key, value in records]
        await asyncio.gather(*futures)


Sink = Callable[[str, Any], None]


class TopicTap(mode.Service):
    """Reads topics from their end with no group and hands each decoded JSON value to `sink`.

    `sink(topic, value)` is called in the event loop, one record at a time; records that
    are not JSON are skipped (the dashboard is no place for dead letters).
    """

    def __init__(self, settings: Settings, topics: list[str], sink: Sink, from_beginning: bool = False,
                 **kwargs: Any) -> None:  # fmt: skip
        self.settings = settings
        self.topics = topics
        self.from_beginning = from_beginning  # else from the end: what comes after the start
        self.sink = sink
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned: set[TopicPartition] = set()
        self.records = 0
        super().__init__(**kwargs)

    async def _connect(self) -> None:
        """Start the consumer; on a broker error (a topic whose metadata comes and goes while
        a broker fails over, a broker away) try again a second later. The tap starts in its
        own task, never in the worker's start, so that it cannot stop the worker."""
        while not self.should_stop:
            # Subscribed with no group, aiokafka assigns every partition of the topics itself
            # and follows metadata (a topic created later, partitions added).
            consumer = AIOKafkaConsumer(
                *self.topics,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="latest",
                **self.settings.kafka_client_options(),
            )
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                log.warning("tap of %s not started: %s: %s; retrying", ", ".join(self.topics), type(exc).__name__, exc)
                await consumer.stop()
                await self.sleep(1.0)
                continue
            self.consumer = consumer
            return

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def _position_at_end(self) -> None:
        """Once every topic has partitions: seek them to the end (or the beginning) and only
        then call it ready."""
        assert self.consumer is not None
        assignment = set(self.consumer.assignment())
        if assignment == self.assigned or {tp.topic for tp in assignment} < set(self.topics):
            return
        # Awaiting the seek resolves the end offsets now, so nothing produced after
        # `assigned` is set can be skipped by a lazy offset reset.
        if self.from_beginning:
            await self.consumer.seek_to_beginning(*(assignment - self.assigned))
        else:
            await self.consumer.seek_to_end(*(assignment - self.assigned))
        self.assigned = assignment

    @mode.Service.task
    async def _run(self) -> None:
        await self._connect()
        while not self.should_stop:
            try:
                assert self.consumer is not None
                await self._position_at_end()
                batch = await self.consumer.getmany(timeout_ms=200, max_records=2000)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:  # a broker hiccup must not kill the web side
                log.warning("tap: %s: %s", type(exc).__name__, exc)
                await self.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    self.records += 1
                    try:
                        value = orjson.loads(record.value) if record.value else None
                    except orjson.JSONDecodeError:
                        continue
                    if value is not None:
                        self.sink(tp.topic, value)
