"""Exact sliding-window state by event time: the values of the rule tables.

Three small value types, each stored as one Faust table value and so each round-tripping
through `to_json()` / `from_json()` of plain JSON (lists and dicts of floats):

* `SlidingTimestamps` — one key's recent event times (device -> clicks, `click_spam`).
* `SessionUrlWindows` — one session's recent event times per url (`session_url_repeat`).
* `DedupEntry` — one click_id's accepted event time (`duplicate_click`).

Semantics (CONTRACT §4). For a new event at event time `ts`, `count_prior(ts, W)` is the
number of events of the key *processed earlier* whose event time lies in `[ts - W, ts]`,
both ends inclusive: equal timestamps count, an event exactly `W` earlier counts, an
earlier-processed event with a *later* event time does not (out-of-order events are
counted by their event time). `aggregate` returns that count and then adds the event —
the Quix Streams shape `initialize / aggregate / result`.

Bounded state. After every add, only event times `>= max_ts - W - lateness` are kept,
where `max_ts` is the newest event time seen for the key and `lateness` is
`Settings.lateness_seconds`. Consequently the count is exact for every event whose time is
at most `lateness` behind the key's newest event (then `ts - W >= max_ts - W - lateness`,
so nothing it could count was pruned). An event later than that is still judged and
still counted, against history that may already be pruned (a lower bound of the exact
count); it is not stored, as it would be pruned at once. Exactness at the pruning edge
assumes the float arithmetic `max_ts - W - lateness` is exact, which it is for the usual
event times (milliseconds) and whole-second settings up to rounding of the last bit.

Expiry. `expires_at()` is the event time after which the whole value may be deleted: once
every clock that can still reach the key is strictly beyond it, no event within lateness
can count anything the value holds (the sweeper deletes when `expires_at < watermark`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from typing import Any


def _count_between(times: list[float], low: float, high: float) -> int:
    """How many of the sorted `times` lie in [low, high]."""
    return bisect_right(times, high) - bisect_left(times, low)


def _prune(times: list[float], cutoff: float) -> None:
    """Drop, in place, the sorted `times` below `cutoff`."""
    drop = bisect_left(times, cutoff)
    if drop:
        del times[:drop]


@dataclass(slots=True)
class SlidingTimestamps:
    """Sorted recent event times of one key. JSON form: the sorted list of floats."""

    times: list[float] = field(default_factory=list)

    # -- Quix Streams style -------------------------------------------------------------
    @classmethod
    def initialize(cls) -> SlidingTimestamps:
        return cls()

    def aggregate(self, ts: float, window: float, lateness: float) -> int:
        """Count earlier events in [ts - window, ts], then add this one; returns the count."""
        prior = self.count_prior(ts, window)
        self.add(ts, window, lateness)
        return prior

    def result(self, ts: float, window: float) -> int:
        """Events held with event time in [ts - window, ts] (read-only, e.g. GET /devices)."""
        return self.count_prior(ts, window)

    # -- primitives ---------------------------------------------------------------------
    def count_prior(self, ts: float, window: float) -> int:
        return _count_between(self.times, ts - window, ts)

    def add(self, ts: float, window: float, lateness: float) -> None:
        """Insert `ts` (kept sorted) and prune to [max_ts - window - lateness, ...]."""
        newest = max(ts, self.times[-1]) if self.times else ts
        cutoff = newest - window - lateness
        if ts >= cutoff:  # a too-late event would be pruned at once: don't store it
            insort(self.times, ts)
        _prune(self.times, cutoff)

    @property
    def max_ts(self) -> float | None:
        return self.times[-1] if self.times else None

    def expires_at(self, window: float, lateness: float) -> float:
        """max_ts + window + lateness; -inf when empty (deletable at once)."""
        return self.times[-1] + window + lateness if self.times else float("-inf")

    @staticmethod
    def json_expires_at(data: list[float] | None, window: float, lateness: float) -> float:
        """`expires_at` straight from the JSON value (for the expiry sweeper)."""
        return max(data) + window + lateness if data else float("-inf")

    def __len__(self) -> int:
        return len(self.times)

    # -- persistence --------------------------------------------------------------------
    def to_json(self) -> list[float]:
        return list(self.times)

    @classmethod
    def from_json(cls, data: list[float] | None) -> SlidingTimestamps:
        # sorted() is O(n) on already-sorted input and protects against a hand-edited value.
        return cls(sorted(float(t) for t in data) if data else [])


@dataclass(slots=True)
class SessionUrlWindows:
    """One session's recent event times per url.

    Pruning uses the session's newest event time (over all its urls), so the count is exact
    for clicks at most `lateness` behind the session's newest click. Every add prunes all
    the session's urls and drops those left empty, so a session holds only its clicks of
    the last window + lateness seconds. JSON form:
    `{"max": max_ts | null, "urls": {url: sorted [ts, ...]}}`.
    """

    urls: dict[str, list[float]] = field(default_factory=dict)
    max_ts: float | None = None

    @classmethod
    def initialize(cls) -> SessionUrlWindows:
        return cls()

    def aggregate(self, url: str, ts: float, window: float, lateness: float) -> int:
        """Count earlier clicks on `url` in [ts - window, ts], then add this one."""
        prior = self.count_prior(url, ts, window)
        self.add(url, ts, window, lateness)
        return prior

    def result(self, url: str, ts: float, window: float) -> int:
        return self.count_prior(url, ts, window)

    def count_prior(self, url: str, ts: float, window: float) -> int:
        times = self.urls.get(url)
        return _count_between(times, ts - window, ts) if times else 0

    def add(self, url: str, ts: float, window: float, lateness: float) -> None:
        newest = ts if self.max_ts is None else max(self.max_ts, ts)
        self.max_ts = newest
        cutoff = newest - window - lateness
        if ts >= cutoff:
            insort(self.urls.setdefault(url, []), ts)
        # The cutoff moves for every url of the session: prune them all (a bisect each)
        # and drop the urls left empty.
        stale = []
        for u, times in self.urls.items():
            _prune(times, cutoff)
            if not times:
                stale.append(u)
        for u in stale:
            del self.urls[u]

    def expires_at(self, window: float, lateness: float) -> float:
        return self.max_ts + window + lateness if self.max_ts is not None else float("-inf")

    @staticmethod
    def json_expires_at(data: dict[str, Any] | None, window: float, lateness: float) -> float:
        max_ts = (data or {}).get("max")
        return max_ts + window + lateness if max_ts is not None else float("-inf")

    def __len__(self) -> int:
        return sum(len(t) for t in self.urls.values())

    def to_json(self) -> dict[str, Any]:
        return {"max": self.max_ts, "urls": {u: list(t) for u, t in self.urls.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SessionUrlWindows:
        if not data:
            return cls()
        urls = {u: sorted(float(x) for x in t) for u, t in (data.get("urls") or {}).items()}
        max_ts = data.get("max")
        return cls(urls=urls, max_ts=float(max_ts) if max_ts is not None else None)


def is_duplicate(prev_ts: float | None, ts: float, horizon: float) -> bool:
    """A click with this id was accepted before and its event time is within `horizon`."""
    return prev_ts is not None and abs(ts - prev_ts) <= horizon


@dataclass(slots=True)
class DedupEntry:
    """The event time of the accepted (non-duplicate) click that holds a click_id.

    A click is a duplicate iff an entry exists and |ts - entry.ts| <= horizon
    (DEDUP_SECONDS); a duplicate never changes the entry. A non-duplicate click with the
    same id (more than `horizon` away) takes the entry over if it is newer, so the
    horizon restarts from the newest original. Against the reference "some earlier
    non-duplicate click with this id lies within horizon" this is exact for clicks at
    most `lateness` behind the entry, given lateness <= horizon. JSON form: the float.
    """

    ts: float

    @staticmethod
    def check(entry: DedupEntry | None, ts: float, horizon: float) -> tuple[float | None, DedupEntry]:
        """(event time of the click this one duplicates or None, the entry to store)."""
        if entry is not None and is_duplicate(entry.ts, ts, horizon):
            return entry.ts, entry
        if entry is not None and entry.ts > ts:
            return None, entry
        return None, DedupEntry(ts)

    def expires_at(self, horizon: float, lateness: float) -> float:
        return self.ts + horizon + lateness

    @staticmethod
    def json_expires_at(data: float | None, horizon: float, lateness: float) -> float:
        return data + horizon + lateness if data is not None else float("-inf")

    def to_json(self) -> float:
        return self.ts

    @classmethod
    def from_json(cls, data: float | None) -> DedupEntry | None:
        return None if data is None else cls(float(data))
