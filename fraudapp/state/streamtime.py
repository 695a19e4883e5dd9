"""Stream time of a partition that several input topics feed (the expiry watermark).

The device stage reads `clicks` partition p and `clicks-by-device` partition p (re-keyed
clicks) into the same state. The two advance independently: after an outage (a worker
killed, its partitions idle until a rebalance) `clicks` p resumes with a backlog minutes
old while `clicks-by-device` p, fed by the other partitions, is current. One clock for
the partition (the newest event of either topic) then runs ahead of the backlog by more
than the lateness, and the sweeper deletes device windows the backlog still needs: a
click whose two earlier clicks were just deleted loses its click_spam label.

A key may be deleted once every topic that can still reach it has moved past it, so the
watermark is the *slowest* topic's newest event time. A topic that has been quiet for
`idle_seconds` (or never had an event while the partition was active that long) no longer
holds it back: the wall clock stands in for it, so state stays bounded.

Quiet counts only while the partition flows here: the clock that measures it advances
with the wall clock between batches, but by at most `MAX_GAP` seconds per gap, and a
worker starts a partition over when its ownership changes (`epoch`: the consumer
generation). Measured by the wall clock, a stall (a rebalance waiting out a dead member's
session timeout, a broker outage) looked like quiet on `clicks` p; the first batch after
it brought only current `clicks-by-device` records, which alone set the watermark while
the `clicks` p backlog was still to come: the crash test's medium run (6 SIGKILLs, a 54 s
rebalance) lost 4 click_spam labels that way. Sparse traffic still expires: a long gap
counts `MAX_GAP`, so quiet accumulates over the batches that do come.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

# A click stamped far in the future must not advance stream time and expire everyone's
# state: event times count at most this far ahead of the wall clock.
MAX_FUTURE_SKEW = 300.0


# How much of one gap between two batches of a partition counts as the partition flowing.
MAX_GAP = 1.0


class MultiTopicStreamTime:
    def __init__(
        self, topics: Iterable[str], idle_seconds: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.topics = tuple(topics)
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._newest: dict[tuple[str, int], float] = {}
        self._last_event_flow: dict[tuple[str, int], float] = {}  # flowing time of the topic's last event
        self._flow: dict[int, float] = {}  # seconds the partition has been flowing
        self._last_advance: dict[int, float] = {}
        self._epoch: dict[int, object] = {}

    def advance(
        self, partition: int, newest_by_topic: Mapping[str, float], epoch: object = None
    ) -> float | None:
        """Record a batch's newest event time per topic; return the partition's watermark
        (None: not known yet, do not expire anything). `epoch` names this worker's current
        ownership of the partition (the consumer generation): when it changes, what was
        recorded under the previous one is forgotten."""
        now = self.clock()
        if self._epoch.get(partition, epoch) != epoch:
            self.forget(partition)
        self._epoch[partition] = epoch
        last = self._last_advance.get(partition)
        flow = self._flow.get(partition, 0.0) + (0.0 if last is None else min(max(now - last, 0.0), MAX_GAP))
        self._flow[partition] = flow
        self._last_advance[partition] = now
        for topic, ts in newest_by_topic.items():
            key = (topic, partition)
            ts = min(ts, now + MAX_FUTURE_SKEW)
            self._newest[key] = max(self._newest.get(key, ts), ts)
            self._last_event_flow[key] = flow
        return self.watermark(partition)

    def forget(self, partition: int) -> None:
        for topic in self.topics:
            self._newest.pop((topic, partition), None)
            self._last_event_flow.pop((topic, partition), None)
        self._flow.pop(partition, None)
        self._last_advance.pop(partition, None)

    def watermark(self, partition: int) -> float | None:
        now = self.clock()
        flow = self._flow.get(partition, 0.0)
        slowest: float | None = None
        for topic in self.topics:
            key = (topic, partition)
            newest = self._newest.get(key)
            if newest is None:
                if flow <= self.idle_seconds:
                    return None  # it may still bring older events for the same keys
                clock = now
            elif flow - self._last_event_flow[key] > self.idle_seconds:
                clock = max(newest, now)
            else:
                clock = newest
            slowest = clock if slowest is None else min(slowest, clock)
        return slowest


class Watermarks:
    """Newest event time seen per partition of one stage (stream time)."""

    def __init__(self) -> None:
        self._max: dict[int, float] = {}
        self._last_event_wall: dict[int, float] = {}

    def advance(self, partition: int, ts: float) -> float:
        now = time.time()
        ts = min(ts, now + MAX_FUTURE_SKEW)
        current = self._max.get(partition, ts)
        current = max(current, ts)
        self._max[partition] = current
        self._last_event_wall[partition] = now
        return current

    def idle(self, partition: int, idle_seconds: float) -> float:
        """Stream time of a partition that may have gone quiet: after `idle_seconds`
        without events, the wall clock stands in for it (so the last windows close). Only
        for this call: events that come later with older times (a backlog, a replay, or
        one judged click at a time under exactly_once) are judged by their event time."""
        now = time.time()
        current = self._max.get(partition, 0.0)
        if now - self._last_event_wall.get(partition, 0.0) > idle_seconds:
            current = max(current, now)
        return current
