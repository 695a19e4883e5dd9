"""fraudapp.tooling.score_curves (ROC AUC, average precision) and the score curve plots."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.tooling.score_curves import Sample, average_precision, pr_points, roc_auc, roc_points, sweep

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("samples", "auc"),
    [
        ([(90.0, True), (80.0, True), (10.0, False), (0.0, False)], 1.0),  # perfect separation
        ([(90.0, False), (80.0, False), (10.0, True), (0.0, True)], 0.0),  # reversed
        ([(50.0, True), (50.0, False), (50.0, True), (50.0, False)], 0.5),  # all ties
        ([(90.0, True), (50.0, True), (50.0, False), (10.0, False)], 0.875),  # one tie pair: (3 + 0.5) / 4
        ([(90.0, True), (10.0, True)], None),  # no negatives
        ([(90.0, False)], None),  # no positives
        ([], None),
    ],
    ids=["perfect", "reversed", "all ties", "one tie", "no negatives", "no positives", "empty"],
)
def test_roc_auc(samples: list[Sample], auc: float | None) -> None:
    assert roc_auc(samples) == (pytest.approx(auc) if auc is not None else None)


@pytest.mark.parametrize(
    ("samples", "ap"),
    [
        # thresholds 0.9 / 0.8 / 0.7 / 0.6: (R, P) = (1/2, 1), (1/2, 1/2), (1, 2/3), (1, 1/2)
        # AP = 1/2 · 1 + 0 + 1/2 · 2/3 + 0
        ([(0.9, True), (0.8, False), (0.7, True), (0.6, False)], 0.5 + 1 / 3),
        # the tie enters at once: (R, P) = (1/2, 1/2), then (1, 2/3)
        ([(0.9, True), (0.9, False), (0.1, True)], 0.25 + 1 / 3),
        ([(0.9, True), (0.8, True), (0.1, False)], 1.0),
        ([(0.9, False), (0.1, True)], 0.5),
        ([(0.9, False)], None),
    ],
    ids=["hand-computed", "tie", "perfect", "reversed", "no positives"],
)
def test_average_precision(samples: list[Sample], ap: float | None) -> None:
    assert average_precision(samples) == (pytest.approx(ap) if ap is not None else None)


def test_curves_end_where_everything_is_called_fraud() -> None:
    steps = sweep([(3.0, True), (2.0, False), (2.0, True), (1.0, False)])
    assert [s.threshold for s in steps] == [3.0, 2.0, 1.0]  # one step per distinct score
    assert roc_points(steps) == [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
    assert pr_points(steps) == [(0.0, 1.0), (0.5, 1.0), (1.0, 2 / 3), (1.0, 0.5)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6).map(float), st.booleans()), max_size=25))
def test_auc_is_the_pairwise_probability(samples: list[Sample]) -> None:
    positives = [s for s, p in samples if p]
    negatives = [s for s, p in samples if not p]
    if not positives or not negatives:
        assert roc_auc(samples) is None
        return
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    assert roc_auc(samples) == pytest.approx(wins / (len(positives) * len(negatives)))


@pytest.mark.parametrize("samples", [[(95.0, True), (60.0, False), (60.0, True), (5.0, False)], []],
                         ids=["some", "none"])
def test_draw_score_curves_writes_both_pngs(tmp_path: Path, samples: list[Sample]) -> None:
    pytest.importorskip("matplotlib")
    from fraudapp.tooling.simulation.plots import draw_score_curves

    paths = draw_score_curves(samples, str(tmp_path / "plots"))
    assert [p.name for p in paths] == ["score_roc.png", "score_pr.png"]
    for p in paths:
        assert p.read_bytes().startswith(b"\x89PNG")
