"""Between stages, the clicks of a batch bound for one partition travel as one record."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from fraudapp import batching
from fraudapp.batching import Outbox
from fraudapp.models import Click
from fraudapp.pipeline import InFlight, unpack


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


def inflight(i: int) -> InFlight:
    return InFlight(Click(f"c{i}", 1.7e9 + i, f"d{i % 7}", "10.0.0.1"), ("clicks", i % 3, i), 1.7e9, {"n": i})


async def packed_records(items: list[InFlight], partitions: list[int]) -> list[tuple[Any, ...]]:
    outbox = Outbox(app=None)  # type: ignore[arg-type]

    async def known(_topic: str) -> list[int]:
        return partitions

    outbox._partitions_of = known  # type: ignore[method-assign]
    topic = FakeTopic("t")
    for item in items:
        outbox.add_packed(topic, item.click.click_id.encode(), item.encode())  # type: ignore[arg-type]
    await outbox._pack()
    return outbox.records


@pytest.mark.parametrize("count, partitions", [(1, [0]), (50, [0, 1, 2, 3]), (1000, [0, 1, 2, 3, 4, 5])])
def test_each_item_lands_in_its_keys_partition_once_and_in_order(count: int, partitions: list[int]) -> None:
    items = [inflight(i) for i in range(count)]
    records = asyncio.run(packed_records(items, partitions))
    seen: list[InFlight] = []
    partitioner = DefaultPartitioner()
    for _topic, key, value, _headers, partition in records:
        assert key is None
        for item in unpack(value):
            # the partition Kafka's default partitioner would pick for the item's own key
            assert partition == partitioner(item.click.click_id.encode(), partitions, partitions)
            seen.append(item)
    assert sorted(seen, key=lambda x: x.source[2]) == items
    for partition in partitions:  # per partition, Kafka order = the order items were added
        offsets = [x.source[2] for _t, _k, v, _h, p in records if p == partition for x in unpack(v)]
        assert offsets == sorted(offsets)


def test_packs_respect_the_item_and_byte_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "PACK_MAX_ITEMS", 7)
    records = asyncio.run(packed_records([inflight(i) for i in range(100)], [0]))
    assert [len(unpack(r[2])) for r in records] == [7] * 14 + [2]
    monkeypatch.setattr(batching, "PACK_MAX_BYTES", 1)  # one item per record, never zero
    records = asyncio.run(packed_records([inflight(i) for i in range(5)], [0]))
    assert [len(unpack(r[2])) for r in records] == [1] * 5
