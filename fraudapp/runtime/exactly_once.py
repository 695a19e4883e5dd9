"""exactly_once on faust-streaming 0.15.3: the fixes fraudapp needs (issue 7).

Faust's exactly_once is Kafka Streams' "EOS alpha": one transactional producer per input
partition (`{app}-{topic group}-{partition}`), whose transaction carries both the records
produced while handling that partition's events and the partition's consumer offsets; a
new owner of the partition initialises the same transactional id, which fences the old
owner and aborts its open transaction. That is sound only if (1) every output of an event
is in the transaction that commits the event's offset, (2) nothing is committed for an
event whose outputs are not, and (3) a new owner rebuilds its tables from committed
changelog records only. faust-streaming 0.15.3 breaks each of these; measured effect on
the crash test (3,000 clicks, 2 SIGKILLs): 1,458 duplicated, 8 lost, 11 wrong.

What is wrong upstream, and what this module does about it:

1. Records go to the transaction of their *destination* partition (`TransactionManager.send`)
   while offsets commit in the one of their *source* partition; records for topics the
   worker does not consume get no transaction at all (#47, #177). -> `SourcePartitionTransactions`
   sends inside an event through the event's own partition's producer.
2. The offsets to commit are computed before anything waits for events in progress: a
   transaction can hold an event's verdict while the event's offset goes into the next one
   (a crash in between doubles the verdict). -> commits happen with the `CommitGate`
   closed: no event is half done when offsets are taken and the transaction is committed.
3. Table changelog records are queued (`send_soon`) and published by a background task;
   `ProducerBuffer.flush()` returns after 0.1 s without progress and does not wait for the
   record being sent, so changelog records can miss the transaction of their event.
   -> `ChangelogBufferTracker` counts queued records until handed to the producer; a
   commit waits for zero.
4. On a rebalance every partition is revoked (eager protocol) and Faust drops the acks of
   events it processed but has not committed yet, while the transactions holding their
   outputs stay open on the producers it keeps; after the rebalance the partition is
   sought back to the committed offset, the events are processed again and both outputs
   commit (#517, #323). -> `EOSConsumer.on_partitions_revoked` commits first (like Kafka
   Streams does on revocation), then holds events until the new assignment; events fetched
   before the rebalance are dropped unprocessed and unacked (`events`, `EOSConsumer.ack`):
   their partition restarts from the committed offset.
5. Under exactly_once, `highwaters()` returns the last stable offset *cached from the last
   fetch*: None (-> -1) for a partition not fetched yet. Recovery of a table partition that
   moved to this worker then reads nothing (its state is silently missing) or fails with
   `ConsistencyError: persisted offset 810 > highwater -1`. -> `EOSConsumerThread` asks the
   broker (ListOffsets, read_committed: the last stable offset).

6. After a rebalance the producers of partitions that moved away are stopped only if the
   partition is not now a *standby* of this worker (`TransactionManager.on_rebalance`
   filters revoked partitions with the new standby set, and Faust's standbys name the
   source partitions too). With `FRAUDAPP_STANDBY_REPLICAS` >= 1 the old producer stays,
   the new owner's producer fences it, and when this worker takes the partition back (its
   owner died) it reuses that fenced producer: `ProducerFenced` on the first commit, and
   the survivor stops (takeover test, standby 1). -> `SourcePartitionTransactions.on_rebalance`
   keeps exactly the producers of the partitions now active here and starts the missing ones;
   after this worker was expelled from the group (a pause past the session timeout) and
   rejoined as a new member with nothing left to commit, it replaces them all: a kept one
   may have been fenced while others owned its partition (paused-worker test: the zombie
   otherwise crashed at its first send, or held fenced producers until then).

7. Recovery takes a changelog partition as read to its end (it ends in a transaction
   marker, so no record reaches the highwater) once the consumer's position has reached
   the highwater, after two idle 5 s polls; but the idle polls are counted from before the
   recovery began. A worker idle that long (any survivor: active changelogs get no
   records) ended a takeover's recovery on its first poll, while the records it had
   fetched were still queued, and those were skipped: the taken partitions' tables stayed
   empty. -> `EOSConsumer.position` reports no progress until the partition has been quiet
   for 10 s since this recovery began (`changelog_read_to_end`).

8. aiokafka 0.14 commits a transaction one of whose records failed (a non-retriable
   produce error, or no partition leader for longer than the request timeout):
   `commit_transaction` waits for every batch, failed or not. The Java client aborts.
   Not seen in a test run (a failure would have been logged: "could not produce a
   record"), found reading aiokafka's sender. -> `FailedSends` watches each transactional
   send; a transaction with a failed record is not committed and the worker stops
   (`RecordNotProduced`), like a fenced one: the next owner aborts it.

Not changed, on purpose: recovery notices the end of a changelog that ends in a transaction
marker (under exactly_once every one does) only after two idle 5 s polls of its reader, so
every restart and rebalance waits >= 10 s. Polls of 0.5 s were tried: recovery then ended
while fetched changelog records were still on their way to the tables, and the restarted
worker judged clicks with device windows missing (medium crash run with static
membership: 17 wrong click_spam labels; all 0 again with 5 s).

Local RocksDB is written at once, not at commit: a worker that did not stop cleanly drops
its stores and rebuilds them from the changelogs (`FraudApp.worker_init` in runtime/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from aiokafka.errors import ProducerFenced
from faust.exceptions import ProducerSendError
from faust.streams import _current_event, current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types.tuples import ack_lock

from fraudapp.runtime import consumer as consumer_fixes
from fraudapp.runtime.streams import Gatherer, queued

log = logging.getLogger(__name__)


class CommitGate:
    """Events run one at a time against commits and rebalances.

    An event runs while the gate is open. `closed()` (a commit) keeps new events out and
    waits for the running ones; `hold()` / `release()` keep events out across a rebalance,
    from the commit on revocation to the end of the new assignment.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._busy = 0
        self._closers = 0
        self._held = False
        self._cond: asyncio.Condition | None = None

    @property
    def cond(self) -> asyncio.Condition:
        if self._cond is None:  # created on the worker's running loop
            self._cond = asyncio.Condition()
        return self._cond

    def _open(self) -> bool:
        return self._closers == 0 and not self._held

    @contextlib.asynccontextmanager
    async def event(self) -> AsyncIterator[None]:
        async with self.cond:
            await self.cond.wait_for(self._open)
            self._busy += 1
        try:
            yield
        finally:
            async with self.cond:
                self._busy -= 1
                self.cond.notify_all()

    @contextlib.asynccontextmanager
    async def closed(self) -> AsyncIterator[bool]:
        """Hold new events off and wait (at most `timeout`) for running ones; yields True when drained."""
        async with self.cond:
            self._closers += 1
        try:
            drained = True
            try:
                async with self.cond:
                    await asyncio.wait_for(self.cond.wait_for(lambda: self._busy == 0), self.timeout)
            except TimeoutError:
                drained = False
                log.warning("commit gate: an event still running after %.0f s", self.timeout)
            yield drained
        finally:
            async with self.cond:
                self._closers -= 1
                self.cond.notify_all()

    def hold(self) -> None:
        self._held = True

    async def release(self) -> None:
        async with self.cond:
            self._held = False
            self.cond.notify_all()


