"""Kafka side of the benchmark: topics, the pre-produced backlog, paced traffic, and a
watcher that sees outputs as any consumer would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from fraudapp.tooling.benchmark.traffic import restamp


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Watcher:
    """Reads an output topic from the start (no group); keeps receive time, record
    timestamp and click_id of every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.count = 0
        self.first_recv = self.last_recv = 0.0
        self.first_ts = self.last_ts = 0  # record timestamps, ms
        self.arrivals: deque[tuple[str, float]] = deque()  # (click_id, recv time), when tracking
        self.track = False
        self._task: asyncio.Task | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=50, max_records=5000)
            now = time.time()
            for records in batches.values():
                for rec in records:
                    if self.count == 0:
                        self.first_recv, self.first_ts = now, rec.timestamp
                    self.count += 1
                    self.last_recv = now
                    self.first_ts = min(self.first_ts, rec.timestamp)
                    self.last_ts = max(self.last_ts, rec.timestamp)
                    if self.track:
                        self.arrivals.append((orjson.loads(rec.value)["click_id"], now))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def paced(send_one, clicks: list[tuple[bytes, bytes]], rate: float) -> dict[str, deque[float]]:
    """Calls `await send_one(key, value)` for each click at `rate` per second (open loop,
    5 ms ticks), each restamped with the wall clock; returns click_id -> send times."""
    sent: dict[str, deque[float]] = defaultdict(deque)
    t0 = time.time()
    i = 0
    while i < len(clicks):
        due = min(len(clicks), int((time.time() - t0) * rate) + 1)
        while i < due:
            key, value = clicks[i]
            now = time.time()
            value = restamp(value, now)
            sent[orjson.loads(value)["click_id"]].append(now)
            await send_one(key, value)
            i += 1
        await asyncio.sleep(0.005)
    return sent


def latencies(sent: dict[str, deque[float]], arrivals: deque[tuple[str, float]]) -> list[float]:
    out = []
    for click_id, t in arrivals:
        q = sent.get(click_id)
        if q:
            out.append(t - q.popleft())
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]
