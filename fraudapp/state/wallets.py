"""Exact per-wallet state by event time for the transaction rules (CONTRACT §4b): the
value of the `wallet-activity` table, keyed by the sending wallet.

One `WalletActivity` holds a sender's
* outgoing transfer times (`wallet_velocity`): a `SlidingTimestamps`;
* recipients with their times (`fan_out`);
* last amounts per asset, in Kafka order (`large_amount`), not bounded by time;
* its flagged transfers per tumbling alert window (the wallet alert).

Counting follows state/sliding.py: a transfer counts the sender's transfers *processed
earlier* (its partition's Kafka order) whose event time lies in [ts - W, ts]; times are
kept for the longest window + lateness behind the sender's newest transfer, so counts are
exact for transfers at most `lateness` late. The amounts and the newest time are kept
until `idle` seconds after the newest transfer (WALLET_IDLE_SECONDS), when the whole
value expires. Pure: no Faust.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from fraudapp.state.sliding import SlidingTimestamps


@dataclass(frozen=True, slots=True)
class Windows:
    """The rules' windows, from the settings (and what state keeps: the longest + lateness)."""

    velocity: float
    fan_out: float
    history: int  # amounts kept per asset
    min_known: int  # amounts needed before the median counts
    alert: float  # tumbling alert window
    lateness: float
    idle: float

    @property
    def longest(self) -> float:
        return max(self.velocity, self.fan_out)


@dataclass(frozen=True, slots=True)
class Counts:
    """What one transfer's rules read from its sender's state (before it is added)."""

    prior_in_velocity_window: int
    distinct_recipients: int  # within the fan-out window, this transfer's included
    median_amount: float | None
    known_amounts: int


@dataclass(slots=True)
class AlertWindow:
    """A sender's judged transfers in one tumbling alert window."""

    start: float
    transfers: int = 0
    flagged: int = 0
    fraud_types: dict[str, int] = field(default_factory=dict)
    alerted: bool = False


@dataclass(slots=True)
class WalletActivity:
    sends: SlidingTimestamps = field(default_factory=SlidingTimestamps)
    recipients: list[tuple[float, str]] = field(default_factory=list)  # sorted by time
    amounts: dict[str, list[float]] = field(default_factory=dict)  # per asset, oldest first
    alert_windows: dict[float, AlertWindow] = field(default_factory=dict)  # by start

    @classmethod
    def initialize(cls) -> WalletActivity:
        return cls()

    # -- Quix Streams style ---------------------------------------------------------------
    def aggregate(self, ts: float, recipient: str, asset: str, amount: float, w: Windows) -> Counts:
        """The counts of a new transfer, then the transfer added."""
        counts = self.result(ts, recipient, asset, w)
        self.add(ts, recipient, asset, amount, w)
        return counts

    def result(self, ts: float, recipient: str, asset: str, w: Windows) -> Counts:
        low = bisect_left(self.recipients, ts - w.fan_out, key=_time)
        high = bisect_right(self.recipients, ts, key=_time)
        distinct = {to for _, to in self.recipients[low:high]} | {recipient}
        known = self.amounts.get(asset, [])
        return Counts(
            prior_in_velocity_window=self.sends.count_prior(ts, w.velocity),
            distinct_recipients=len(distinct),
            median_amount=median(known) if len(known) >= w.min_known else None,
            known_amounts=len(known),
        )

    def add(self, ts: float, recipient: str, asset: str, amount: float, w: Windows) -> None:
        self.sends.add(ts, w.longest, w.lateness)
        newest = self.sends.max_ts if self.sends.max_ts is not None else ts
        cutoff = newest - w.longest - w.lateness
        if ts >= cutoff:
            insort(self.recipients, (ts, recipient), key=_time)
        drop = bisect_left(self.recipients, cutoff, key=_time)
        if drop:
            del self.recipients[:drop]
        kept = self.amounts.setdefault(asset, [])
        kept.append(amount)
        if len(kept) > w.history:
            del kept[: len(kept) - w.history]

    def count_alert(self, ts: float, fraud_types: list[str], threshold: int, w: Windows) -> AlertWindow | None:
        """Count a judged transfer (flagged when it has fraud types) in its tumbling window;
        the window the first time its flagged transfers exceed `threshold`, else None."""
        start = ts - ts % w.alert
        window = self.alert_windows.get(start)
        if window is None:
            window = self.alert_windows[start] = AlertWindow(start)
        window.transfers += 1
        if fraud_types:
            window.flagged += 1
            for name in fraud_types:
                window.fraud_types[name] = window.fraud_types.get(name, 0) + 1
        newest = max(self.alert_windows)
        for old in [s for s in self.alert_windows if s + w.alert + w.lateness < newest]:
            del self.alert_windows[old]
        if window.flagged > threshold and not window.alerted:
            window.alerted = True
            return window
        return None

    # -- expiry and persistence -----------------------------------------------------------
    @property
    def max_ts(self) -> float | None:
        return self.sends.max_ts

    def expires_at(self, w: Windows) -> float:
        return self.sends.max_ts + w.idle if self.sends.max_ts is not None else float("-inf")

    @staticmethod
    def json_expires_at(data: dict[str, Any] | None, idle: float) -> float:
        newest = (data or {}).get("m")
        return newest + idle if newest is not None else float("-inf")

    def to_json(self) -> dict[str, Any]:
        return {"m": self.sends.max_ts, "t": self.sends.to_json(), "r": [[t, to] for t, to in self.recipients],
                "a": self.amounts,
                "w": [[a.start, a.transfers, a.flagged, a.fraud_types, a.alerted] for a in self.alert_windows.values()]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WalletActivity:
        if not data:
            return cls()
        # "m" (the newest time, also the last of "t": never pruned) lets the sweeper read expiry off the JSON
        return cls(SlidingTimestamps.from_json(data.get("t")),
                   sorted(((float(t), str(to)) for t, to in data.get("r") or ()), key=_time),
                   {asset: [float(a) for a in amounts] for asset, amounts in (data.get("a") or {}).items()},
                   {float(s): AlertWindow(float(s), int(n), int(f), dict(t), bool(a)) for s, n, f, t, a in data.get("w") or ()})


def _time(item: tuple[float, str]) -> float:
    return item[0]
