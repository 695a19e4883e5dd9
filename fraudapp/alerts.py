"""Alert rule (contract §5): per campaign and per publisher, per tumbling window, one alert
when at least ALERT_MIN_CLICKS clicks were judged and the fraud share exceeds ALERT_FRAUD_RATIO.

Pure: the state of one scope (`"campaign:<id>"` or `"publisher:<id>"`) is a JSON-able dict
kept in a Faust table by the alert agent; a window is judged once, when it closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    window_seconds: float = 60.0
    min_clicks: int = 20
    fraud_ratio: float = 0.30
    grace_seconds: float = 5.0


def scope_keys(campaign_id: str | None, publisher_id: str | None) -> list[str]:
    keys = []
    if campaign_id:
        keys.append("campaign:" + campaign_id)
    if publisher_id:
        keys.append("publisher:" + publisher_id)
    return keys


def window_start(ts: float, size: float) -> float:
    return ts - (ts % size)


def initialize() -> dict[str, Any]:
    # open: window start -> [clicks, fraud, {fraud type: count}]; closed: starts already judged
    return {"open": {}, "closed": []}


def aggregate(state: dict[str, Any], ts: float, verdict: str, fraud_types: list[str], policy: AlertPolicy) -> bool:
    """Count one judged click; False when its window was already closed (a very late click)."""
    partial = Partial()
    partial.add(verdict, fraud_types, ts)
    return aggregate_partial(state, window_start(ts, policy.window_seconds), partial)


@dataclass(slots=True)
class Partial:
    """Counts of some judged clicks of one scope and window (the judge stage sends these
    per batch rather than one record per click)."""

    clicks: int = 0
    fraud: int = 0
    types: dict[str, int] = field(default_factory=dict)
    newest_ts: float = 0.0

    def add(self, verdict: str, fraud_types: list[str], ts: float = 0.0) -> None:
        self.clicks += 1
        self.newest_ts = max(self.newest_ts, ts)
        if verdict == "fraud":
            self.fraud += 1
            for t in fraud_types:
                self.types[t] = self.types.get(t, 0) + 1


def aggregate_partial(state: dict[str, Any], start: float, partial: Partial) -> bool:
    """Add a window's partial counts; False when that window was already closed."""
    if start in state["closed"]:
        return False
    counts = state["open"].setdefault(repr(start), [0, 0, {}])
    counts[0] += partial.clicks
    counts[1] += partial.fraud
    for t, n in partial.types.items():
        counts[2][t] = counts[2].get(t, 0) + n
    return True


def close(state: dict[str, Any], scope_key: str, watermark: float, policy: AlertPolicy) -> list[dict[str, Any]]:
    """Close every window that ended before `watermark - grace`; return the alerts they raise."""
    alerts = []
    scope, _, ident = scope_key.partition(":")
    for key in sorted(state["open"], key=float):
        start = float(key)
        end = start + policy.window_seconds
        if end + policy.grace_seconds > watermark:
            continue
        clicks, fraud, types = state["open"].pop(key)
        state["closed"].append(start)
        ratio = fraud / clicks if clicks else 0.0
        if clicks >= policy.min_clicks and ratio > policy.fraud_ratio:
            alerts.append(
                {
                    "scope": scope,
                    "id": ident,
                    "window_start": start,
                    "window_end": end,
                    "clicks": clicks,
                    "fraud": fraud,
                    "ratio": round(ratio, 4),
                    "top_fraud_types": dict(sorted(types.items(), key=lambda kv: -kv[1])[:5]),
                }
            )
    # Remember closed windows only as long as a late click could still name them.
    horizon = watermark - 10 * policy.window_seconds
    state["closed"] = [s for s in state["closed"] if s >= horizon]
    return alerts


def encode_partial(start: float, partial: Partial) -> dict[str, Any]:
    return {"start": start, "clicks": partial.clicks, "fraud": partial.fraud, "types": partial.types,
            "ts": partial.newest_ts}


def decode_partial(record: dict[str, Any]) -> tuple[float, Partial]:
    return record["start"], Partial(record["clicks"], record["fraud"], record["types"], record["ts"])


def is_empty(state: dict[str, Any]) -> bool:
    return not state["open"] and not state["closed"]
