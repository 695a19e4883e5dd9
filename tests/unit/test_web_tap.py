"""The web taps never stop the worker: a consumer that cannot start (a topic whose metadata
flaps while a broker fails over) is retried (CI, 6 Dec: the worker died at start)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import UnknownTopicOrPartitionError

from fraudapp.settings import Settings
from fraudapp.web import kafka


class FlakyConsumer:
    starts = 0

    def __init__(self, *topics: str, **_: Any) -> None:
        self.topics = topics
        self.stopped = False

    async def start(self) -> None:
        FlakyConsumer.starts += 1
        if FlakyConsumer.starts < 3:
            raise UnknownTopicOrPartitionError()

    async def stop(self) -> None:
        self.stopped = True


async def test_a_tap_retries_until_its_consumer_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", FlakyConsumer)
    tap = kafka.TopicTap(Settings(), ["transaction-verdicts"], lambda _t, _v: None)

    async def no_wait(_seconds: float) -> None:
        pass

    monkeypatch.setattr(tap, "sleep", no_wait)
    await tap._connect()
    assert FlakyConsumer.starts == 3
    assert isinstance(tap.consumer, FlakyConsumer) and not tap.consumer.stopped
