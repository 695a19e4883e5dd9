"""The evaluation's `score` section: the soft score and the non-hard fraud types against
population labels.

Positive: a click of a fraud population (the truth's `bot`: not a human population, not
malformed); negative: a click of a human population; malformed inputs are left out. These
labels are an intent, not the exact rule truth the hard types are scored against: a
human's click that a hard rule rightly flags is still a negative here.

* roc_auc / average_precision of `100 - score` (the verdict's score is higher for more
  human clicks) over the answered clicks with a numeric score (score_curves.py);
* per_type: for every fraud type that is not a hard rule (low_human_score, device_farm, any
  other soft type a verdict names), precision TP / (TP + FP) over the verdicts naming it,
  and recall TP / every fraud-population click (unanswered ones count as missed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from fraudapp.models import HARD_FRAUD_TYPES, SOFT_FRAUD_TYPE
from fraudapp.tooling.score_curves import Sample, average_precision, roc_auc

# Listed even when no verdict names them, so a run where they never fire says so (0 recall)
# instead of leaving the row out; device_farm is the next soft type the detector gets.
ALWAYS_LISTED = (SOFT_FRAUD_TYPE, "device_farm")
LABELS = "population labels (fraud populations positive, human populations negative), not exact rule truth"


class ScoreLabels:
    """Fed one input at a time with its population kind and its single verdict (or None)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.inputs: Counter[str] = Counter()
        self.unscored = 0
        self.flagged: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, kind: str, verdict: dict[str, Any] | None) -> None:
        if kind not in ("human", "fraud"):
            return
        positive = kind == "fraud"
        self.inputs[kind] += 1
        if verdict is None:
            return
        score = verdict.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            self.samples.append((100.0 - float(score), positive))
        else:
            self.unscored += 1
        for ft in set(verdict.get("fraud_types") or ()) - set(HARD_FRAUD_TYPES):
            self.flagged[ft]["tp" if positive else "fp"] += 1

    def report(self) -> dict[str, Any]:
        fraud_clicks = self.inputs["fraud"]
        per_type = {}
        for ft in (*ALWAYS_LISTED, *sorted(set(self.flagged) - set(ALWAYS_LISTED))):
            tp, fp = self.flagged[ft]["tp"], self.flagged[ft]["fp"]
            per_type[ft] = {"precision": tp / (tp + fp) if tp + fp else None,
                            "recall": tp / fraud_clicks if fraud_clicks else None, "tp": tp, "fp": fp}
        return {
            "labels": LABELS,
            "fraud_clicks": fraud_clicks,
            "human_clicks": self.inputs["human"],
            "scored_positives": sum(positive for _, positive in self.samples),
            "scored_negatives": sum(not positive for _, positive in self.samples),
            "unscored": self.unscored,
            "roc_auc": roc_auc(self.samples),
            "average_precision": average_precision(self.samples),
            "per_type": per_type,
        }


def _number(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def render_score(section: dict[str, Any]) -> list[Any]:
    """rich renderables: the per-type table and the AUC / AP line."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Soft fraud types vs population labels (not exact rule truth)",
                  caption="recall: of all fraud-population clicks")
    for col in ("fraud type", "precision", "recall", "TP", "FP"):
        table.add_column(col, justify="left" if col == "fraud type" else "right")
    for ft, m in section["per_type"].items():
        table.add_row(ft, _number(m["precision"]), _number(m["recall"]), str(m["tp"]), str(m["fp"]))
    line = Text(
        "Score vs population labels (not exact rule truth), 100 - score as fraud score:\n"
        f"  ROC AUC {_number(section['roc_auc'])}   average precision {_number(section['average_precision'])}\n"
        f"  scored {section['scored_positives']} of {section['fraud_clicks']} fraud clicks (positive), "
        f"{section['scored_negatives']} of {section['human_clicks']} human (negative)"
    )
    return [table, line]
