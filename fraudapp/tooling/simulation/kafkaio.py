"""Kafka side of simulate / evaluate / replay / demo (aiokafka).

* `VerdictWatcher` follows the verdicts topic live (read_committed): the blacklist probe
  waits on it, the live display counts from it.
* `produce_inputs` sends inputs in order, paced, keyed, never waiting for a verdict (as
  real producers do), and returns where each landed (topic, partition, offset) and when
  it was sent.
* `collect_outputs` reads verdicts and dead letters for a set of input positions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from fraudapp.kafkaconn import KafkaTarget, client_options
from fraudapp.settings import Settings

Position = tuple[str, int, int]
log = logging.getLogger(__name__)
DRAIN_SECONDS = 3.0


class SimulationError(RuntimeError):
    """The detector did not answer in time, or the broker is unusable: a one-line message."""


@dataclass(frozen=True)
class SimTopics:
    clicks: str = "clicks"
    verdicts: str = "verdicts"
    dlq: str = "clicks-dlq"
    blacklist: str = "blacklist-updates"

    @classmethod
    def from_settings(cls, s: Settings) -> SimTopics:
        return cls(s.topic_clicks, s.topic_verdicts, s.topic_dlq, s.topic_blacklist)


async def ensure_topics(kafka: KafkaTarget, topics: SimTopics, partitions: int, replication: int = 1) -> None:
    """Create the public topics the simulator uses when missing, as the detector would
    (blacklist-updates has one partition: a global table's order). A worker creates its
    output topics only on first send, and the simulator must watch verdicts before that."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [(topics.clicks, partitions), (topics.verdicts, partitions), (topics.dlq, partitions),
                  (topics.blacklist, 1)]
        new = [NewTopic(name, n, replication) for name, n in wanted if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:  # another client was quicker: fine
                pass
    finally:
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        # `topics()` fetches metadata without updating the client's cache that
        # `partitions_for_topic` reads; subscribing would, but we assign partitions.
        if topic in await consumer.topics():
            consumer._client.add_topic(topic)
            await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise SimulationError(f"topic {topic!r} does not exist after {timeout:.0f} s: is a fraudapp worker running?")
        await asyncio.sleep(0.5)


def _source(body: dict[str, Any]) -> Position | None:
    src = body.get("source")
    if isinstance(src, list) and len(src) == 3:
        return (src[0], int(src[1]), int(src[2]))
    return None


class VerdictWatcher:
    """Verdicts from now on: positions answered, counts by class, for waits and live stats."""

    def __init__(self, kafka: KafkaTarget, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                         **client_options(kafka))
        self.seen: dict[Position, dict[str, Any]] = {}
        self.classes: Counter[str] = Counter()
        self.total = 0
        self._waiters: dict[Position, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60) -> None:
        await self.consumer.start()
        tps = await _partitions(self.consumer, self.topic, timeout)
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve now, before anything is produced
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for r in records:
                    try:
                        body = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        continue
                    self.total += 1
                    self.classes[str(body.get("verdict"))] += 1
                    pos = _source(body)
                    if pos is None:
                        continue
                    self.seen[pos] = body
                    waiter = self._waiters.pop(pos, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(body)

    async def wait(self, pos: Position, timeout: float) -> dict[str, Any]:
        if pos in self.seen:
            return self.seen[pos]
        fut = self._waiters.setdefault(pos, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise SimulationError(
                f"no verdict for the click at {pos[0]}[{pos[1]}]@{pos[2]} within {timeout:.0f} s: "
                f"is a fraudapp worker running on topic {pos[0]!r}?"
            ) from None

    def forget(self, pos: Position) -> None:
        self.seen.pop(pos, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.consumer.stop()


def new_producer(kafka: KafkaTarget) -> AIOKafkaProducer:
    # Idempotent with acks=all: retries can neither duplicate nor reorder a device's clicks.
    return AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=5, max_request_size=2 * 1024 * 1024,
                            **client_options(kafka))


@dataclass
class Sent:
    index: int
    position: Position
    produced_at: float


ProgressFn = Callable[[int, int], None]


async def produce_inputs(
    producer: AIOKafkaProducer,
    topic: str,
    items: Sequence[tuple[bytes | None, bytes, float]],
    *,
    speed: float,
    progress: ProgressFn | None = None,
) -> list[Sent]:
    """Send (key, value, emit_offset_seconds) items in order.

    `speed` > 0 sends item i at `start + emit / speed` wall time; 0 sends as fast as the
    producer allows. Returns what was sent, even when interrupted
    (the caller writes the truth of what went out).
    """
    futures: list[asyncio.Future[Any]] = []
    produced_at: list[float] = []
    t0 = time.monotonic()
    last_report = 0.0
    sent: list[Sent] = []
    try:
        for i, (key, value, emit) in enumerate(items):
            if speed > 0:
                ahead = t0 + emit / speed - time.monotonic()
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            futures.append(await producer.send(topic, value=value, key=key))
            produced_at.append(time.time())
            now = time.monotonic()
            if progress is not None and now - last_report > 0.2:
                last_report = now
                progress(i + 1, len(items))
    finally:
        # Whatever went out: wait for its acks (bounded), so the truth names real offsets.
        for i, fut in enumerate(futures):
            try:
                meta = await asyncio.wait_for(fut, 30)
            except (KafkaError, TimeoutError, asyncio.CancelledError) as exc:
                log.warning("input %d was not acknowledged (%s): left out of the truth", i, exc)
                continue
            sent.append(Sent(i, (meta.topic, meta.partition, meta.offset), produced_at[i]))
        if progress is not None:
            progress(len(futures), len(items))
    return sent


async def collect_outputs(
    kafka: KafkaTarget,
    topics: SimTopics,
    wanted: Iterable[Position],
    since: float,
    timeout: float,
    progress: ProgressFn | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Verdicts and dead letters answering `wanted`, read (read_committed) from the first
    record at or after `since` (epoch seconds) until every position is answered or
    `timeout`; once all are answered, the rest up to the current end is read too, so that
    a second answer to an input (a duplicate) is seen."""
    wanted = set(wanted)
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                max_partition_fetch_bytes=4 * 1024 * 1024, **client_options(kafka))
    await consumer.start()
    verdicts: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    answered: set[Position] = set()
    try:
        tps = await _partitions(consumer, topics.verdicts, 10) + await _partitions(consumer, topics.dlq, 10)
        consumer.assign(tps)
        starts = await consumer.offsets_for_times({tp: int(since * 1000) for tp in tps})
        for tp in tps:
            if starts.get(tp) is None:
                # Nothing at or after `since` below the last stable offset *yet*: an open
                # transaction may hold the answers. Not seek_to_end(): it resolves at the
                # next fetch, by when that transaction may have committed, and its answers
                # would be skipped. The answers are picked out by position anyway.
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, starts[tp].offset)
        deadline = time.monotonic() + timeout
        final_ends: dict[TopicPartition, int] | None = None
        while True:
            if final_ends is None and answered >= wanted:
                final_ends = await consumer.end_offsets(tps)
                # Read on to the end for second answers, but briefly: an open transaction
                # can hold read_committed below the high watermark for a while.
                deadline = min(deadline, time.monotonic() + DRAIN_SECONDS)
            if final_ends is not None and await _all_at(consumer, final_ends):
                break
            if time.monotonic() > deadline:
                break
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            for tp, records in batch.items():
                for r in records:
                    try:
                        body = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(body, dict):
                        continue
                    if tp.topic == topics.verdicts:
                        pos = _source(body)
                        if pos in wanted:
                            verdicts.append(body)
                            answered.add(pos)
                    else:
                        p = body.get("partition"), body.get("offset")
                        pos = (body.get("topic"), p[0], p[1]) if None not in p else None  # type: ignore[assignment]
                        if pos in wanted:
                            dead.append(body)
                            answered.add(pos)  # type: ignore[arg-type]
            if progress is not None:
                progress(len(answered), len(wanted))
    finally:
        await consumer.stop()
    return verdicts, dead


async def _all_at(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def publish(producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
    futures = [await producer.send(topic, value=v, key=k) for k, v in records]
    await asyncio.gather(*futures)
