"""Batches of events per partition, table state cached per batch, outputs produced in bulk.

Why: a Faust agent pays per event for the consume path, per table write for a RocksDB put
plus a changelog record, and per `topic.send` for Faust's send machinery (~0.1-0.3 ms
each). A stage that handles a batch of events writes each touched key once per batch (the
changelog grows with keys, not events: what Kafka Streams' record cache does) and hands
its outputs straight to the producer.

At-least-once holds: `batches` acks a batch only after the agent is done with it, and
Faust flushes the producer before it commits offsets. Under exactly_once a batch holds
events of one partition and runs inside the commit gate (`fraudapp.runtime.exactly_once.event_batches`);
its outputs and changelog records go to that partition's transactional producer in one
go (`fraudapp.runtime.exactly_once.send_in_transaction`), so that they join that partition's transaction.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

import faust
import orjson
from faust.streams import _current_event
from rocksdict import WriteBatch

from fraudapp.pipeline import pack, partition_of
from fraudapp.runtime.exactly_once import event_batches, send_in_transaction
from fraudapp.runtime.producer import partitions_of
from fraudapp.runtime.sensors import count_sent
from fraudapp.runtime.stores import partition_db, stored_items
from fraudapp.runtime.streams import BATCH_MAX, Gatherer, queued

log = logging.getLogger(__name__)


EventT = faust.types.EventT
K = TypeVar("K")
V = TypeVar("V")


async def batches(stream: faust.StreamT, linger: float) -> AsyncIterator[list[EventT]]:
    """Events of the stream in batches (`Gatherer`), acked only after the agent has handled
    their batch (at-least-once). Under exactly_once: `fraudapp.runtime.exactly_once.event_batches`."""
    if stream.app.in_transaction:
        # one partition per batch, inside the commit gate (fraudapp/runtime/exactly_once.py)
        async for batch in event_batches(stream, linger, BATCH_MAX):
            yield batch
        return
    stream.enable_acks = False
    gatherer = Gatherer(stream.events(), linger, ready=queued(stream))
    try:
        while (first := await gatherer.first()) is not None:
            batch = await gatherer.rest(first)
            yield batch
            for handled in batch:
                await stream.ack(handled)
    finally:
        gatherer.close()


def by_partition(batch: list[EventT]) -> dict[int, list[EventT]]:
    """Events grouped by source partition, each group in Kafka order."""
    groups: dict[int, list[EventT]] = {}
    for event in batch:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


@contextlib.contextmanager
def in_partition_of(event: EventT) -> Iterator[None]:
    """Table reads and writes inside go to `event`'s partition (its RocksDB and changelog)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


_DELETED = object()  # a TableCache value: delete the key at the flush
_MISSING = object()


class TableCache(Generic[K, V]):
    """A table's values for one batch of one partition: read once, written back once.

    On RocksDB (the default store) the partition's database is read and written directly
    (one write batch per flush) and each written key's changelog record goes to the
    `outbox`, produced with the batch's other records (under exactly_once: in the
    partition's transaction). Faust's per-key path - a double store lookup and a sensor
    call per read; per write a put, a sensor call, and a `send_soon` record that a
    background task hands to the producer one send and one lock at a time - cost about
    0.2 ms a click (bench/README.md). Keys and values are the JSON bytes Faust's json
    serializer writes (orjson), so Faust's recovery, standbys and readers see the same
    table. On other stores (unit tests: memory) it goes through the table API.

    `changelog=False` keeps the writes local (RocksDB only): for state a worker may lose
    when it crashes or its partition moves (a reputation entity's first sighting), whose
    changelog records would cost more than the state is worth.
    """

    def __init__(self, table: faust.Table, load: Callable[[Any], V], dump: Callable[[V], Any],
                 partition: int | None = None, outbox: Outbox | None = None, changelog: bool = True) -> None:
        self.table = table
        self.load = load
        self.dump = dump
        self.values: dict[K, V] = {}
        self.dirty: set[K] = set()
        self.partition = partition
        self.outbox = outbox
        self.db = partition_db(table, partition) if outbox is not None and partition is not None else None
        self.changelog = changelog

    def get(self, key: K) -> V:
        value = self.values.get(key, _MISSING)
        if value is _DELETED:
            return self.load(None)
        if value is _MISSING:
            if self.db is None:
                raw = self.table.get(key)
            else:
                stored = self.db.get(orjson.dumps(key))
                raw = None if stored is None else orjson.loads(stored)
            value = self.values[key] = self.load(raw)
        return value  # type: ignore[return-value]

    def stored_items(self) -> Iterator[tuple[K, Any]]:
        """The partition's flushed (key, value) pairs, decoded but not loaded."""
        if self.db is None:
            yield from self.table.items()
            return
        for raw_key, raw_value in stored_items(self.table, self.db):
            yield orjson.loads(raw_key), orjson.loads(raw_value)

    def put(self, key: K, value: V) -> None:
        self.values[key] = value
        self.dirty.add(key)

    def delete(self, key: K) -> None:
        """Remove `key` at the flush (its changelog record is a tombstone)."""
        self.values[key] = _DELETED  # type: ignore[assignment]
        self.dirty.add(key)

    def flush(self) -> None:
        if self.db is None:
            for key in self.dirty:
                value = self.values[key]
                if value is _DELETED:
                    self.table.pop(key, None)
                else:
                    self.table[key] = self.dump(value)
        elif self.dirty:
            assert self.outbox is not None and self.partition is not None
            batch = WriteBatch(raw_mode=True)
            for key in self.dirty:
                key_bytes = orjson.dumps(key)
                value = self.values[key]
                if value is _DELETED:
                    value_bytes = None
                    batch.delete(key_bytes)
                else:
                    value_bytes = orjson.dumps(self.dump(value))
                    batch.put(key_bytes, value_bytes)
                if self.changelog:
                    self.outbox.changelog(self.table, self.partition, key_bytes, value_bytes)
            self.db.write(batch)
        self.dirty.clear()
        self.values.clear()


