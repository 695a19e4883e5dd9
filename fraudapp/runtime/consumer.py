"""The consumer fraudapp runs on: faust-streaming's aiokafka consumer with four fixes that
keep at_least_once from committing past clicks it never processed, and one (5) that keeps
the stages fed.

1. A partition that never had an offset committed restarts at its beginning after a
   rebalance. faust-streaming 0.15.3 hands a new assignment's partitions to the fetcher at
   once, drops what was fetched while recovery runs, and then "seeks every partition to
   its committed offset". aiokafka's `seek_to_committed` skips a partition whose committed
   offset is None or 0, so such a partition went on from wherever the fetcher had got to:
   the records fetched and dropped in between were never read again (measured: clicks 0-54
   and 0-56 of two `clicks` partitions lost, 3 Dec). This consumer thread seeks those
   partitions to their beginning, as `auto_offset_reset="earliest"` (fraudapp's setting)
   means, and records that offset as where the partition's commits must start. Records
   processed before the seek come again: at_least_once may answer them twice (as after any
   rebalance); exactly_once processes nothing fetched before the seek (fix 6).

2. The commit never skips the offset it must start from. Upstream's `_new_offset` checks
   the first acked offset against the committed one with an off-by-one (`min(acked) -
   committed > 1`, where Kafka's committed offset is the next one to read), so with
   committed 4 and 5.. acked it commits past 4; and with no committed offset it does not
   check at all. Measured: single clicks lost, each exactly at its partition's first
   commit (committed 4, then 85; committed 18, then 100; committed 26, then 97: the click
   at the first commit never reached the next topic, 3 Dec). Here the commit waits for
   the head offset: the committed one, or the start fix 1 recorded.

3. A message the stream skips is not acked. Faust's stream skips a message fetched in an
   older generation or delivered while flow control is off (a rebalance and its
   recovery), and *acks* it "so that the lag does not grow": at_least_once then commits
   past it. Here such an ack ends the message's life but never makes its offset
   committable. (exactly_once takes its offsets from what the agents finished,
   `exactly_once.ProcessedOffsets`, and drops stale events itself.)

4. A partition whose commit is held by a click nobody will process is read again from it.
   Fixes 2 and 3 turn such a click (skipped by the stream after the rebalance's own seek,
   or gone some other way) from a silent loss into a stalled commit: measured, two
   partitions committed once (offsets 2 and 1) and never again while later clicks were
   answered (3 Dec). When the head offset is not acked, later offsets are, and that has
   lasted `REREAD_AFTER` seconds, the partition is sought back to the head before the
   next fetch. The clicks after it are processed again, which at_least_once allows.

5. The fetch never waits long for nothing. faust-streaming 0.15.3 hard-codes
   `fetch_max_wait_ms=1500`, and aiokafka keeps one fetch in flight per broker, leaving
   out the partitions whose fetched records are still being handed out. A fetch sent
   while `clicks` had such records asked only for the internal topics, whose records
   under exactly_once become readable when the stages commit, and the stages were
   waiting for input: the broker held the fetch for the full 1.5 s and clicks queued
   behind it. At 900 clicks/s on one worker (25 % of its backlog throughput) verdicts
   stopped for 0.4-9 s at a time and latency grew to p50 5 s; with the wait at 100 ms,
   p50 0.27 s (5 Dec, bench/README.md). The wait is `FRAUDAPP_FETCH_MAX_WAIT_MS`.

6. Every record says after which seek of its partition it was fetched (`seek_stamp`).
   After a rebalance faust-streaming 0.15.3 resumes the stream partitions and only then
   seeks them to their committed offsets; a fetch in between returns records from
   wherever the fetcher had got to while the partitions' records were being dropped (a
   never-committed partition: past its beginning), and the agents process them. Under
   exactly_once that lost clicks: a restarted worker processed `clicks-by-session`
   offsets 31-39 of a partition with no committed offset, then its seek to the
   beginning brought 0-30 again, below what it had processed, and they were skipped as
   done (short static crash test, 5 Dec: 406 inputs without a verdict). exactly_once
   processes a record only if no seek of its partition came after its fetch and at least
   one came since the assignment (`exactly_once._usable`); the others come again from the seek.

7. The committed offsets a rebalance resumes from are never older than what this worker
   committed itself. A transaction's offsets count as committed on the broker only once
   its markers are written, after `commit_transaction` returned; an OffsetFetch in
   between returns the previous offset (measured on an idle single broker: 176 of 300
   fetches right after a commit), and after a rebalance that keeps a partition here its
   records since then were processed, and their verdicts committed, twice. Kafka's fix
   (KIP-447: OffsetFetch v7 `require_stable`) is not in aiokafka 0.14. exactly_once
   passes the offsets of its own committed transactions (`Consumer.committed_floor`).

8. A record fetched before its partition's last seek never reaches Faust's read offset.
   faust-streaming's drain loop drops every record below the partition's *read offset*,
   which it sets from each record it hands out; `perform_seek` sets it back to the seek's
   target. But recovery resumes the partitions before it seeks them, and the seek
   awaits the consumer's thread (an OffsetFetch per partition): records fetched in
   between were still being handed out after the seek, moved the read offset back up,
   and the same records read again from the seek's target were then dropped, before any
   stream saw them. Measured (broker-fault test, a rebalance whose recovery overlapped a
   leader's SIGKILL, 5 Dec): `clicks` offsets 31-98 and 39-190 of two partitions, from
   the committed offset up, never answered. Here records fetched before their partition's
   last seek are not handed out, and when a seek comes while one is being handed out,
   the read offset is put back to the seek's target after it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types.tuples import ack_lock
from mode.utils.futures import notify


def never_committed(committed: Mapping[Any, int | None]) -> list[Any]:
    """The partitions aiokafka's `seek_to_committed` leaves where they are (no offset, or 0)."""
    return [tp for tp, offset in committed.items() if not offset or offset <= 0]


