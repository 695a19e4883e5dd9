"""Which fetched events an exactly_once agent may process (`eos._usable`): never one fetched
before its partition's last seek, nor before the seek that follows an assignment (transport
fix 6). The case that lost clicks (5 Dec): a restarted worker's partition had no committed
offset; Faust resumed it, a fetch returned offsets 31-39, and the seek to the beginning
that followed brought 0-30, which were then taken for done."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from fraudapp.runtime import consumer as transport
from fraudapp.runtime import exactly_once as eos

TOPIC = "t-clicks-by-session"
GENERATION = 2


def message(offset: int, stamp: int | None, generation: int = GENERATION) -> ConsumerMessage:
    msg = ConsumerMessage(TOPIC, 1, offset, 0.0, 0, None, None, b"[]", None, generation_id=generation)
    transport.seek_stamps[msg] = stamp
    return msg


def app(seeks: int, floor: int) -> Any:
    tp = TP(TOPIC, 1)
    consumer = SimpleNamespace(_thread=SimpleNamespace(seeks=Counter({tp: seeks})), seek_floor=lambda t: floor)
    return SimpleNamespace(consumer=consumer, consumer_generation_id=GENERATION)


@pytest.fixture(autouse=True)
def fresh_processed() -> Any:
    eos.processed.reset()
    yield
    eos.processed.reset()


@pytest.mark.parametrize(
    "case,seeks,floor,stamp,usable",
    [
        ("after the assignment's seek", 5, 5, 5, True),
        ("resumed, not sought yet", 4, 5, 4, False),
        ("fetched before the seek, handed out after it", 5, 5, 4, False),
        ("after a later seek", 6, 5, 6, True),
    ],
)
def test_an_event_counts_only_if_fetched_after_its_partitions_seek(
    case: str, seeks: int, floor: int, stamp: int, usable: bool
) -> None:
    msg = message(31, stamp)
    assert eos._usable(app(seeks, floor), SimpleNamespace(message=msg)) is usable
    assert msg.acked is not usable  # a dropped one is never committed (and never waited for)


def test_the_offsets_before_a_pre_seek_batch_are_processed_after_the_seek() -> None:
    """The 5 Dec loss, replayed: 31-39 fetched before the seek, then 0-39 after it."""
    worker = app(seeks=4, floor=5)
    early = [m for m in (message(o, 4) for o in range(31, 40)) if eos._usable(worker, SimpleNamespace(message=m))]
    assert early == []  # nothing processed before the seek
    worker.consumer._thread.seeks[TP(TOPIC, 1)] = 5  # Faust's seek to the beginning
    handled = []
    for msg in (message(o, 5) for o in range(40)):
        if eos._usable(worker, SimpleNamespace(message=msg)):
            eos.processed.record(msg)
            handled.append(msg.offset)
    assert handled == list(range(40))


def test_an_event_from_an_older_generation_is_dropped_whatever_its_stamp() -> None:
    msg = message(3, 5, generation=GENERATION - 1)
    assert eos._usable(app(5, 5), SimpleNamespace(message=msg)) is False
