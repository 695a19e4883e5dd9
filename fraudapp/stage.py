"""The skeleton every keyed stage runs on: batches -> one partition at a time -> its table's
values cached for the batch -> the stage's step -> state written once -> expiry -> outputs.

A stage is data (`Stage`): its table, how a stored value loads, what it does with one
partition's events (`step`) and what it does once that partition's state is written
(`expire`: sweep expired keys, close windows). The skeleton owns the order that makes a
stage exact and crash-safe:
- a partition's events are stepped in their Kafka order, with table reads and writes
  going to that partition's RocksDB and changelog (`in_partition_of`);
- every output, changelog record and tombstone goes through one `Outbox`, flushed once
  per batch (under exactly_once, into the partition's transaction);
- `expire` sees the batch's writes (it scans the store after the flush).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust

from fraudapp.batching import EventT, Outbox, TableCache, batches, by_partition, in_partition_of

V = TypeVar("V")
W = TypeVar("W")  # what a step hands to expire (the partition's newest event times)


def to_json(value: Any) -> Any:
    return value.to_json()


@dataclass(frozen=True, slots=True)
class Stage(Generic[V, W]):
    table: faust.Table
    load: Callable[[Any], V]
    step: Callable[[int, list[EventT], TableCache[str, V], Outbox], W]
    expire: Callable[[int, W, TableCache[str, V], Outbox], None]
    linger: float  # how long a busy stage waits for more events: the latency batching adds
    dump: Callable[[V], Any] = to_json
    end_batch: Callable[[Outbox], None] | None = None  # outputs that sum up the whole batch

    async def run(self, stream: faust.StreamT[bytes]) -> None:
        outbox = Outbox(stream.app)
        async for batch in batches(stream, self.linger):
            for partition, group in by_partition(batch).items():
                with in_partition_of(group[-1]):
                    state: TableCache[str, V] = TableCache(self.table, self.load, self.dump, partition, outbox)
                    newest = self.step(partition, group, state, outbox)
                    state.flush()
                    self.expire(partition, newest, state, outbox)
                    state.flush()
            if self.end_batch is not None:
                self.end_batch(outbox)
            await outbox.flush()