def behind_floor(committed: Mapping[Any, int | None], floor: Mapping[Any, int]) -> dict[Any, int]:
    """The partitions whose committed offset the broker reported below `floor`, with the
    floor's offset (fix 7)."""
    return {tp: floor[tp] for tp, offset in committed.items() if tp in floor and (offset or 0) < floor[tp]}


def fetched_before_seek(stamp: int | None, sought: tuple[int, int] | None) -> bool:
    """Was a record stamped `stamp` fetched before its partition's last seek, `sought`:
    (the seek count after it, its target offset)? (fix 8)"""
    return stamp is not None and sought is not None and stamp < sought[0]


def fetched_after_last_seek(stamp: int | None, seeks: int, floor: int) -> bool:
    """Was a record stamped `stamp` fetched after the last of its partition's `seeks`, and
    has there been a seek since the assignment (`floor`: the count it must reach)? (fix 6)"""
    return stamp is not None and stamp == seeks and seeks >= floor


# the seek stamp of each message in flight (fix 6): Faust's messages have no room for it
seek_stamps: weakref.WeakKeyDictionary[Any, int | None] = weakref.WeakKeyDictionary()


# Faust's fetch wait; `FraudApp.fetch_max_wait_ms` replaces it (fix 5)
UPSTREAM_FETCH_MAX_WAIT_MS = 1500


