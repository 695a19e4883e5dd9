"""judge: the hard rules in order, then the soft score — one `Verdict` per click, no I/O.

* Any hard hit -> `fraud`, `fraud_types` = the rules that fired, in `HARD_RULES` order
  (= `models.HARD_FRAUD_TYPES`), one reason per hit; then the farm rules (`FARM_RULES`:
  device_farm), which read the click's reputation and so are not exact like the hard ones.
* Otherwise by the soft score (rules/score.py): score > SCORE_CLEAN_ABOVE -> `clean`
  (no reasons); score > SCORE_SUSPICIOUS_ABOVE -> `suspicious` with one reason
  `{"rule": "score", ...}`; else `fraud` with fraud type `low_human_score` and its reason.
  Those reasons name every layer, its value and the signals that lowered it.
* `score` and `layers` are filled for every verdict, hard hits included; `ivt` says which
  class of invalid traffic a fraud verdict is (rules/ivt.py).
"""

from __future__ import annotations

from fraudapp.models import (
    SOFT_FRAUD_TYPE,
    Click,
    Features,
    Scores,
    Verdict,
    VerdictClass,
)
from fraudapp.rules import FARM_RULES, HARD_RULES
from fraudapp.rules.base import Rule
from fraudapp.rules.ivt import ivt_class
from fraudapp.rules.score import DATACENTER_NOTE, DatacenterRanges, Notes, explain
from fraudapp.settings import Settings

SCORE_REASON = "score"  # reason of a `suspicious` verdict: not a fraud type


def _fmt(value: float) -> str:
    return f"{value:g}"


def describe_layers(scores: Scores, notes: Notes) -> str:
    """'ip 10 (not a global address); fingerprint 100; behaviour n/a (no mouse telemetry)'"""
    parts = []
    for layer, value in (("ip", scores.ip), ("fingerprint", scores.fingerprint), ("behaviour", scores.behaviour),
                         ("network", scores.network)):
        if layer == "network" and value is None:
            continue  # most clicks have no reputation: saying so on each would be noise
        text = f"{layer} {'n/a' if value is None else _fmt(value)}"
        if notes.get(layer):
            text += f" ({', '.join(notes[layer])})"
        parts.append(text)
    return "; ".join(parts)


def judge(
    click: Click,
    features: Features,
    settings: Settings,
    now: float,
    *,
    datacenter: DatacenterRanges | None = None,
    rules: tuple[Rule, ...] = HARD_RULES,
    farm_rules: tuple[Rule, ...] = FARM_RULES,
    rules_version: int = 0,
) -> Verdict:
    hits = [hit for rule in rules if (hit := rule.apply(click, features, settings)) is not None]
    if features.reputation:
        hits += [hit for rule in farm_rules if (hit := rule.apply(click, features, settings)) is not None]
    scores, notes = explain(click, features, datacenter, settings)
    score = scores.score
    verdict: VerdictClass
    if hits:
        verdict = "fraud"
        fraud_types = [hit.rule for hit in hits]
        reasons = [{"rule": hit.rule, "detail": hit.detail} for hit in hits]
    elif score > settings.score_clean_above:
        verdict, fraud_types, reasons = "clean", [], []
    elif score > settings.score_suspicious_above:
        verdict, fraud_types = "suspicious", []
        detail = (
            f"score {_fmt(score)} not above {_fmt(settings.score_clean_above)}: "
            + describe_layers(scores, notes)
        )
        reasons = [{"rule": SCORE_REASON, "detail": detail}]
    else:
        verdict, fraud_types = "fraud", [SOFT_FRAUD_TYPE]
        detail = (
            f"score {_fmt(score)} not above {_fmt(settings.score_suspicious_above)}: "
            + describe_layers(scores, notes)
        )
        reasons = [{"rule": SOFT_FRAUD_TYPE, "detail": detail}]
    datacenter = any(note.endswith(DATACENTER_NOTE) for note in notes.get("ip", ()))
    return Verdict(
        click_id=click.click_id,
        device_id=click.device_id,
        ip=click.ip,
        ts=click.ts,
        campaign_id=click.campaign_id,
        publisher_id=click.publisher_id,
        verdict=verdict,
        fraud_types=fraud_types,
        score=score,
        reasons=reasons,
        detected_at=now,
        layers={"ip": scores.ip, "fingerprint": scores.fingerprint, "behaviour": scores.behaviour,
                "network": scores.network},
        rules_version=rules_version,
        ivt=ivt_class(verdict, fraud_types, datacenter),
    )
