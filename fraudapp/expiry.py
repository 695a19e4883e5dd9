"""Event-time expiry of table keys, run inside the agent that owns the partition.

Why not Faust's window expiry: it keeps one float per write in memory, runs on wall clock,
and never expires windows restored from the changelog (faust-streaming #385, #193).
This sweeper reads the partition's own RocksDB (so restored keys are found like any
other) and walks it a bounded number of keys at a time from a cursor.

An expired key is deleted from the partition's RocksDB and its changelog tombstone goes
to a `TombstoneSink` (the agent's outbox): produced with the batch's other outputs, in the
same transaction under exactly_once. Not through `del table[key]`: that queues the
tombstone in Faust's changelog buffer, and while that buffer holds over 100 records Faust
stops handing events to *every* stream, so mass expiry (a backlog's sessions and devices
expiring together) stalled verdicts for 6 s (bench/README.md, 3 Dec). Without a sink (the
memory store, unit tests) keys are deleted through the table, a bounded number per sweep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import faust
import orjson

from fraudapp.runtime.stores import offset_key, open_dbs

log = logging.getLogger(__name__)

# (key, value) -> event time after which the key may be deleted
ExpiresAt = Callable[[Any, Any], float]


class TombstoneSink(Protocol):
    def tombstone(self, topic: Any, partition: int, key: bytes) -> None: ...


class PartitionSweeper:
    def __init__(
        self,
        table: faust.Table,
        expires_at: ExpiresAt,
        *,
        every_seconds: float = 1.0,
        keys_per_sweep: int = 2000,
        max_pending_changelog: int = 500,
        compact_after_deletes: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        pending_changelog: Callable[[], int] | None = None,
    ) -> None:
        self.table = table
        self.expires_at = expires_at
        self.every_seconds = every_seconds
        self.keys_per_sweep = keys_per_sweep
        self.max_pending_changelog = max_pending_changelog
        self.compact_after_deletes = compact_after_deletes
        self.clock = clock
        self.pending_changelog = pending_changelog or (lambda: _changelog_buffer_size(table))
        self._next_run: dict[int, float] = {}
        self._cursor: dict[int, bytes | None] = {}
        self._deleted_this_walk: dict[int, int] = {}
        self.deleted = 0
        self.compactions = 0

    def maybe_sweep(self, partition: int, watermark: float, tombstones: TombstoneSink | None = None) -> int:
        """Delete expired keys of `partition`, at most once a period.

        With `tombstones`, each sweep deletes what it finds among `keys_per_sweep` keys;
        the producer's own back-pressure bounds what is in flight. Without, each delete
        queues a tombstone in Faust's changelog buffer, which drains far slower than a
        sweep deletes (1,000,000 expiring devices queued ~800,000 tombstones, 4.4 GB):
        such a sweep deletes at most as many keys as the buffer has room for below
        `max_pending_changelog`, and none while it is above."""
        now = self.clock()
        if now < self._next_run.get(partition, 0.0):
            return 0
        self._next_run[partition] = now + self.every_seconds
        if tombstones is not None and self._db(partition) is not None:
            return self.sweep(partition, watermark, tombstones=tombstones)
        room = self.max_pending_changelog - self.pending_changelog()
        if room <= 0:
            return 0
        return self.sweep(partition, watermark, max_deletes=room)

    def sweep(
        self, partition: int, watermark: float, max_deletes: int | None = None, tombstones: TombstoneSink | None = None
    ) -> int:
        expired: list[tuple[bytes, Any]] = []
        last: bytes | None = None
        stopped_early = False
        for seen, (raw_key, raw_value) in enumerate(self._items_from(partition, self._cursor.get(partition)), 1):
            last = raw_key
            key = orjson.loads(raw_key)
            if self.expires_at(key, orjson.loads(raw_value)) < watermark:
                expired.append((raw_key, key))
            if seen >= self.keys_per_sweep or (max_deletes is not None and len(expired) >= max_deletes):
                stopped_early = True
                break
        # A walk that reached the end of the partition starts over next time.
        self._cursor[partition] = last if stopped_early else None
        db = self._db(partition)
        if db is not None and tombstones is not None:
            changelog = self.table.changelog_topic
            for raw_key, _ in expired:
                db.delete(raw_key)
                tombstones.tombstone(changelog, partition, raw_key)
        else:
            for _, key in expired:
                del self.table[key]
        self.deleted += len(expired)
        walked = self._deleted_this_walk[partition] = self._deleted_this_walk.get(partition, 0) + len(expired)
        if not stopped_early:
            self._deleted_this_walk[partition] = 0
            if db is not None and walked >= self.compact_after_deletes:
                self._compact(partition, db, walked)
        return len(expired)

    def _compact(self, partition: int, db: Any, deleted: int) -> None:
        # In the loop, not a thread: Faust closes a revoked partition's DB from the loop,
        # which must not happen under a running compaction. Measured: 0.03 s for a
        # partition whose 50,000 keys expired (bench --state), 0.2 s for 250,000 (a bare
        # RocksDB); it happens once per mass expiry.
        started = time.perf_counter()
        db.flush(True)
        db.compact_range(None, None)
        release_freed_memory()
        self.compactions += 1
        log.info(
            "expiry: compacted %s partition %d after a walk deleted %d keys (%.2f s)",
            getattr(self.table, "name", "?"), partition, deleted, time.perf_counter() - started,
        )  # fmt: skip

    def _db(self, partition: int) -> Any:
        dbs = open_dbs(self.table)
        return None if dbs is None else dbs.get(partition)

    def _items_from(self, partition: int, cursor: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        store = self.table.data
        if open_dbs(self.table) is None:
            # memory store (unit tests): one dict for all partitions
            items = sorted((orjson.dumps(k), orjson.dumps(v)) for k, v in store.items())
            yield from ((k, v) for k, v in items if cursor is None or k > cursor)
            return
        db = self._db(partition)
        if db is None:
            return
        it = db.iter()
        if cursor is None:
            it.seek_to_first()
        else:
            it.seek(cursor)
            if it.valid() and it.key() == cursor:
                it.next()
        skip = offset_key(self.table)
        while it.valid():
            key = it.key()
            if key != skip:
                yield key, it.value()
            it.next()


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc `malloc_trim`; a no-op elsewhere).

    glibc keeps what RocksDB and the producer free in its heap for reuse, so without
    this the worker's RSS would not fall after a mass expiry even though nothing uses it."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


def _changelog_buffer_size(table: faust.Table) -> int:
    """Records waiting in Faust's changelog send buffer (0 when there is none, e.g. tests)."""
    try:
        return int(table.app.producer.buffer.size)
    except (AttributeError, RuntimeError):  # no app or producer yet, or another transport
        return 0