class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # seeks per partition (fix 6); written on the consumer's thread, read by the app's
        self.seeks: Counter[Any] = Counter()
        # per partition sought: the seek count after its last seek, and the offset (fix 8)
        self.sought: dict[Any, tuple[int, int]] = {}

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # (no constructor argument to pass it through; read when the consumer starts)
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # FraudApp
        return consumer

    def _count_seeks(self, tps: Iterable[Any]) -> None:
        seeks = self.seeks
        for tp in tps:  # (not Counter.update: given a mapping, it adds the values)
            seeks[tp] += 1

    async def _fetch_records(self, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        # no await since aiokafka handed them out: no seek came in between (fix 6)
        seeks = self.seeks
        for tp, batch in records.items():
            stamp = seeks[tp]
            for record in batch:
                record.seek_stamp = stamp
        return records

    def _sought(self, targets: Mapping[Any, int]) -> None:
        seeks = self.seeks
        for tp, offset in targets.items():
            self.sought[tp] = (seeks[tp], offset)

    def seek(self, partition: Any, offset: int) -> None:
        super().seek(partition, offset)
        self._count_seeks((partition,))
        self._sought({partition: offset})

    async def _seek_wait(self, consumer: Any, partitions: Mapping[Any, int]) -> None:
        await super()._seek_wait(consumer, partitions)
        self._count_seeks(partitions)
        self._sought(partitions)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        # What aiokafka's `seek_to_committed` does, except that every offset is looked up
        # first and the seeks come after, with their counts (fix 6), without an await in
        # between: a fetch between a seek and its count would be taken for one from before
        # the seek, dropped, and never fetched again.
        committed: dict[Any, int | None] = {}
        for tp in consumer.assignment():
            committed[tp] = await consumer.committed(tp)
        targets = {tp: offset for tp, offset in committed.items() if offset and offset > 0}
        behind = behind_floor(committed, self.consumer.committed_floor())
        if behind:
            self.log.info(
                "the broker does not show this worker's last committed offsets yet (transaction "
                "markers still being written): resuming %s from them",
                ", ".join(f"{tp.topic}:{tp.partition} at {offset}" for tp, offset in sorted(behind.items())),
            )  # fmt: skip
            targets.update(behind)
            committed.update(behind)
        # table changelogs never have a committed offset: recovery positions them itself
        changelogs = self.app.tables.changelog_topics
        fresh = [tp for tp in never_committed(committed) if tp.topic not in changelogs]
        starts: dict[Any, int] = {}
        if fresh and self.app.conf.consumer_auto_offset_reset == "earliest":
            self.log.info(
                "no committed offset: reading %d partitions from their beginning: %s",
                len(fresh), ", ".join(sorted(f"{tp.topic}:{tp.partition}" for tp in fresh)),
            )  # fmt: skip
            # seek() to the offsets, not seek_to_beginning(): that leaves the position
            # unset until a reset request returns, and Faust's livelock check asserts on
            # it in between (it stopped a worker, 3 Dec)
            starts = await consumer.beginning_offsets(fresh)
            targets.update(starts)
        for tp, offset in targets.items():
            consumer.seek(tp, offset)
        self._count_seeks(committed)
        self._sought(targets)
        sources = sorted((tp, offset) for tp, offset in targets.items() if tp.topic not in changelogs)
        if sources:
            self.log.info("resuming from the committed offsets: %s",
                          ", ".join(f"{tp.topic}:{tp.partition} at {offset}" for tp, offset in sources))
        if starts:
            self.consumer.record_starts(starts)
        return committed

    async def seek_now(self, tp: Any, offset: int) -> None:
        """Seek on the consumer's own thread (aiokafka's consumer is not thread-safe)."""
        await self.call_thread(self._seek_now, tp, offset)

    async def _seek_now(self, tp: Any, offset: int) -> None:
        self._ensure_consumer().seek(tp, offset)
        self._count_seeks((tp,))
        self._sought({tp: offset})

    def close(self) -> None:
        """Leave the group for good (LeaveGroup; the coordinator never rejoins), from any
        thread. Upstream schedules the same calls on the app's loop, but the consumer's
        coordinator and connections live on this thread's loop."""
        consumer = self._consumer
        if consumer is None or self.thread_loop.is_closed():
            return
        consumer._closed = True

        async def close_on_own_loop() -> None:
            await consumer._coordinator.close()
            await consumer._client.close()

        asyncio.run_coroutine_threadsafe(close_on_own_loop(), self.thread_loop)


def fetched_before(message: Any, generation: int) -> bool:
    """Fetched in an older consumer generation (before the last rebalance)."""
    fetched_in = getattr(message, "generation_id", None)
    return fetched_in is not None and fetched_in != generation


def committable(message: Any, generation: int, flow_active: bool) -> bool:
    """May an ack of `message` count towards the committed offset? Not if it was fetched in
    an older generation or is acked while flow control is off: then Faust's stream may
    have skipped it (and acked it anyway), and its partition is sought back to the
    committed offset after the rebalance."""
    return flow_active and not fetched_before(message, generation)


def next_commit(head: int | None, acked: list[int]) -> int | None:
    """The offset to commit for a partition: one past the run of consecutive acked offsets
    that starts at `head` (the next offset to read: the committed one, or where reading
    began). None while `head` itself is not acked. `acked` is sorted; the run is removed
    from it. (`head` None: unknown, the run starts at the lowest acked offset, as upstream.)"""
    if not acked or (head is not None and acked[0] > head):
        return None
    end = 1
    while end < len(acked) and acked[end] == acked[end - 1] + 1:
        end += 1
    offset = acked[end - 1] + 1
    del acked[:end]
    return offset if head is None or offset > head else None


# A stopping worker waits for the events its agents are still running while acks keep
# coming, at most this long in all. Processing a click takes milliseconds.
STOP_WAIT = 10.0
# No ack for this long: nothing is running any more.
STOP_QUIET = 1.0

# How long a partition's commit may be held by an unacked offset while later ones are acked
# before the partition is read again from it. Processing a click takes milliseconds.
REREAD_AFTER = 10.0


class Consumer(aiokafka_driver.Consumer):
    # where reading began, for partitions with no committed offset (fix 1)
    _starts: dict[Any, int] | None = None
    # partitions whose commit is held: head offset, and since when
    _held: dict[Any, tuple[int, float]] | None = None
    # partitions to seek back before the next fetch, and where to
    _rewinds: dict[Any, int] | None = None

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _to_message(self, tp: Any, record: Any) -> Any:
        message = super()._to_message(tp, record)
        seek_stamps[message] = getattr(record, "seek_stamp", None)  # fix 6
        return message

    def committed_floor(self) -> Mapping[Any, int]:
        """Offsets known to be committed that the broker may not report yet (fix 7)."""
        return {}

    def record_starts(self, starts: Mapping[Any, int]) -> None:
        """Where reading began, for partitions sought to their beginning (fix 1)."""
        self._starts = {**(self._starts or {}), **starts}

    def head(self, tp: Any) -> int | None:
        """The next offset of `tp` to commit, if known."""
        committed = self._committed_offset.get(tp)
        return committed if committed is not None else (self._starts or {}).get(tp)

    def _new_offset(self, tp: Any) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:  # offsets with no record (transaction markers, compaction) count as acked
            top = max(acked)
            spans = sorted(gaps.overlap(0, top), key=lambda span: span.begin)
            if spans:
                filled = [o for span in spans for o in range(span.begin, span.end)]
                acked.extend(filled)
                gaps.chop(0, max(filled[-1], top + 1))
        acked.sort()
        before = len(acked)
        offset = next_commit(self.head(tp), acked)
        if len(acked) != before:
            self._acked_index[tp] = set(acked)
        return offset

    def ack(self, message: Any) -> bool:
        app = self.app
        if committable(message, app.consumer_generation_id, app.flow_control.is_active()):
            if super().ack(message):
                return True
            # an offset acked before (its copy read again after a seek back): upstream
            # leaves the message unacked for ever, and wait_empty() would wait for it
            self._forget(message)
            return False
        self.end_uncommitted(message)
        return False

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        self.plan_rereads(time.monotonic())
        return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    def plan_rereads(self, now: float) -> dict[Any, int]:
        """Plan a seek back for each owned partition whose commit has been held for
        `REREAD_AFTER` seconds by an offset that is not acked while later ones are;
        returns the partitions and the offsets to read from."""
        if self.app.rebalancing or not self._flowing():
            self._held = None  # the rebalance's own seek goes back to the committed offset
            return {}
        held, self._held = self._held or {}, {}
        planned: dict[Any, int] = {}
        assignment = self.assignment()
        for tp, acked in self._acked.items():
            head = self.head(tp)
            if tp not in assignment or head is None or not acked or min(acked) <= head:
                continue
            head_since, since = held.get(tp, (head, now))
            if head_since != head:
                since = now
            if now - since >= REREAD_AFTER:
                planned[tp] = head
            else:
                self._held[tp] = (head, since)
        if planned:
            self._rewinds = {**(self._rewinds or {}), **planned}
        return planned

    def _flowing(self) -> bool:
        """Neither the fetch nor the streams are stopped (as they are in a rebalance)."""
        return self.flow_active and self.app.flow_control.is_active()

    def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        # Seek back here, between two fetches: a batch fetched before the seek and still
        # being handed out would move Faust's read offset past the records read again,
        # and Faust drops a record below its read offset.
        if self._rewinds:
            return self._fetched_since_seek(self._getmany_after_rewind(timeout))
        return self._fetched_since_seek(super().getmany(timeout))

    async def _fetched_since_seek(self, messages: AsyncIterator[tuple[Any, Any]]) -> AsyncIterator[tuple[Any, Any]]:
        """Hand out only records fetched after their partition's last seek (fix 8). Table
        changelogs are left as upstream reads them: recovery positions them itself."""
        sought = self._thread.sought  # type: ignore[attr-defined]
        changelogs = self.app.tables.changelog_topics
        stamps = seek_stamps
        async for tp, message in messages:
            if tp.topic in changelogs:
                yield tp, message
                continue
            if fetched_before_seek(stamps.get(message), sought.get(tp)):
                continue  # the seek reads it again
            yield tp, message
            # Faust has now set its read offset from this record; if a seek came while it
            # was handed out, that offset is past the records the seek reads again
            last = sought.get(tp)
            if fetched_before_seek(stamps.get(message), last):
                self._read_offset[tp] = last[1]  # type: ignore[index]

    async def _getmany_after_rewind(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        await self._rewind()
        async for tp, message in super().getmany(timeout):
            yield tp, message

    async def _rewind(self) -> None:
        rewinds, self._rewinds = self._rewinds or {}, None
        if not self._flowing():
            return  # a rebalance came in between: its own seek goes back to the committed offset
        assignment = self.assignment()
        for tp, offset in rewinds.items():
            if tp not in assignment or self.head(tp) != offset:
                continue  # gone, or committed past it since
            self.log.warning(
                "at_least_once: the commit of %s:%s has been held at offset %d, which nobody "
                "is processing, for %.0f s: reading the partition again from it",
                tp.topic, tp.partition, offset, REREAD_AFTER,
            )  # fmt: skip
            # forget what was acked from there on: the copies read again count afresh
            self._acked[tp] = [o for o in self._acked.get(tp, ()) if o < offset]
            self._acked_index[tp] = set(self._acked[tp])
            await self._thread.seek_now(tp, offset)
            self._read_offset[tp] = offset

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        for tp in revoked:
            for bookkeeping in (self._starts, self._held, self._rewinds):
                if bookkeeping:
                    bookkeeping.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def wait_empty(self) -> None:
        """Upstream waits here, on stop, until every fetched message is acked. But Faust's
        stop has just cleared the streams' queues (`flow_control.clear()`): a message that
        was still queued is never processed nor acked, and the worker waited for it until
        killed (SIGTERM under load; then its next start rebuilt every table). Wait while
        acks come (running events), then end the rest uncommitted: the next owner reads
        them again from the committed offset."""
        deadline = time.monotonic() + STOP_WAIT
        while self._unacked_messages and not self.should_stop and time.monotonic() < deadline:
            await self.commit()
            waiting = len(self._unacked_messages)
            await self._wait_for_ack(timeout=STOP_QUIET)  # (upstream waits 1 s, whatever it is given)
            self._clean_unacked_messages()
            if len(self._unacked_messages) >= waiting:
                break
        never_processed = self.end_unacked_uncommitted()
        if never_processed:
            self.log.info("stopping: %d fetched messages not processed; read again from the committed offsets",
                          never_processed)
        await self.commit_and_end_transactions()

    def end_unacked_uncommitted(self) -> int:
        """End every fetched message not acked yet without committing it (its partition
        restarts at the committed offset); returns how many there were."""
        unacked = [message for message in self._unacked_messages if not message.acked]
        for message in unacked:
            self.end_uncommitted(message)
        self._unacked_messages.clear()
        return len(unacked)

    def end_uncommitted(self, message: Any) -> bool:
        """End the message's life as an ack does (upstream's `wait_empty()` waits for
        that) without making its offset committable; False if it was acked already."""
        with ack_lock:  # as upstream: a message is acked once
            if message.acked:
                return False
            message.acked = True
        self._forget(message)
        return True

    def _forget(self, message: Any) -> None:
        self._unacked_messages.discard(message)
        notify(self._waiting_for_ack)


def transport_class(base: type, **attrs: Any) -> type:
    """The Kafka transport class with this module's consumer (and `attrs` on top)."""
    if issubclass(base, aiokafka_driver.Transport):
        attrs.setdefault("Consumer", Consumer)
    return type(base.__name__, (base,), attrs)
