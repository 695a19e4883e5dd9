"""What GET /stats and the dashboard show: running aggregates over verdicts and alerts.

Pure and single-threaded: the web taps (web/kafka.py) feed it every verdict and alert they
read from Kafka, the views read `snapshot()`. Time is the wall clock at which the tap saw
the record (so replayed or late events still show up as "now"), bucketed by whole second.

One `VerdictStats` per kind of verdict (`Kind`): clicks (CLICKS: devices, IPs, publishers,
campaigns) and transfers (TRANSFERS: the sending wallets of fraud verdicts), kept apart.

Memory is bounded whatever the traffic: the per-second series keeps `history_seconds`
buckets; the "top" tables (devices, IPs, publishers, campaigns, wallets) keep at most
`max_tracked` ids each and, when full, drop the less frequent half (the leaders stay exact
unless traffic spreads over more than `max_tracked` ids, when the counts become lower bounds).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fraudapp.models import FRAUD_TYPES, TX_FRAUD_TYPES, VERDICT_CLASSES
from fraudapp.rules.ivt import IVT_CLASSES

TX_VERDICT_CLASSES: tuple[str, ...] = ("clean", "fraud")  # no soft score for transfers (CONTRACT §3b)
WALLET_SCOPE = "wallet"  # the alerts about wallets (transfers); the other scopes are about clicks


@dataclass(frozen=True)
class Kind:
    """What one VerdictStats counts: the name of its records in the output (`unit`), the
    verdict classes and fraud types it lists, and the fields of fraud verdicts that feed its
    top tables, (table name, field) in order; `campaign`: the field whose records and fraud
    share per value make the campaign table (None: no such table)."""

    unit: str
    classes: tuple[str, ...]
    fraud_types: tuple[str, ...]
    top: tuple[tuple[str, str], ...]
    campaign: str | None = None
    ivt: bool = False  # split fraud verdicts by their `ivt` class (clicks: CONTRACT §3)


CLICKS = Kind("clicks", VERDICT_CLASSES, FRAUD_TYPES,
              (("devices", "device_id"), ("ips", "ip"), ("publishers", "publisher_id")), campaign="campaign_id",
              ivt=True)
TRANSFERS = Kind("transfers", TX_VERDICT_CLASSES, TX_FRAUD_TYPES, (("wallets", "from"),))


@dataclass
class Counts:
    """Verdicts by class, fraud verdicts by fraud type and by IVT class."""

    total: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    fraud_types: Counter[str] = field(default_factory=Counter)
    ivt: Counter[str] = field(default_factory=Counter)

    def add(self, verdict: str, fraud_types: list[str], ivt: str | None = None) -> None:
        self.total += 1
        self.verdicts[verdict] += 1
        for fraud_type in fraud_types:
            self.fraud_types[fraud_type] += 1
        if ivt is not None:
            self.ivt[ivt] += 1

    def merge(self, other: Counts) -> None:
        self.total += other.total
        self.verdicts.update(other.verdicts)
        self.fraud_types.update(other.fraud_types)
        self.ivt.update(other.ivt)

    def to_dict(self, kind: Kind = CLICKS) -> dict[str, Any]:
        verdicts = {name: self.verdicts.get(name, 0) for name in kind.classes}
        fraud_types = {name: self.fraud_types.get(name, 0) for name in kind.fraud_types}
        # A fraud type this build does not know (a newer detector) is still shown.
        fraud_types.update({k: v for k, v in self.fraud_types.items() if k not in fraud_types})
        ratio = verdicts["fraud"] / self.total if self.total else 0.0
        out = {kind.unit: self.total, "verdicts": verdicts, "fraud_types": fraud_types, "fraud_ratio": round(ratio, 4)}
        if kind.ivt:
            out["ivt"] = {name: self.ivt.get(name, 0) for name in IVT_CLASSES}
        return out


class BoundedCounter:
    """A Counter of at most `max_size` keys (the most frequent half survives a prune)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n
        if len(self.counts) > self.max_size:
            self.counts = Counter(dict(self.counts.most_common(self.max_size // 2)))

    def top(self, n: int) -> list[list[Any]]:
        return [[key, count] for key, count in self.counts.most_common(n)]


class VerdictStats:
    def __init__(
        self,
        window_seconds: float = 60.0,
        history_seconds: int = 120,
        top_n: int = 10,
        max_tracked: int = 10_000,
        max_alerts: int = 50,
        clock: Callable[[], float] = time.time,
        kind: Kind = CLICKS,
    ) -> None:
        self.kind = kind
        self.window_seconds = window_seconds
        self.history_seconds = max(history_seconds, int(window_seconds) + 1)
        self.top_n = top_n
        self.clock = clock
        self.started_at = clock()
        self.totals = Counts()
        # (whole second, counts of the verdicts seen in it), oldest first
        self._buckets: deque[tuple[int, Counts]] = deque()
        # top table name -> fraud verdicts by the value of its field
        self.fraud_by = {name: BoundedCounter(max_tracked) for name, _ in kind.top}
        self._campaign_clicks = BoundedCounter(max_tracked)
        self._campaign_fraud: dict[str, int] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self.alerts_total = 0

    # -- input ------------------------------------------------------------------------
    def add_verdict(self, verdict: Mapping[str, Any], now: float | None = None) -> None:
        now = self.clock() if now is None else now
        cls = verdict.get("verdict")
        if cls not in self.kind.classes:
            return  # not a verdict (foreign record on the topic): nothing to count
        fraud_types = [t for t in verdict.get("fraud_types") or () if isinstance(t, str)]
        ivt = verdict.get("ivt") if self.kind.ivt and verdict.get("ivt") in IVT_CLASSES else None
        self.totals.add(cls, fraud_types, ivt)
        self._bucket(now).add(cls, fraud_types, ivt)
        campaign = verdict.get(self.kind.campaign) if self.kind.campaign else None
        if isinstance(campaign, str) and campaign:
            self._campaign_clicks.add(campaign)
            if cls == "fraud":
                self._campaign_fraud[campaign] = self._campaign_fraud.get(campaign, 0) + 1
            if len(self._campaign_fraud) > self._campaign_clicks.max_size:
                self._campaign_fraud = {k: v for k, v in self._campaign_fraud.items() if k in self._campaign_clicks.counts}
        if cls != "fraud":
            return
        for name, key in self.kind.top:
            value = verdict.get(key)
            if isinstance(value, str) and value:
                self.fraud_by[name].add(value)

    def add_alert(self, alert: Mapping[str, Any], now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.alerts.appendleft({**alert, "seen_at": now})
        self.alerts_total += 1

    def _bucket(self, now: float) -> Counts:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            return self._buckets[-1][1]
        if self._buckets and self._buckets[-1][0] > second:
            # The clock stepped back: count it in the newest bucket rather than reorder.
            return self._buckets[-1][1]
        counts = Counts()
        self._buckets.append((second, counts))
        self._expire(second)
        return counts

    def _expire(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.history_seconds:
            self._buckets.popleft()

    # -- output -----------------------------------------------------------------------
    def window(self, now: float | None = None) -> Counts:
        """Counts of the verdicts seen in the last `window_seconds` (whole seconds)."""
        now = self.clock() if now is None else now
        first = int(now) - int(self.window_seconds) + 1
        out = Counts()
        for second, counts in self._buckets:
            if first <= second <= int(now):
                out.merge(counts)
        return out

    def series(self, now: float | None = None, seconds: int | None = None) -> list[dict[str, Any]]:
        """Per-second verdict counts, oldest first, zeros filled, ending at `now`."""
        now = self.clock() if now is None else now
        seconds = self.history_seconds if seconds is None else seconds
        last = int(now)
        by_second = {second: counts for second, counts in self._buckets}
        out = []
        for second in range(last - seconds + 1, last + 1):
            counts = by_second.get(second)
            row: dict[str, Any] = {"t": second, self.kind.unit: counts.total if counts else 0}
            for name in self.kind.classes:
                row[name] = counts.verdicts.get(name, 0) if counts else 0
            out.append(row)
        return out

    def campaigns(self, n: int | None = None) -> list[dict[str, Any]]:
        """Campaigns with the most fraud first (then the most clicks)."""
        rows = []
        for campaign, clicks in self._campaign_clicks.counts.items():
            fraud = self._campaign_fraud.get(campaign, 0)
            rows.append({"id": campaign, "clicks": clicks, "fraud": fraud, "ratio": round(fraud / clicks, 4)})
        rows.sort(key=lambda r: (-r["fraud"], -r["clicks"], r["id"]))
        return rows[: n or self.top_n]

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """GET /stats: since the tap started and in the last window."""
        now = self.clock() if now is None else now
        return {
            "since": self.started_at,
            "now": now,
            "window_seconds": self.window_seconds,
            "since_start": self.totals.to_dict(self.kind),
            "last_window": self.window(now).to_dict(self.kind),
            "alerts": self.alerts_total,
        }

    def snapshot(self, now: float | None = None, series_seconds: int = 60) -> dict[str, Any]:
        """Everything the dashboard draws, as one JSON-able dict."""
        now = self.clock() if now is None else now
        out = self.summary(now)
        out.update(
            series=self.series(now, series_seconds),
            top={name: counter.top(self.top_n) for name, counter in self.fraud_by.items()},
        )
        if self.kind.campaign:
            out["campaigns"] = self.campaigns()
        out["recent_alerts"] = list(self.alerts)[:20]
        return out


def alert_stats(alert: Mapping[str, Any], clicks: VerdictStats, transfers: VerdictStats) -> VerdictStats:
    """Where an alert is shown: a wallet's (scope wallet) with the transfers, the others with the clicks."""
    return transfers if alert.get("scope") == WALLET_SCOPE else clicks
