"""Shadow runs: what a candidate rule set would change, counted on the live clicks.

A candidate set (the rule set named `shadow`) is judged beside the live one on every click
the device stage took while it ran; verdicts do not change. The judge stage sums each
batch's comparisons into one `ShadowBatch` record on the rules-shadow topic, in the same
transaction as the verdicts, and `ShadowReport` adds those records up per candidate
version (GET /rules, /stats, the dashboard, `fraudapp rules show`).

A click *flips* when its verdict class or its fraud types differ between the two sets. Per
fraud type a flip gains it (the candidate adds it) or loses it; `by_fraud_type_and_campaign`
is the same split `fraudapp replay --rules` reports, so a shadow run and an offline replay
of the same clicks give the same counts. Pure: no Faust, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_PER_RECORD = 20  # flips written out in full per batch record (counts stay exact)
EXAMPLES_KEPT = 5  # per fraud type and direction in a report


def outcome(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """What a comparison of two verdicts looks at: the class and the fraud types."""
    return {"verdict": verdict.get("verdict"), "fraud_types": sorted(verdict.get("fraud_types") or [])}


def by_fraud_type_and_campaign(changes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How changes ({before, after, campaign_id}) split: per fraud type the clicks that
    gained it and that lost it, and per campaign ("None": no campaign) the clicks that
    changed."""
    fraud_types: dict[str, dict[str, int]] = {}
    campaigns: dict[str, int] = {}
    for change in changes:
        before, after = set(change["before"]["fraud_types"]), set(change["after"]["fraud_types"])
        for name, kind in [(t, "gained") for t in after - before] + [(t, "lost") for t in before - after]:
            counts = fraud_types.setdefault(name, {"gained": 0, "lost": 0})
            counts[kind] += 1
        campaign = str(change.get("campaign_id"))
        campaigns[campaign] = campaigns.get(campaign, 0) + 1
    return {"fraud_types": dict(sorted(fraud_types.items())), "campaigns": dict(sorted(campaigns.items()))}


def merge_by(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Add one `by_fraud_type_and_campaign` result to another, in place."""
    for name, counts in part.get("fraud_types", {}).items():
        mine = total.setdefault("fraud_types", {}).setdefault(name, {"gained": 0, "lost": 0})
        mine["gained"] += counts.get("gained", 0)
        mine["lost"] += counts.get("lost", 0)
    for campaign, n in part.get("campaigns", {}).items():
        campaigns = total.setdefault("campaigns", {})
        campaigns[campaign] = campaigns.get(campaign, 0) + n


def transition(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """'clean>fraud': a verdict class change ('fraud>fraud' when only the fraud types differ)."""
    return f"{before['verdict']}>{after['verdict']}"


@dataclass
class ShadowBatch:
    """One batch's comparisons for one candidate version (the rules-shadow record)."""

    version: int
    clicks: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, live: Mapping[str, Any], shadow: Mapping[str, Any], source: Any = None) -> None:
        """One click's live verdict and the candidate's verdict for it."""
        self.clicks += 1
        before, after = outcome(live), outcome(shadow)
        if before != after:
            self.changes.append({
                "click_id": live.get("click_id"), "device_id": live.get("device_id"),
                "campaign_id": live.get("campaign_id"), "publisher_id": live.get("publisher_id"),
                "source": source, "live_version": live.get("rules_version"),
                "before": before, "after": after, "reasons": shadow.get("reasons", []),
            })

    def record(self) -> dict[str, Any]:
        return {
            "shadow_version": self.version,
            "clicks": self.clicks,
            "flipped": len(self.changes),
            "transitions": dict(sorted(Counter(transition(c["before"], c["after"]) for c in self.changes).items())),
            "by": by_fraud_type_and_campaign(self.changes),
            "examples": self.changes[:EXAMPLES_PER_RECORD],
        }


@dataclass
class VersionReport:
    clicks: int = 0
    flipped: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    by: dict[str, Any] = field(default_factory=lambda: {"fraud_types": {}, "campaigns": {}})
    # (fraud type or verdict transition, "gained"|"lost"|"changed") -> a few flipped clicks
    examples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        self.clicks += int(record.get("clicks", 0))
        self.flipped += int(record.get("flipped", 0))
        self.transitions.update(record.get("transitions", {}))
        merge_by(self.by, record.get("by", {}))
        for change in record.get("examples", ()):
            before, after = set(change["before"]["fraud_types"]), set(change["after"]["fraud_types"])
            keys = [(t, "gained") for t in after - before] + [(t, "lost") for t in before - after]
            for name, kind in keys or [(transition(change["before"], change["after"]), "changed")]:
                kept = self.examples.setdefault(name, {}).setdefault(kind, [])
                if len(kept) < EXAMPLES_KEPT:
                    kept.append(change)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clicks": self.clicks,
            "flipped": self.flipped,
            "flip_ratio": round(self.flipped / self.clicks, 6) if self.clicks else 0.0,
            "transitions": dict(sorted(self.transitions.items())),
            "by": {"fraud_types": dict(sorted(self.by["fraud_types"].items())),
                   "campaigns": dict(sorted(self.by["campaigns"].items()))},
            "examples": self.examples,
        }


class ShadowReport:
    """The rules-shadow records added up per candidate version."""

    def __init__(self) -> None:
        self.versions: dict[int, VersionReport] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        version = record.get("shadow_version")
        if isinstance(version, int) and not isinstance(version, bool):
            self.versions.setdefault(version, VersionReport()).add(record)

    def of(self, version: int | None) -> dict[str, Any] | None:
        """The report of one candidate version (None: no comparison of it seen yet)."""
        report = self.versions.get(version) if version is not None else None
        return {"version": version, **report.to_dict()} if report is not None else None