# A pack stays far below Kafka's default 1 MB record limit.
PACK_MAX_ITEMS = 200
PACK_MAX_BYTES = 256 * 1024

Record = tuple[faust.TopicT, bytes | None, bytes | None, dict[str, bytes] | None, int | None]
Produced = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]


class Outbox:
    """Records to produce for a batch; `flush` hands them to the producer.

    `add_packed` items are grouped by the partition their key hashes to (Kafka's default
    partitioner: murmur2) and produced as packs of up to `PACK_MAX_ITEMS` per record,
    the encoding of `fraudapp.pipeline.pack`."""

    def __init__(self, app: faust.App, transactional: bool = True) -> None:
        self.app = app
        # False: markers that carry no state (the alert ticks) go out as soon as they are
        # flushed, outside any transaction, as there is no input partition to join.
        self.transactional = transactional
        self.records: list[Record] = []
        self.packed: dict[faust.TopicT, list[tuple[bytes, bytes]]] = {}
        # per (table, partition): its changelog records, in write order
        self.changelogs: dict[tuple[faust.Table, int], list[tuple[bytes, bytes | None]]] = {}
        self._partitions: dict[str, list[int]] = {}

    def add(
        self,
        topic: faust.TopicT,
        key: bytes | None,
        value: bytes,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,  # None: by key
    ) -> None:
        self.records.append((topic, key, value, headers, partition))

    def tombstone(self, topic: faust.TopicT, partition: int, key: bytes) -> None:
        """A table key's deletion for its changelog partition (`fraudapp.expiry.TombstoneSink`)."""
        self.records.append((topic, key, None, None, partition))

    def add_packed(self, topic: faust.TopicT, key: bytes, item: bytes) -> None:
        self.packed.setdefault(topic, []).append((key, item))

    def changelog(self, table: faust.Table, partition: int, key: bytes, value: bytes | None) -> None:
        """A table write's changelog record (`TableCache.flush`); once produced, the table's
        persisted offset follows it, as Faust's own changelog sends do."""
        self.changelogs.setdefault((table, partition), []).append((key, value))

    async def flush(self) -> None:
        if self.packed:
            await self._pack()
        records, self.records = self.records, []
        changelogs, self.changelogs = self.changelogs, {}
        produced: list[Produced] = [
            (topic.get_topic_name(), key, value, partition, list(headers.items()) if headers else None)
            for topic, key, value, headers, partition in records
        ]
        last_of: list[tuple[faust.Table, int]] = []  # which produced record ends a changelog run
        for (table, partition), entries in changelogs.items():
            name = table.changelog_topic.get_topic_name()
            produced.extend((name, key, value, partition, None) for key, value in entries)
            last_of.append((table, len(produced) - 1))
        if not produced:
            return
        count_sent(self.app.monitor, Counter(record[0] for record in produced))
        if self.app.in_transaction and self.transactional:
            futures = await send_in_transaction(self.app, produced)
        else:
            # Awaiting only queues a record; Faust flushes the producer before each offset
            # commit, so an input is never committed ahead of its outputs.
            producer = self.app.producer
            futures = [
                await producer.send(topic, key=key, value=value, partition=partition, timestamp=None, headers=headers)
                for topic, key, value, partition, headers in produced
            ]
        for future in futures:
            future.add_done_callback(_log_failure)
        for table, index in last_of:
            futures[index].add_done_callback(functools.partial(_persisted, self.app, table))

    async def _pack(self) -> None:
        packed, self.packed = self.packed, {}
        for topic, items in packed.items():
            partitions = await self._partitions_of(topic.get_topic_name())
            count = len(partitions)
            by_partition: dict[int, list[bytes]] = {}
            for key, item in items:
                partition = partitions[partition_of(key, count)]
                by_partition.setdefault(partition, []).append(item)
            for partition, encoded in by_partition.items():
                for chunk in _chunks(encoded):
                    self.records.append((topic, None, pack(chunk), None, partition))

    async def _partitions_of(self, topic: str) -> list[int]:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = await partitions_of(self.app, topic)
        return partitions


def _chunks(encoded: list[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for item in encoded:
        if chunk and (len(chunk) >= PACK_MAX_ITEMS or size + len(item) > PACK_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield chunk


def _persisted(app: faust.App, table: faust.Table, future: Any) -> None:
    """Record a produced changelog offset as the table's persisted one, as Faust does for
    its own changelog sends (under exactly_once: written when the partition commits)."""
    if future.cancelled() or future.exception() is not None:
        return
    metadata = future.result()
    if app.in_transaction:
        app.tables.persist_offset_on_commit(table.data, metadata.topic_partition, metadata.offset)
    else:
        table.data.set_persisted_offset(metadata.topic_partition, metadata.offset)


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not produce a record: %r", future.exception())
