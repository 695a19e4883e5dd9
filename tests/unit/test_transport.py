"""transport.py: partitions without a committed offset restart at their beginning, not
wherever the fetcher had got to before the rebalance (the records fetched in between
were dropped by Faust, and aiokafka's seek_to_committed leaves such partitions alone)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition as TP

from fraudapp.transport import ConsumerThread, committable, never_committed


@pytest.mark.parametrize(
    "committed,fresh",
    [
        ({"a": None}, ["a"]),  # never committed
        ({"a": 0}, ["a"]),  # committed 0: aiokafka does not seek it either
        ({"a": 7}, []),
        ({"a": None, "b": 12, "c": 0}, ["a", "c"]),
        ({}, []),
    ],
)
def test_never_committed(committed: dict[str, int | None], fresh: list[str]) -> None:
    assert never_committed(committed) == fresh


class FakeAIOKafkaConsumer:
    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TP] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self.committed)

    async def beginning_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        return {tp: 3 for tp in partitions}  # the log start (records before it were deleted)

    def seek(self, partition: TP, offset: int) -> None:
        # a plain seek sets the position at once (Faust's livelock check reads it)
        assert offset == 3
        self.to_beginning.append(partition)


@pytest.mark.parametrize(
    "reset,to_beginning",
    [
        ("earliest", ["clicks:0", "clicks:2"]),
        ("latest", []),  # "latest" means from where the consumer was: nothing to do
    ],
)
def test_seek_to_committed_sends_never_committed_partitions_to_their_beginning(
    reset: str, to_beginning: list[str]
) -> None:
    p0, p1, p2, changelog = TP("clicks", 0), TP("clicks", 1), TP("clicks", 2), TP("t-device-clicks-changelog", 0)
    consumer = FakeAIOKafkaConsumer({p0: None, p1: 55, p2: 0, changelog: None})
    thread: Any = SimpleNamespace(
        _ensure_consumer=lambda: consumer,
        app=SimpleNamespace(
            conf=SimpleNamespace(consumer_auto_offset_reset=reset),
            tables=SimpleNamespace(changelog_topics={"t-device-clicks-changelog"}),
        ),
        log=logging.getLogger("test"),
    )
    committed = asyncio.run(ConsumerThread._seek_to_committed(thread))
    assert committed == {p0: None, p1: 55, p2: 0, changelog: None}  # what Faust records as committed
    # a table changelog is left to recovery, which positions it itself
    assert [f"{tp.topic}:{tp.partition}" for tp in consumer.to_beginning] == to_beginning


@pytest.mark.parametrize(
    "fetched_in,generation,flow_active,expected",
    [
        (3, 3, True, True),  # processed in this generation, flow on: commits
        (2, 3, True, False),  # fetched before the last rebalance (the stream skips it, and acks it)
        (3, 3, False, False),  # acked during a rebalance / recovery
        (None, 3, True, True),  # a message without a generation (not from a fetch)
    ],
)
def test_only_acks_of_current_messages_outside_a_rebalance_commit(
    fetched_in: int | None, generation: int, flow_active: bool, expected: bool
) -> None:
    message = SimpleNamespace(generation_id=fetched_in)
    assert committable(message, generation, flow_active) is expected
