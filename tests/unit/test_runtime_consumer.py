"""fraudapp/runtime/consumer.py: partitions without a committed offset restart at their beginning, not
wherever the fetcher had got to before the rebalance (the records fetched in between
were dropped by Faust, and aiokafka's seek_to_committed leaves such partitions alone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition as TP

from fraudapp.runtime.consumer import (
    REREAD_AFTER,
    STOP_WAIT,
    Consumer,
    ConsumerThread,
    behind_floor,
    committable,
    fetched_after_last_seek,
    never_committed,
    next_commit,
    seek_stamps,
)


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
    """aiokafka's consumer as `_seek_to_committed` uses it; notes an await that comes after
    a seek (a fetch could run there, between a seek and its count)."""

    def __init__(self, committed: dict[TP, int | None], log_start: int = 3) -> None:
        self._committed = committed
        self.log_start = log_start  # records before it were deleted
        self.sought: dict[TP, int] = {}
        self.awaited_after_a_seek = False

    def assignment(self) -> set[TP]:
        return set(self._committed)

    async def committed(self, tp: TP) -> int | None:
        self.awaited_after_a_seek |= bool(self.sought)
        await asyncio.sleep(0)
        return self._committed[tp]

    async def beginning_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        self.awaited_after_a_seek |= bool(self.sought)
        await asyncio.sleep(0)
        return {tp: self.log_start for tp in partitions}

    def seek(self, partition: TP, offset: int) -> None:
        # a plain seek sets the position at once (Faust's livelock check reads it)
        self.sought[partition] = offset


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
    starts: dict[TP, int] = {}
    thread: Any = SimpleNamespace(
        _ensure_consumer=lambda: consumer,
        app=SimpleNamespace(
            conf=SimpleNamespace(consumer_auto_offset_reset=reset),
            tables=SimpleNamespace(changelog_topics={"t-device-clicks-changelog"}),
        ),
        log=logging.getLogger("test"),
        consumer=SimpleNamespace(record_starts=starts.update, committed_floor=dict),
        _count_seeks=lambda tps: None,
        _sought=lambda targets: None,
    )
    committed = asyncio.run(ConsumerThread._seek_to_committed(thread))
    assert committed == {p0: None, p1: 55, p2: 0, changelog: None}  # what Faust records as committed
    # a table changelog is left to recovery, which positions it itself
    to_start = sorted(f"{tp.topic}:{tp.partition}" for tp, offset in consumer.sought.items() if offset == 3)
    assert to_start == to_beginning
    assert consumer.sought[p1] == 55
    # and where reading began, which their first commit must start from
    assert sorted(f"{tp.topic}:{tp.partition}" for tp in starts) == to_beginning


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


@pytest.mark.parametrize(
    "case,head,acked,offset,left",
    [
        (
            "3 Dec: committed 4, 4 in nobody's hands, 5-84 acked (upstream committed 85)",
            4,
            [*range(5, 85)],
            None,
            [*range(5, 85)],
        ),
        ("never committed, read from 0, 0 not acked (upstream committed past it)", 0, [1, 2], None, [1, 2]),
        ("never committed, read from 0", 0, [0, 1, 2], 3, []),
        ("committed 31: the run from 31 up to the first gap", 31, [31, 32, 33, 36, 37], 34, [36, 37]),
        ("acked below the head (read again after a seek) are dropped with the run", 4, [2, 3, 4, 5], 6, []),
        ("acked below the head only", 4, [2, 3], None, []),
        ("nothing acked", 7, [], None, []),
        ("head unknown: from the lowest acked, as upstream", None, [5, 6, 8], 7, [8]),
    ],
)
def test_next_commit(case: str, head: int | None, acked: list[int], offset: int | None, left: list[int]) -> None:
    assert next_commit(head, acked) == offset, case
    assert acked == left, case


class Message:
    """The fields of a Faust message the consumer's ack reads (weak-referenceable, as upstream keeps them in a WeakSet)."""

    def __init__(self, tp: TP, offset: int, generation_id: int) -> None:
        self.tp, self.topic, self.offset, self.generation_id = tp, tp.topic, offset, generation_id
        self.partition = tp.partition
        self.acked = False


