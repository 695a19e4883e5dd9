"""Exact sliding-window state by event time: the values of the rule tables.

Small value types, each stored as one Faust table value and so each round-tripping
through `to_json()` / `from_json()` of plain JSON (lists and dicts of floats):

* `SlidingTimestamps` — one key's recent event times (`click_spam`).
* `DeviceWindows` — one device's clicks (`click_spam`) and its own clicks per session and
  url (its exact share of `session_url_repeat`).
* `SessionUrlWindows` — one session's recent clicks per url, with the device of each (the
  other devices' share of `session_url_repeat`).
* `DedupEntry` — one click_id's accepted event time (`duplicate_click`).

Why a session is counted in two places (CONTRACT §4, order): a device's clicks reach the
device stage in their Kafka order, but reach the session stage from several partitions of
the stage in between, in any order. So the device stage counts the device's own earlier
clicks in the session (exact, in Kafka order) and the session stage adds the clicks of the
session's *other* devices (which the contract lets count in either order).

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

    def aggregate(self, ts: float, window: float, lateness: float, within: float | None = None) -> int:
        """Count earlier events in [ts - within, ts] (`within` <= `window`, default `window`:
        a rule set may look less far back than the state keeps), then add this one and keep
        `window`; returns the count."""
        prior = self.count_prior(ts, window if within is None else within)
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


SessionUrlKey = tuple[str, str]


@dataclass(slots=True)
class DeviceWindows:
    """One device's recent clicks, and per (session, url) its own clicks there.

    `clicks` is the click_spam state (`SlidingTimestamps`). `sessions` holds the event
    times of this device's clicks per (session_id, url), pruned by the device's newest
    event time: the count is exact for every click at most `lateness` behind the device's
    newest click. JSON form: the `clicks` list while the device has no session clicks
    held (the compact, original form), else `{"t": clicks, "s": [[session, url, times], ...]}`.
    """

    clicks: SlidingTimestamps = field(default_factory=SlidingTimestamps)
    sessions: dict[SessionUrlKey, list[float]] = field(default_factory=dict)

    @classmethod
    def initialize(cls) -> DeviceWindows:
        return cls()

    def aggregate(self, ts: float, window: float, lateness: float, within: float | None = None) -> int:
        """click_spam: the device's earlier clicks in [ts - within, ts] (default `window`);
        then adds this one."""
        return self.clicks.aggregate(ts, window, lateness, within)

    def aggregate_session(self, session: str, url: str, ts: float, window: float, lateness: float,
                          within: float | None = None) -> int:  # fmt: skip
        """The device's earlier clicks on `url` in `session` within [ts - within, ts]
        (default `window`); then adds this one, keeping `window`. Call after `aggregate` of
        the same click (it moves the newest time)."""
        key = (session, url)
        prior = self.count_session_prior(session, url, ts, window if within is None else within)
        newest = max(ts, self.clicks.max_ts or ts)
        cutoff = newest - window - lateness
        if ts >= cutoff:
            insort(self.sessions.setdefault(key, []), ts)
        stale = []
        for k, held in self.sessions.items():
            _prune(held, cutoff)
            if not held:
                stale.append(k)
        for k in stale:
            del self.sessions[k]
        return prior

    def count_session_prior(self, session: str, url: str, ts: float, within: float) -> int:
        """The device's clicks held on `url` in `session` within [ts - within, ts] (read only)."""
        times = self.sessions.get((session, url))
        return _count_between(times, ts - within, ts) if times else 0

    @property
    def max_ts(self) -> float | None:
        return self.clicks.max_ts

    def expires_at(self, window: float, lateness: float) -> float:
        """`window`: the longest window the value serves (click_spam's or session's)."""
        return self.clicks.expires_at(window, lateness)

    @staticmethod
    def json_expires_at(data: list[float] | dict[str, Any] | None, window: float, lateness: float) -> float:
        if isinstance(data, dict):
            data = data.get("t")
        return SlidingTimestamps.json_expires_at(data, window, lateness)

    def to_json(self) -> list[float] | dict[str, Any]:
        if not self.sessions:
            return self.clicks.to_json()
        return {"t": self.clicks.to_json(), "s": [[s, u, list(t)] for (s, u), t in self.sessions.items()]}

    @classmethod
    def from_json(cls, data: list[float] | dict[str, Any] | None) -> DeviceWindows:
        if not isinstance(data, dict):
            return cls(SlidingTimestamps.from_json(data))
        sessions = {(s, u): sorted(float(x) for x in t) for s, u, t in data.get("s") or () if t}
        return cls(SlidingTimestamps.from_json(data.get("t")), sessions)


@dataclass(slots=True)
class SessionUrlWindows:
    """One session's recent clicks per url, each with its device.

    `count_prior(..., exclude_device=d)` counts the clicks of the session's other devices
    only: the device stage counts d's own (`DeviceWindows.aggregate_session`). Pruning
    uses the session's newest event time (over all its urls), so the count is exact for
    clicks at most `lateness` behind the session's newest click. Every add prunes all the
    session's urls and drops those left empty, so a session holds only its clicks of the
    last window + lateness seconds. JSON form:
    `{"max": max_ts | null, "urls": {url: [[ts, device_id], ...] sorted by ts}}`
    (a url's plain list of times, the form before devices were kept, reads as device "").
    """

    urls: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    max_ts: float | None = None

    @classmethod
    def initialize(cls) -> SessionUrlWindows:
        return cls()

    def aggregate(self, url: str, ts: float, window: float, lateness: float, device: str | None = None,
                  within: float | None = None) -> int:  # fmt: skip
        """Count earlier clicks on `url` in [ts - within, ts] (default `window`; other
        devices' only when `device` is given), then add this one, keeping `window`."""
        prior = self.count_prior(url, ts, window if within is None else within, exclude_device=device)
        self.add(url, ts, window, lateness, device or "")
        return prior

    def result(self, url: str, ts: float, window: float) -> int:
        return self.count_prior(url, ts, window)

    def count_prior(self, url: str, ts: float, window: float, exclude_device: str | None = None) -> int:
        held = self.urls.get(url)
        if not held:
            return 0
        low = bisect_left(held, ts - window, key=_event_time)
        high = bisect_right(held, ts, key=_event_time)
        if exclude_device is None:
            return high - low
        return sum(1 for i in range(low, high) if held[i][1] != exclude_device)

    def add(self, url: str, ts: float, window: float, lateness: float, device: str = "") -> None:
        newest = ts if self.max_ts is None else max(self.max_ts, ts)
        self.max_ts = newest
        cutoff = newest - window - lateness
        if ts >= cutoff:
            insort(self.urls.setdefault(url, []), (ts, device), key=_event_time)
        # The cutoff moves for every url of the session: prune them all (a bisect each)
        # and drop the urls left empty.
        stale = []
        for u, held in self.urls.items():
            drop = bisect_left(held, cutoff, key=_event_time)
            if drop:
                del held[:drop]
            if not held:
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
        return {"max": self.max_ts, "urls": {u: [[t, d] for t, d in held] for u, held in self.urls.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SessionUrlWindows:
        if not data:
            return cls()
        urls = {
            u: sorted(((float(x[0]), str(x[1])) if isinstance(x, list) else (float(x), "") for x in held),
                      key=_event_time)
            for u, held in (data.get("urls") or {}).items()
        }
        max_ts = data.get("max")
        return cls(urls=urls, max_ts=float(max_ts) if max_ts is not None else None)


def _event_time(click: tuple[float, str]) -> float:
    return click[0]


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
