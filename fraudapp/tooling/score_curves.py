"""ROC and precision-recall of the soft score against population labels. Pure.

A sample is (fraud score, positive). The evaluation builds samples as `100 - score` (the
verdict's score is higher for more human clicks) with positive = a click of a fraud
population and negative = a click of a human one. Population labels are an intent, not an
exact rule truth: a human click the hard rules rightly flag still counts as a negative.

The curves sweep thresholds from the highest fraud score down, one step per distinct
score: clicks with equal scores cannot be told apart by any threshold, so they enter
together. That makes the AUC the Mann-Whitney probability P(pos > neg) + P(tie) / 2, and
the average precision the step-wise sum of (ΔR · P) that scikit-learn computes, without
depending on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby, pairwise

Sample = tuple[float, bool]


@dataclass(frozen=True, slots=True)
class Step:
    """Counts when every sample with fraud score >= `threshold` is called fraud."""

    threshold: float
    tp: int
    fp: int


def sweep(samples: Iterable[Sample]) -> list[Step]:
    """One Step per distinct fraud score, highest first; the last one calls everything fraud."""
    ordered = sorted(samples, key=lambda s: s[0], reverse=True)
    steps: list[Step] = []
    tp = fp = 0
    for threshold, group in groupby(ordered, key=lambda s: s[0]):
        for _, positive in group:
            tp += positive
            fp += not positive
        steps.append(Step(threshold, tp, fp))
    return steps


def totals(steps: Sequence[Step]) -> tuple[int, int]:
    """(positives, negatives) of a sweep."""
    return (steps[-1].tp, steps[-1].fp) if steps else (0, 0)


def roc_points(steps: Sequence[Step]) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) from (0, 0) to (1, 1); [] when a class is absent."""
    pos, neg = totals(steps)
    if not pos or not neg:
        return []
    return [(0.0, 0.0), *((s.fp / neg, s.tp / pos) for s in steps)]


def roc_auc(samples: Iterable[Sample]) -> float | None:
    """Area under the ROC curve (trapezoids: a tie group counts half); None without both classes."""
    points = roc_points(sweep(samples))
    if not points:
        return None
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))


def pr_points(steps: Sequence[Step]) -> list[tuple[float, float]]:
    """(recall, precision) per threshold, after a (0, 1) start; [] without positives."""
    pos, _ = totals(steps)
    if not pos:
        return []
    return [(0.0, 1.0), *((s.tp / pos, s.tp / (s.tp + s.fp)) for s in steps)]


def average_precision(samples: Iterable[Sample]) -> float | None:
    """Σ (R_k - R_(k-1)) · P_k over the thresholds, no interpolation; None without positives."""
    points = pr_points(sweep(samples))
    if not points:
        return None
    return sum((r1 - r0) * p1 for (r0, _), (r1, p1) in pairwise(points))