class FakeThread:
    def __init__(self) -> None:
        self.seeks: list[tuple[TP, int]] = []

    async def seek_now(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@pytest.fixture
def consumer() -> Any:
    import faust

    app = faust.App("transport-unit", broker="kafka://localhost:1")

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    consumer = Consumer(app.transport, callback=nothing, on_partitions_revoked=nothing, on_partitions_assigned=nothing)
    app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
    consumer._thread = FakeThread()
    consumer.assignment = lambda: {TP("clicks", 0)}  # type: ignore[method-assign]
    app.flow_control.resume()
    consumer.resume_flow()
    return consumer


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_first_commit_waits_for_the_offset_reading_began_at(consumer: Any) -> None:
    tp = TP("clicks", 0)
    consumer.record_starts({tp: 0})  # fix 1: never committed, sought to the log start
    for offset in (1, 2, 3):
        assert consumer.ack(Message(tp, offset, 0)) is True
    assert consumer._new_offset(tp) is None  # click 0 is still being processed
    consumer.ack(Message(tp, 0, 0))
    assert consumer._new_offset(tp) == 4


def test_a_partition_held_by_a_click_nobody_processes_is_read_again_from_it(consumer: Any) -> None:
    """3 Dec: clicks 2-3 were skipped by the stream (acks refused), 4-10 were answered, and
    the commit stayed at 2 for good. Now, once that has lasted REREAD_AFTER, the partition is
    sought back to 2 before the next fetch, and the copies read again let the commit on."""
    app, tp = consumer.app, TP("clicks", 0)
    app.consumer_generation_id = 4
    consumer._committed_offset[tp] = 2
    app.flow_control.suspend()
    consumer.stop_flow()
    skipped = [Message(tp, o, 4) for o in (2, 3)]
    for message in skipped:
        consumer._unacked_messages.add(message)
        assert consumer.ack(message) is False  # skipped in a rebalance: not committable
    assert not consumer._unacked_messages  # but their life has ended: wait_empty() does not wait
    assert consumer.plan_rereads(now=0.0) == {}  # in a rebalance: its own seek covers them
    app.flow_control.resume()
    consumer.resume_flow()
    for offset in range(4, 11):
        assert consumer.ack(Message(tp, offset, 4)) is True
    assert consumer._new_offset(tp) is None  # held at 2

    assert consumer.plan_rereads(now=100.0) == {}  # held: noted
    assert consumer.plan_rereads(now=100.0 + REREAD_AFTER - 1) == {}  # a slow click gets its time
    assert consumer.plan_rereads(now=100.0 + REREAD_AFTER) == {tp: 2}
    assert consumer._thread.seeks == []  # not while a fetched batch may still be handed out
    run(consumer._rewind())
    assert consumer._thread.seeks == [(tp, 2)]
    assert consumer._read_offset[tp] == 2  # Faust would drop the copies below its read offset
    for offset in range(2, 11):
        assert consumer.ack(Message(tp, offset, 4)) is True  # the copies count afresh
    assert consumer._new_offset(tp) == 11
    assert consumer.plan_rereads(now=1000.0) == {}


def test_a_head_that_moves_restarts_the_clock(consumer: Any) -> None:
    tp = TP("clicks", 0)
    consumer._committed_offset[tp] = 2
    consumer.ack(Message(tp, 3, 0))
    assert consumer.plan_rereads(now=0.0) == {}
    consumer.ack(Message(tp, 2, 0))
    assert consumer._new_offset(tp) == 4
    consumer._committed_offset[tp] = 4
    consumer.ack(Message(tp, 5, 0))
    assert consumer.plan_rereads(now=REREAD_AFTER) == {}  # held at 4 only since now
    assert consumer.plan_rereads(now=2 * REREAD_AFTER) == {tp: 4}


def test_a_copy_acked_twice_still_ends_its_life(consumer: Any) -> None:
    tp = TP("clicks", 0)
    assert consumer.ack(Message(tp, 3, 0)) is True
    copy = Message(tp, 3, 0)  # read again (a seek back) while the first was in flight
    consumer._unacked_messages.add(copy)
    assert consumer.ack(copy) is False
    assert copy not in consumer._unacked_messages


@pytest.mark.parametrize("what", ["rebalance", "committed since"])
def test_a_planned_seek_back_is_dropped_if_it_is_no_longer_needed(consumer: Any, what: str) -> None:
    tp = TP("clicks", 0)
    consumer._committed_offset[tp] = 2
    consumer._rewinds = {tp: 2}
    if what == "rebalance":
        consumer.app.flow_control.suspend()
        consumer.stop_flow()
    else:
        consumer._committed_offset[tp] = 5
    run(consumer._rewind())
    assert consumer._thread.seeks == [] and not consumer._rewinds


def test_upstream_commits_past_an_unacked_head(consumer: Any) -> None:
    """Why `_new_offset` is replaced: faust-streaming 0.15.3 commits 85 here, past click 4."""
    from faust.transport.consumer import Consumer as Upstream

    tp = TP("clicks", 0)
    consumer._committed_offset[tp] = 4
    for offset in range(5, 85):
        consumer.ack(Message(tp, offset, 0))
    assert Upstream._new_offset(consumer, tp) == 85


def test_a_stop_waits_for_running_events_only_and_ends_the_cleared_ones_uncommitted(
    consumer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM under load, 3 Dec: Faust's stop clears the streams' queues, then waited for
    the acks of the messages it had cleared until the worker was killed."""
    tp = TP("clicks", 0)
    consumer._committed_offset[tp] = 0
    running, cleared = Message(tp, 0, 0), Message(tp, 1, 0)
    consumer._unacked_messages.update({running, cleared})
    commits: list[bool] = []

    async def commit(*args: Any, start_new_transaction: bool = True, **kwargs: Any) -> bool:
        commits.append(start_new_transaction)
        return True

    monkeypatch.setattr(consumer, "commit", commit)

    async def stop() -> float:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(type(consumer), "loop", property(lambda self: loop))
        loop.call_later(0.05, consumer.ack, running)  # an agent finishes its event
        started = loop.time()
        await consumer.wait_empty()
        return loop.time() - started

    took = run(stop())
    assert not consumer._unacked_messages
    assert running.acked and cleared.acked  # both lives ended: nothing waits for them
    assert consumer._new_offset(tp) == 1  # only the processed click commits; 1 is read again
    assert commits[-1] is False  # the last commit ends the transactions
    assert took < STOP_WAIT


def test_the_worker_consumer_fetch_waits_the_apps_time_not_fausts() -> None:
    """Fix 5: Faust hard-codes a 1.5 s fetch wait, which stalled the stages."""
    from fraudapp.app import app, settings
    from fraudapp.runtime.consumer import UPSTREAM_FETCH_MAX_WAIT_MS

    async def build() -> int:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert settings.fetch_max_wait_ms != UPSTREAM_FETCH_MAX_WAIT_MS
    assert asyncio.run(build()) == settings.fetch_max_wait_ms


# --- fix 6: a record fetched before its partition's seek is known as such ----------------


@pytest.mark.parametrize(
    "stamp,seeks,floor,usable",
    [
        (2, 2, 2, True),  # fetched after the seek that followed the assignment
        (1, 2, 2, False),  # fetched before the last seek: the seek brings it again if due
        (1, 1, 2, False),  # no seek since the assignment yet (Faust resumes, then seeks)
        (3, 3, 2, True),  # a later seek (a rewind), fetched after it
        (None, 0, 0, False),  # not fetched by this consumer: never judged blind
    ],
)
def test_fetched_after_last_seek(stamp: int | None, seeks: int, floor: int, usable: bool) -> None:
    assert fetched_after_last_seek(stamp, seeks, floor) is usable


class FakeFetcher:
    """aiokafka's fetcher, as Faust's `_fetch_records` uses it."""

    _closed = False

    def __init__(self, records: dict[TP, list[Any]]) -> None:
        self.records = records
        self._subscriptions = SimpleNamespace(fetch_context=lambda: contextlib.nullcontext())

    async def fetched_records(self, partitions: Any, timeout: Any = None, max_records: Any = None) -> dict:
        records, self.records = self.records, {}
        return records


def test_records_carry_the_seek_count_of_their_fetch_and_messages_keep_it() -> None:
    from aiokafka.structs import ConsumerRecord

    from fraudapp.app import app

    tp = TP("clicks", 0)

    def record(offset: int) -> ConsumerRecord:
        return ConsumerRecord("clicks", 0, offset, 0, 0, None, b"v", None, 0, 1, ())

    thread = app.consumer._thread
    seeks_before = thread.seeks.copy()
    fake = SimpleNamespace(_closed=False, _fetcher=FakeFetcher({tp: [record(31)]}), seek=lambda tp, offset: None)
    saved = thread._consumer
    thread._consumer = fake
    try:
        (before,) = asyncio.run(thread._fetch_records(fake, {tp}))[tp]
        thread.seek(tp, 0)  # Faust's seek of the partition, after that fetch
        fake._fetcher.records = {tp: [record(0)]}
        (after,) = asyncio.run(thread._fetch_records(fake, {tp}))[tp]
    finally:
        thread._consumer = saved
        thread.seeks = seeks_before
    assert after.seek_stamp == before.seek_stamp + 1
    message = app.consumer._to_message(tp, after)
    assert seek_stamps[message] == after.seek_stamp


# --- fix 7: never resume below this worker's own committed offsets -----------------------


@pytest.mark.parametrize(
    "committed,floor,behind",
    [
        ({"a": 40}, {"a": 55}, {"a": 55}),  # the broker has not applied the last commit yet
        ({"a": 55}, {"a": 55}, {}),
        ({"a": 70}, {"a": 55}, {}),  # another owner went on since: the broker's is newer
        ({"a": None, "b": 3}, {"a": 9}, {"a": 9}),  # no offset on the broker yet
        ({"a": 4}, {}, {}),  # at_least_once: no floor
    ],
)
def test_behind_floor(committed: dict[str, int | None], floor: dict[str, int], behind: dict[str, int]) -> None:
    assert behind_floor(committed, floor) == behind


def test_seek_to_committed_resumes_from_the_floor_not_the_brokers_stale_offset() -> None:
    p0, p1, p2 = TP("clicks", 0), TP("clicks", 1), TP("clicks", 2)
    consumer = FakeAIOKafkaConsumer({p0: None, p1: 40, p2: 12}, log_start=0)
    thread: Any = SimpleNamespace(
        _ensure_consumer=lambda: consumer,
        app=SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset="earliest"),
                            tables=SimpleNamespace(changelog_topics=set())),
        log=logging.getLogger("test"),
        consumer=SimpleNamespace(record_starts=lambda starts: None, committed_floor=lambda: {p0: 9, p1: 55}),
        seeks=Counter({p1: 3}),
        sought={},
    )
    thread._count_seeks = lambda tps: ConsumerThread._count_seeks(thread, tps)
    thread._sought = lambda targets: ConsumerThread._sought(thread, targets)
    committed = asyncio.run(ConsumerThread._seek_to_committed(thread))
    # p0 never committed on the broker but committed here: from 9, not from its beginning
    assert consumer.sought == {p0: 9, p1: 55, p2: 12}
    assert committed == {p0: 9, p1: 55, p2: 12}
    # one seek more for every partition: what was fetched before is stale now; and no
    # await between the seeks and their counts (a fetch there would be dropped for good)
    assert thread.seeks == Counter({p0: 1, p1: 4, p2: 1})
    assert not consumer.awaited_after_a_seek
    # and where each seek went, with the count after it (fix 8)
    assert thread.sought == {p0: (1, 9), p1: (4, 55), p2: (1, 12)}


# --- fix 8: a seek while fetched records are handed out does not drop the ones it reads again


class Fetched:
    """A message as Faust's drain loop sees it, stamped with the seek count of its fetch."""

    def __init__(self, tp: TP, offset: int, stamp: int) -> None:
        self.tp, self.offset = tp, offset
        seek_stamps[self] = stamp


async def drain(read_offset: Any, messages: Any, deliver: Any) -> list[int]:
    """faust-streaming 0.15.3's `Consumer._drain_messages`, the part that decides (pinned
    below): a record below the partition's read offset is dropped; each record handed on
    sets the read offset."""
    delivered = []
    async for tp, message in messages:
        r_offset = read_offset[tp]
        if r_offset is None or message.offset >= r_offset:
            await deliver(message)
            delivered.append(message.offset)
            read_offset[tp] = message.offset
    return delivered


def test_upstream_drain_loop_drops_records_below_its_read_offset() -> None:
    import inspect

    from faust.transport.consumer import Consumer as Upstream

    source = inspect.getsource(Upstream._drain_messages)
    assert "if r_offset is None or offset >= r_offset:" in source
    assert "set_read_offset(tp, offset)" in source


@pytest.mark.parametrize("fixed", [False, True], ids=["upstream", "fix 8"])
def test_a_seek_while_fetched_records_are_handed_out_reads_them_all_again(consumer: Any, fixed: bool) -> None:
    """Recovery resumes the partitions, then seeks them to the committed offset (31); records
    31-35 fetched in between are being handed out when the seek lands (during 33). The
    stream drops those as stale (fix 6), and the seek reads 31-35 again: every one of them
    must reach the stream."""
    tp = TP("clicks", 0)
    thread = consumer._thread
    thread.sought = {tp: (1, 31)}  # the seek after the assignment
    read_offset = consumer._read_offset

    async def fetched() -> Any:
        for offset in range(31, 36):  # fetched between the resume and the recovery's seek
            yield tp, Fetched(tp, offset, stamp=1)
        for offset in range(31, 36):  # what the seek reads again
            yield tp, Fetched(tp, offset, stamp=2)

    async def deliver(message: Fetched) -> None:
        if message.offset == 33 and seek_stamps[message] == 1:
            thread.sought[tp] = (2, 31)  # the seek lands on the consumer's thread
            read_offset[tp] = 31  # and upstream's perform_seek sets the read offset back

    async def run_drain() -> list[int]:
        messages = consumer._fetched_since_seek(fetched()) if fixed else fetched()
        return await drain(read_offset, messages, deliver)

    delivered = asyncio.run(run_drain())
    again = delivered[delivered.index(33) + 1:] if fixed else delivered[5:]
    if fixed:
        assert delivered == [31, 32, 33, 31, 32, 33, 34, 35]  # 34, 35 of the old fetch held back
        assert again == [31, 32, 33, 34, 35]
    else:
        assert again == [35]  # 31-34 read again and dropped: never answered
