"""Which transactional producers a worker keeps across a rebalance under exactly_once
(`SourcePartitionTransactions.on_rebalance`): exactly those of the partitions active on it
now, also when a partition that moved away became one of its standbys."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from fraudapp.runtime.exactly_once import SourcePartitionTransactions

APP = "app"
TOPICS = ("clicks", "clicks-by-device", "device-clicks-changelog")


class FakeProducer:
    def __init__(self, tids: set[str]) -> None:
        self._transaction_producers: dict[str, object] = {tid: object() for tid in tids}
        self.stopped: list[str] = []
        self.begun: list[str] = []

    async def stop_transaction(self, tid: str) -> None:
        self._transaction_producers.pop(tid)
        self.stopped.append(tid)

    async def maybe_begin_transaction(self, tid: str) -> None:
        assert tid not in self._transaction_producers, f"{tid} begun twice (its transaction is already open)"
        self._transaction_producers[tid] = object()
        self.begun.append(tid)


def tps(partitions: set[int]) -> set[TP]:
    return {TP(topic, p) for topic in TOPICS for p in partitions}


def manager(producer: FakeProducer, standby: set[int], member_before: str | None = "m1", member: str = "m1") -> Any:
    # Faust's standbys name the source partitions as well as the changelog ones
    assignor = SimpleNamespace(group_for_topic=lambda topic: 1, is_standby=lambda tp: tp in tps(standby))
    fake = SimpleNamespace(producer=producer, app=SimpleNamespace(assignor=assignor, conf=SimpleNamespace(id=APP)),
                           log=SimpleNamespace(info=lambda *a: None, warning=lambda *a: None),
                           _member=member_before, _current_member=lambda: member)
    fake.transactional_id_format = SourcePartitionTransactions.transactional_id_format
    fake._tps_to_active_tpgs = lambda t: SourcePartitionTransactions._tps_to_active_tpgs(fake, t)
    fake._tps_to_transactional_ids = lambda t: SourcePartitionTransactions._tps_to_transactional_ids(fake, t)
    return fake


def tid(p: int) -> str:
    return f"{APP}-1-{p}"


@pytest.mark.parametrize(
    "had,active,standby,kept,stopped,begun",
    [
        # a second worker joins: 0 and 1 move to it and stay here as standbys
        ({0, 1, 2, 3}, {2, 3}, {0, 1}, {2, 3}, {0, 1}, set()),
        # same without standby replicas
        ({0, 1, 2, 3}, {2, 3}, set(), {2, 3}, {0, 1}, set()),
        # the other worker died: its partitions (standbys here) become active here
        ({2, 3}, {0, 1, 2, 3}, set(), {0, 1, 2, 3}, set(), {0, 1}),
        # first assignment
        (set(), {0, 1}, {2, 3}, {0, 1}, set(), {0, 1}),
        # nothing changes: nothing stopped, nothing begun again
        ({0, 1}, {0, 1}, {2, 3}, {0, 1}, set(), set()),
    ],
    ids=["join-standby", "join", "takeover", "first", "same"],
)
async def test_producers_follow_the_active_partitions(
    had: set[int], active: set[int], standby: set[int], kept: set[int], stopped: set[int], begun: set[int]
) -> None:
    producer = FakeProducer({tid(p) for p in had})
    assigned = tps(active | standby)
    revoked = tps(had) - assigned
    await SourcePartitionTransactions.on_rebalance(manager(producer, standby), assigned, revoked, assigned - tps(had))
    assert set(producer._transaction_producers) == {tid(p) for p in kept}
    assert set(producer.stopped) == {tid(p) for p in stopped}
    assert set(producer.begun) == {tid(p) for p in begun}


@pytest.mark.parametrize(
    "had,active,kept_stopped",
    [
        ({0, 1}, {0, 1}, {0, 1}),  # the same partitions back: every producer may be fenced
        ({0, 1}, {2}, {0, 1}),  # others: the old ones go as before
    ],
    ids=["same-partitions", "other-partitions"],
)
async def test_a_worker_back_as_a_new_member_replaces_every_producer(
    had: set[int], active: set[int], kept_stopped: set[int]
) -> None:
    """Expelled after a pause past the session timeout, it rejoins with a new member id:
    other workers owned its partitions meanwhile and fenced its producers."""
    producer = FakeProducer({tid(p) for p in had})
    assigned = tps(active)
    fake = manager(producer, set(), member_before="m1", member="m2")
    await SourcePartitionTransactions.on_rebalance(fake, assigned, tps(had), assigned)
    assert set(producer.stopped) == {tid(p) for p in kept_stopped}
    assert set(producer.begun) == {tid(p) for p in active}
    assert fake._member == "m2"


# --- a transaction holding a record that could not be produced never commits -------------


class FakeTxnProducer:
    """aiokafka's transactional producer as `commit_locked` drives it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def flush(self) -> None:
        self.calls.append("flush")

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        self.calls.append("offsets")

    async def commit_transaction(self) -> None:
        self.calls.append("commit")

    async def begin_transaction(self) -> None:
        self.calls.append("begin")


@pytest.mark.parametrize("record_failed", [False, True], ids=["delivered", "failed"])
async def test_a_transaction_with_a_record_not_produced_is_not_committed(record_failed: bool) -> None:
    import asyncio

    from aiokafka.errors import NotLeaderForPartitionError

    from fraudapp.runtime.exactly_once import RecordNotProduced, failed_sends

    txn = FakeTxnProducer()
    failures: list[str] = []

    async def fail(exc: BaseException, why: str) -> None:
        failures.append(why)

    lock = asyncio.Lock()
    await lock.acquire()
    fake = SimpleNamespace(
        producer=SimpleNamespace(_transaction_producers={tid(0): txn}, _trn_locks={tid(0): lock}),
        app=SimpleNamespace(conf=SimpleNamespace(id=APP)),
        consumer=SimpleNamespace(fail=fail),
    )
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed_sends.watch(tid(0), future)
    # aiokafka fails the record's future (no leader for longer than the request timeout)
    if record_failed:
        future.set_exception(NotLeaderForPartitionError())
    else:
        future.set_result("metadata")
    await asyncio.sleep(0)  # the future's callbacks
    offsets = {TP("clicks", 0): 10}
    if record_failed:
        with pytest.raises(RecordNotProduced):
            await SourcePartitionTransactions.commit_locked(fake, {tid(0): offsets}, [lock])
        assert "commit" not in txn.calls and "offsets" not in txn.calls
        assert failures == ["a record of an open transaction could not be produced"]
    else:
        await SourcePartitionTransactions.commit_locked(fake, {tid(0): offsets}, [lock])
        assert txn.calls == ["flush", "offsets", "commit", "begin"]
        assert failures == []
    assert not lock.locked()  # released either way
    assert failed_sends.take(tid(0)) is None