gate = CommitGate()


class ChangelogBufferTracker:
    """Counts records queued in the producer buffer (table changelogs) until they have
    been handed to the producer, so that a commit can wait for all of them."""

    def __init__(self) -> None:
        self.outstanding = 0
        self._idle: asyncio.Event | None = None

    @property
    def idle(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle

    def install(self, producer: Any) -> None:
        """Wrap `producer.buffer` before it starts (its task binds `_send_pending` at start)."""
        buffer = producer.buffer
        put, send_pending = buffer.put, buffer._send_pending

        def counted_put(fut: Any) -> None:
            self.outstanding += 1
            self.idle.clear()
            put(fut)

        async def counted_send_pending(fut: Any) -> None:
            try:
                await send_pending(fut)
            finally:
                self.outstanding -= 1
                if self.outstanding <= 0:
                    self.outstanding = 0
                    self.idle.set()

        buffer.put = counted_put
        buffer._send_pending = counted_send_pending

    async def drain(self, timeout: float = 60.0) -> None:
        if self.outstanding:
            await asyncio.wait_for(self.idle.wait(), timeout)


changelog_buffer = ChangelogBufferTracker()


class ProcessedOffsets:
    """Per partition: one past the last event an agent finished.

    What a transaction commits is taken from here, not from upstream's acks: upstream
    commits the first run of consecutive acked offsets, which lags behind (transaction
    markers leave gaps it fills only later), while the transaction already holds the
    outputs of every event finished; a crash then replays events whose outputs committed.
    Each partition is read by one agent, in order, so "last finished" is exact.

    It also recognises a message delivered twice in one generation: after a rebalance
    upstream resumes the partitions, then seeks them to the committed offset, and what
    was fetched in between comes again.
    """

    def __init__(self) -> None:
        self._position: dict[Any, int] = {}  # this generation
        self._uncommitted: dict[Any, int] = {}  # since the last commit

    def done(self, message: Any) -> bool:
        return message.offset < self._position.get(message.tp, -1)

    def record(self, message: Any) -> None:
        offset = message.offset + 1
        if offset > self._position.get(message.tp, -1):
            self._position[message.tp] = self._uncommitted[message.tp] = offset

    def take(self) -> dict[Any, int]:
        """The offsets to commit (and forget them)."""
        taken, self._uncommitted = self._uncommitted, {}
        return taken

    def reset(self) -> None:
        self._position.clear()
        self._uncommitted.clear()


processed = ProcessedOffsets()


class RecordNotProduced(Exception):
    """A record of an open transaction could not be produced; the transaction must not commit."""


class FailedSends:
    """Transactions holding a record aiokafka could not produce (fix 8).

    aiokafka 0.14 fails a record's future (a non-retriable produce error, or no leader for
    longer than the request timeout) but leaves its transaction committable:
    `commit_transaction` waits for every batch, failed or not, and commits. The Java
    client aborts such a transaction. Here each transactional send is watched, and a
    transaction with a failed record is not committed: the worker stops, and the
    partition's next owner aborts it and processes its events again."""

    def __init__(self) -> None:
        self._failed: dict[str, BaseException] = {}

    def watch(self, tid: str, future: Any) -> None:
        future.add_done_callback(functools.partial(self._done, tid))

    def _done(self, tid: str, future: Any) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._failed.setdefault(tid, future.exception())

    def take(self, tid: str) -> BaseException | None:
        return self._failed.pop(tid, None)


failed_sends = FailedSends()


class EOSTrace:
    """`FRAUDAPP_EOS_TRACE=<file>` (diagnostics): a line per send, commit, batch, skip and
    rebalance of this worker. Off until the app sets its path (`app.create_app`)."""

    path = ""

    def write(self, what: str, **fields: Any) -> None:
        if not self.path:
            return
        items = " ".join(f"{k}={v}" for k, v in fields.items())
        with open(self.path, "a") as f:
            f.write(f"{time.time():.3f} pid={os.getpid()} {what} {items}\n")


trace = EOSTrace()


class SourcePartitionTransactions(TransactionManager):
    """faust-streaming 0.15.3's TransactionManager, each record sent in the right transaction.

    * inside an event, records go through the producer of the event's own partition, so
      they commit atomically with the event's offset;
    * changelog records (queued by tables with `send_soon`, published by a background
      task) keep upstream's choice, which for a table is the source partition (tables are
      written in the event's partition);
    * anything else sent outside an event (the alert ticks of the 1 s timer) goes through
      the plain idempotent producer: visible at once, never holding a transaction open.
    """

    # the consumer's group member id when the producers were last set up
    _member: str | None = None

    async def on_rebalance(self, assigned: set[Any], revoked: set[Any], newly_assigned: set[Any]) -> None:
        # Decided from the whole new assignment, not from `revoked` (see 6. above): a
        # producer is kept only for a partition active here now, and a kept producer is
        # not begun again (its transaction is already open).
        producer = self.producer
        wanted = self._tps_to_transactional_ids(assigned)
        member = self._current_member()
        if member != self._member and producer._transaction_producers and self._member is not None:
            # Expelled (a pause past the session timeout) and back as a new member: other
            # workers owned its partitions meanwhile, so any producer kept could be fenced
            # and would fail at its first send. (Work left uncommitted would already have
            # failed the commit on revocation: `EOSConsumer.on_partitions_revoked`.)
            self.log.warning("exactly_once: this worker rejoined the group as a new member (its session had "
                             "expired): replacing all %d transactional producers", len(producer._transaction_producers))
            for tid in sorted(producer._transaction_producers):
                await producer.stop_transaction(tid)
        self._member = member
        stale = sorted(set(producer._transaction_producers) - wanted)
        if stale:
            self.log.info("exactly_once: stopping %d transactional producers of partitions no longer active "
                          "here: %s", len(stale), ", ".join(stale))
            for tid in stale:
                await producer.stop_transaction(tid)
        missing = sorted(wanted - set(producer._transaction_producers))
        if missing:
            self.log.info("exactly_once: starting %d transactional producers: %s", len(missing), ", ".join(missing))
            for tid in missing:
                await producer.maybe_begin_transaction(tid)

    def _current_member(self) -> str | None:
        return _member_id(self.app)

    def _transactional_id(self, topic: str, partition: int | None) -> str | None:
        assignor = self.app.assignor
        event = current_event()
        if event is not None:
            tp = event.message.tp
            return f"{self.app.conf.id}-{assignor.group_for_topic(tp.topic)}-{tp.partition}"
        if partition is not None and topic.endswith("-changelog"):
            with contextlib.suppress(KeyError):
                return f"{self.app.conf.id}-{assignor.group_for_topic(topic)}-{partition}"
        return None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        p = self.consumer.key_partition(topic, key, partition)
        tid = self._transactional_id(topic, p)
        if trace.path:
            event = current_event()
            source = f"{event.message.topic}:{event.message.partition}:{event.message.offset}" if event else "-"
            extra = {"value": (value or b"")[:160]} if topic.endswith("-changelog") else {}
            trace.write("send", tid=tid, event=source, dest=f"{topic}:{p}", key=key, **extra)
        future = await self.producer.send(topic, key, value, p, timestamp, headers, transactional_id=tid)
        if tid is not None:
            failed_sends.watch(tid, future)
        return future

    def by_transactional_id(self, offsets: Mapping[Any, int]) -> dict[str, dict[Any, int]]:
        group_id = self.app.conf.id
        by_tid: dict[str, dict[Any, int]] = defaultdict(dict)
        for tp, offset in offsets.items():
            by_tid[f"{group_id}-{self.app.assignor.group_for_topic(tp.topic)}-{tp.partition}"][tp] = offset
        return dict(by_tid)

    async def lock(self, by_tid: Mapping[str, Any]) -> list[asyncio.Lock]:
        """Take the producers' send locks of these transactions: from here until each one
        is committed, a record for it waits, and then goes into the next transaction."""
        locks = self.producer._trn_locks
        taken = []
        for tid in sorted(by_tid):
            lock = locks.get(tid)
            if lock is not None:  # none yet: no producer, nothing sent for it
                await lock.acquire()
                taken.append(lock)
        return taken

    async def commit_locked(self, by_tid: Mapping[str, Mapping[Any, int]], taken: list[asyncio.Lock]) -> None:
        """Send the offsets to each transaction, commit it and begin the next, all
        transactions concurrently; releases the locks `lock()` took."""
        if trace.path:
            trace.write(
                "commit", offsets={f"{tp.topic}:{tp.partition}": o for x in by_tid.values() for tp, o in x.items()}
            )
        producer = self.producer
        group_id = self.app.conf.id

        async def commit_one(tid: str, offsets: Mapping[Any, int]) -> None:
            try:
                txn = producer._transaction_producers.get(tid)
                if txn is None:
                    log.warning("exactly_once: no transactional producer %s; offsets %s not committed", tid, offsets)
                    return
                # every record of the transaction delivered or failed first (fix 8)
                await txn.flush()
                failed = failed_sends.take(tid)
                if failed is not None:
                    raise RecordNotProduced(f"{tid}: {failed!r}") from failed
                await txn.send_offsets_to_transaction(offsets, group_id)
                await txn.commit_transaction()
                # Always open the next transaction (also when upstream asks to end them on
                # shutdown: its second "commit and end" would fail). An empty open
                # transaction is harmless; the next owner's producer aborts it.
                await txn.begin_transaction()
            finally:
                lock = producer._trn_locks.get(tid)
                if lock is not None and lock in taken:
                    taken.remove(lock)
                    lock.release()

        results = await asyncio.gather(*(commit_one(t, o) for t, o in by_tid.items()), return_exceptions=True)
        for result in results:
            if isinstance(result, ProducerFenced):
                await self.consumer.fail(result, "a newer owner fenced this worker's transactional producer")
                raise result
            if isinstance(result, RecordNotProduced):
                await self.consumer.fail(result, "a record of an open transaction could not be produced")
                raise result
            if isinstance(result, BaseException):
                raise result

    async def commit(self, offsets: Mapping[Any, int], start_new_transaction: bool = True) -> bool:
        by_tid = self.by_transactional_id(offsets)
        await self.commit_locked(by_tid, await self.lock(by_tid))
        return True


async def send_in_transaction(app: faust.App, records: list[tuple[str, bytes | None, bytes | None, int | None, Any]],
                              ) -> list[asyncio.Future[Any]]:
    """Produce a batch's records in the transaction of the current event's partition.

    What `SourcePartitionTransactions.send` does for one record (fix 1), for all of them
    at once: the transactional id and the producer's send lock are taken once, and the
    records go straight to aiokafka's transactional producer (which adds their partitions
    to the transaction). Faust's `Topic.send` path costs ~60 µs a record (channel, future
    message, sensors, lock); this is what the batching stages produce through.
    `(topic, key, value, partition or None: by key, headers)` per record; returns aiokafka's
    futures, resolved with each record's metadata.
    """
    tid = app.consumer.transactions._transactional_id("", None)
    if tid is None:
        raise RuntimeError("send_in_transaction outside an event: no transaction to send in")
    producer = app.producer
    txn = producer._transaction_producers.get(tid)
    if txn is None:
        raise ProducerSendError(f"No transaction producer found for : {tid}")  # as Faust's Producer.send
    futures = []
    async with producer._trn_locks[tid]:
        for topic, key, value, partition, headers in records:
            if trace.path:
                event = current_event()
                source = f"{event.message.topic}:{event.message.partition}:{event.message.offset}" if event else "-"
                extra = {"value": (value or b"")[:160]} if topic.endswith("-changelog") else {}
                trace.write("send", tid=tid, event=source, dest=f"{topic}:{partition}", key=key, **extra)
            future = await txn.send(topic, value, key=key, partition=partition, headers=headers)
            failed_sends.watch(tid, future)
            futures.append(future)
    return futures


def _member_id(app: faust.App) -> str | None:
    """This worker's current member id in the consumer group (aiokafka's coordinator)."""
    consumer = getattr(app.consumer._thread, "_consumer", None)  # type: ignore[attr-defined]
    coordinator = getattr(consumer, "_coordinator", None)
    return getattr(coordinator, "member_id", None)


class EOSConsumerThread(consumer_fixes.ConsumerThread):
    async def _highwaters(self, partitions: Any) -> Mapping[Any, int]:
        # read_committed end offsets from the broker: the last stable offsets (upstream
        # returns the value cached from the last fetch, None before the first one)
        consumer = self._ensure_consumer()
        return await consumer.end_offsets(list(partitions))


# Upstream's intent for the end of a changelog that ends in a transaction marker: two
# consecutive 5 s polls with nothing for it.
CHANGELOG_QUIET = 10.0


def changelog_read_to_end(
    queue_empty: bool, recovery_started_at: float | None, last_record_at: float | None, now: float
) -> bool:
    """May recovery trust the consumer's position as "everything before it is applied"
    for one changelog partition? Only once no record is queued and none has come for the
    partition for CHANGELOG_QUIET seconds *since this recovery started*."""
    since = max((t for t in (recovery_started_at, last_record_at) if t is not None), default=None)
    return queue_empty and since is not None and now - since >= CHANGELOG_QUIET


class EOSConsumer(consumer_fixes.Consumer):
    """Commits what the agents finished, before a rebalance takes partitions away too;
    never commits an event it did not process."""

    _failed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # offsets of this worker's committed transactions (consumer fix 7)
        self._own_commits: dict[Any, int] = {}
        # per assigned partition: the seek count its records must reach (consumer fix 6)
        self._seek_floor: dict[Any, int] = {}

    def committed_floor(self) -> Mapping[Any, int]:
        return self._own_commits

    def seek_floor(self, tp: Any) -> int:
        return self._seek_floor.get(tp, 0)

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return EOSConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def fail(self, exc: BaseException, why: str) -> None:
        """This worker must not go on: leave the group at once, so that its partitions move
        to the others now rather than after the session timeout (a stopping worker whose
        consumer rejoined would hold them unprocessed), and stop the worker (which ends
        the process if the stop hangs: `FraudApp._crash`)."""
        if self._failed:
            return
        self._failed = True
        log.error("exactly_once: %s (%r); stopping the worker", why, exc)
        self.close()  # LeaveGroup, as Faust does for a rebalance after the app stopped
        await self.app.crash(exc)

    async def position(self, tp: Any) -> int | None:
        # The only caller is Faust's recovery (`detect_aborted_tx`): a changelog partition
        # whose position has reached its highwater is declared recovered, and records not
        # yet taken from the changelog queue are then skipped for good. Upstream waits for
        # two idle 5 s polls first, but counts them from before the recovery began: in a
        # worker idle that long the first poll of a takeover ends it at once, while the
        # records it fetched are still on their way (paused-worker test, slow, 3 Dec: the
        # survivor's device windows for the taken partitions stayed empty; 32 wrong labels).
        # Until the partition has been quiet since this recovery began, report no progress.
        recovery = self.app.tables.recovery
        quiet = changelog_read_to_end(
            self.app.tables.changelog_queue.empty(),
            recovery._recovery_started_at,
            recovery._active_events_received_at.get(tp),
            time.monotonic(),
        )
        return await super().position(tp) if quiet else -1

    async def wait_empty(self) -> None:
        # A failed worker commits nothing more, so there is nothing to wait for (and
        # events blocked on a fenced producer would never finish).
        if not self._failed:
            await super().wait_empty()

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        if self._failed:
            return False
        # Offsets are taken with no event half done, every changelog record of the events
        # they cover in the producer, and the transactions' send locks taken; events run
        # again while the transactions commit (a record for one of them waits for it).
        # (`topics` is ignored: a transaction commits everything finished.)
        transactions = self.transactions
        async with gate.closed() as drained:
            if not drained:
                # committing now would split an event between two transactions; the
                # next commit (or, after a crash, the next owner) takes it
                return False
            await changelog_buffer.drain()
            assignment = self.assignment()
            offsets = {tp: o for tp, o in processed.take().items() if tp in assignment}
            if not offsets:
                return False
            by_tid = transactions.by_transactional_id(offsets)
            taken = await transactions.lock(by_tid)
        sensor_state = self.app.sensors.on_commit_initiated(self)
        await transactions.commit_locked(by_tid, taken)
        self._own_commits.update(offsets)
        self.app.tables.on_commit(offsets)
        self._committed_offset.update(offsets)
        # Faust's livelock check reads the consumer thread's commit times, which only its
        # own (non-transactional) commit path writes: without this, every busy partition
        # logs "Has not committed ... since worker start" every few seconds after 5 min.
        now = time.monotonic()
        self._thread.tp_last_committed_at.update({tp: now for tp in offsets})
        self.app.monitor.on_tp_commit(offsets)
        self.app.sensors.on_commit_completed(self, sensor_state)
        return True

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        # Upstream records offset gaps (transaction markers) for its ack bookkeeping and
        # trims them only when it commits from acks, which this consumer never does.
        return None

    def ack(self, message: Any) -> bool:
        # Offsets to commit come from `processed`: an ack never makes one committable.
        return self.end_uncommitted(message)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        if not self.app.should_stop:
            gate.hold()
            # Upstream keeps the open transactions of the partitions it keeps across the
            # rebalance, and seeks every partition back to its committed offset after it:
            # commit everything finished first (Kafka Streams does the same).
            await self.maybe_wait_for_commit_to_finish()
            try:
                await self.commit()
            except Exception as exc:  # noqa: BLE001 - any failure: stop, see below
                # Open transactions may hold outputs of events whose offsets did not
                # commit (a fenced zombie, say): this worker must not go on.
                await self.fail(exc, "the commit before the rebalance failed")
                return
            # Nothing runs until the new assignment. Every message not acked yet was
            # fetched but not processed: drop it (upstream's wait_empty() would wait for
            # it); after the rebalance its partition restarts at the committed offset.
            dropped = self.end_unacked_uncommitted()
            processed.reset()
            trace.write("revoked", partitions=len(revoked), dropped=dropped)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        # The listener has already moved app.consumer_generation_id on: events fetched
        # before now are recognised by their generation from here.
        if self._failed:
            return
        # (the consumer's thread waits for this call: no seek comes in between)
        seeks = self._thread.seeks  # type: ignore[attr-defined]
        self._seek_floor = {tp: seeks[tp] + 1 for tp in assigned}
        try:
            await super().on_partitions_assigned(assigned, generation_id)
        finally:
            trace.write("assigned", generation=generation_id, partitions=len(assigned))
            await gate.release()


def is_stale(app: faust.App, message: Any) -> bool:
    """Fetched before the last rebalance (its partition was sought back since)."""
    return consumer_fixes.fetched_before(message, app.consumer_generation_id)


def drop(message: Any) -> None:
    """Never commit this message: its partition restarts at the committed offset. (A
    message counts as acked once: marking it acked makes every later ack a no-op.)"""
    with ack_lock:
        message.acked = True


def transport_class(base: type) -> type:
    """The Kafka transport class with the exactly_once fixes of this module."""
    attrs: dict[str, Any] = {"TransactionManager": SourcePartitionTransactions}
    if issubclass(base, aiokafka_driver.Transport):
        attrs["Consumer"] = EOSConsumer
    return consumer_fixes.transport_class(base, **attrs)


def install_on_producer(producer: Any) -> None:
    changelog_buffer.install(producer)


async def events(stream: faust.StreamT) -> AsyncIterator[faust.types.EventT]:
    """`stream.events()`; under exactly_once each event runs inside the commit gate and is
    acked as soon as the agent is done with it; events fetched before a rebalance are
    dropped (see module doc)."""
    if not stream.app.in_transaction:
        async for event in stream.events():
            yield event
        return
    app = stream.app
    async for event in stream.events():
        async with gate.event():
            message = event.message
            if not _usable(app, event):
                continue
            yield event
            processed.record(message)
            event.ack()


def _usable(app: faust.App, event: faust.types.EventT) -> bool:
    message = event.message
    if message.acked or is_stale(app, message) or processed.done(message) or not sought_before(app, message):
        # dropped at a rebalance while it waited, delivered again, or fetched before its
        # partition's seek (consumer fix 6): the seek brings it again if it is due
        if trace.path:
            trace.write("skip", event=f"{message.topic}:{message.partition}:{message.offset}",
                        acked=message.acked, stale=is_stale(app, message), done=processed.done(message))
        drop(message)
        return False
    return True


def sought_before(app: faust.App, message: Any) -> bool:
    """Was the message fetched after the last seek of its partition, and that seek made
    since the partition was assigned? (consumer fix 6)"""
    consumer = app.consumer
    return consumer_fixes.fetched_after_last_seek(
        consumer_fixes.seek_stamps.get(message), consumer._thread.seeks[message.tp], consumer.seek_floor(message.tp)
    )


async def event_batches(
    stream: faust.StreamT, linger: float, max_size: int = 500
) -> AsyncIterator[list[faust.types.EventT]]:
    """Batches of events for the batching agents under exactly_once, one partition each.

    Events are gathered like `batching.batches` gathers them (`batching.Gatherer`), the
    first one outside the commit gate and the rest inside it; the gathered events are then
    handed over one partition at a time, each group with its last event as the current
    event, so that the records the agent sends for it go into that partition's
    transaction. (Faust hands over the partitions of a topic round-robin, so consecutive
    events rarely share a partition.)"""
    app = stream.app
    stream.enable_acks = False
    gatherer = Gatherer(stream.events(), linger, max_size, ready=queued(stream))
    try:
        while (first := await gatherer.first()) is not None:
            async with gate.event():
                gathered = await gatherer.rest(first)
                groups: dict[int, list[Any]] = {}
                taken: dict[Any, int] = {}
                for event in gathered:
                    # checked in the gate: a rebalance may have come; and a message can
                    # come twice within one gathering too (see ProcessedOffsets)
                    message = event.message
                    if message.offset < taken.get(message.tp, -1):
                        if trace.path:
                            trace.write("skip-behind", event=f"{message.topic}:{message.partition}:{message.offset}",
                                        taken=taken[message.tp])
                        drop(message)
                    elif _usable(app, event):
                        taken[message.tp] = message.offset + 1
                        groups.setdefault(message.partition, []).append(event)
                for group in groups.values():
                    if trace.path:
                        head, tail = group[0].message, group[-1].message
                        trace.write("batch", tp=f"{head.topic}:{head.partition}", first=head.offset, last=tail.offset,
                                    events=len(group), generation=getattr(head, "generation_id", None))
                    _current_event.set(weakref.ref(group[-1]))
                    yield group
                    for event in group:
                        processed.record(event.message)
                        await stream.ack(event)
    finally:
        gatherer.close()
