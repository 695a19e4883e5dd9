"""fraudapp.tooling.evaluation on hand-made truth and verdict sets."""

from __future__ import annotations

import pytest

from fraudapp.tooling.evaluation import evaluate, index_outputs, percentile, prf

pytestmark = pytest.mark.unit

T = "clicks"


def truth(i: int, hard: list[str], *, expected: str | None = None, bot: bool = False, error: str | None = None,
          produced_at: float = 100.0, population: str = "humans") -> dict:
    if expected is None:
        expected = "rejected" if error else ("fraud" if hard or bot else "clean")
    return {"i": i, "click_id": f"c{i}", "population": population, "bot": bot, "expected": expected, "hard": hard,
            "error": error, "topic": T, "partition": 0, "offset": i, "produced_at": produced_at}


def verdict(i: int, types: list[str], *, cls: str | None = None, detected_at: float = 100.1,
            score: float = 90.0) -> dict:
    cls = cls or ("fraud" if types else "clean")
    return {"click_id": f"c{i}", "verdict": cls, "fraud_types": types, "score": score, "detected_at": detected_at,
            "source": [T, 0, i]}


def dead(i: int, error: str) -> dict:
    return {"error": error, "topic": T, "partition": 0, "offset": i}


def run(truths: list[dict], verdicts: list[dict], dlq: list[dict] = ()) -> dict:
    return evaluate(truths, index_outputs(verdicts, list(dlq)))


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "precision", "recall", "f1"),
    [
        (10, 0, 0, 1.0, 1.0, 1.0),
        (5, 5, 0, 0.5, 1.0, 2 / 3),
        (0, 3, 2, 0.0, 0.0, 0.0),
        (0, 0, 0, None, None, None),
        (0, 0, 4, None, 0.0, None),
    ],
)
def test_prf(tp: int, fp: int, fn: int, precision, recall, f1) -> None:
    m = prf(tp, fp, fn)
    assert m["precision"] == (pytest.approx(precision) if precision is not None else None)
    assert m["recall"] == (pytest.approx(recall) if recall is not None else None)
    assert m["f1"] == (pytest.approx(f1) if f1 is not None else None)
    assert m["support"] == tp + fn


CASES = [
    # (name, truths, verdicts, dead letters, type -> (precision, recall, support), accounted, hard_exact)
    (
        "all right",
        [truth(0, ["click_spam"]), truth(1, []), truth(2, ["click_spam", "duplicate_click"])],
        [verdict(0, ["click_spam"]), verdict(1, []), verdict(2, ["click_spam", "duplicate_click"])],
        [],
        {"click_spam": (1.0, 1.0, 2), "duplicate_click": (1.0, 1.0, 1), "ip_blacklist": (None, None, 0)},
        1.0,
        True,
    ),
    (
        "one false positive, one missed",
        [truth(0, ["click_spam"]), truth(1, []), truth(2, ["click_spam"])],
        [verdict(0, ["click_spam"]), verdict(1, ["click_spam"]), verdict(2, [])],
        [],
        {"click_spam": (0.5, 0.5, 2)},
        1.0,
        False,
    ),
    (
        "missing verdict counts as predicting nothing, and as unaccounted",
        [truth(0, ["ip_blacklist"]), truth(1, ["ip_blacklist"])],
        [verdict(0, ["ip_blacklist"])],
        [],
        {"ip_blacklist": (1.0, 0.5, 2)},
        0.5,
        False,
    ),
    (
        "dead letters: accounted, excluded from per-type",
        [truth(0, [], error="not_json"), truth(1, ["bot_user_agent"])],
        [verdict(1, ["bot_user_agent"])],
        [dead(0, "not_json")],
        {"bot_user_agent": (1.0, 1.0, 1)},
        1.0,
        True,
    ),
    (
        "two answers to one input are not accounted",
        [truth(0, [])],
        [verdict(0, []), verdict(0, [])],
        [],
        {},
        0.0,
        True,
    ),
    (
        "soft: a bot without hard hits should be low_human_score",
        [truth(0, [], bot=True), truth(1, [], bot=True), truth(2, [])],
        [verdict(0, ["low_human_score"]), verdict(1, [], cls="suspicious"), verdict(2, [])],
        [],
        {"low_human_score": (1.0, 0.5, 2)},
        1.0,
        True,
    ),
]


@pytest.mark.parametrize(("name", "truths", "verdicts", "dlq", "per_type", "accounted", "exact"), CASES,
                         ids=[c[0] for c in CASES])
def test_evaluate_cases(name, truths, verdicts, dlq, per_type, accounted, exact) -> None:
    report = run(truths, verdicts, dlq)
    for ft, (precision, recall, support) in per_type.items():
        m = report["per_type"][ft]
        assert (m["precision"], m["recall"], m["support"]) == (precision, recall, support), ft
    assert report["accounted_share"] == accounted
    assert report["hard_exact"] is exact


def test_confusion_matrix() -> None:
    truths = [truth(0, []), truth(1, ["click_spam"]), truth(2, [], error="empty"), truth(3, []), truth(4, [])]
    verdicts = [verdict(0, []), verdict(1, ["click_spam"]), verdict(3, [], cls="suspicious")]
    report = run(truths, verdicts, [dead(2, "oversize")])
    c = report["verdict_confusion"]
    assert c["clean"] == {"clean": 1, "suspicious": 1, "fraud": 0, "rejected": 0, "missing": 1, "multiple": 0}
    assert c["fraud"]["fraud"] == 1
    assert c["rejected"]["rejected"] == 1
    assert report["dead_letter_code_mismatches"] == 1  # oversize where empty was expected


def test_latency_is_detected_minus_produced() -> None:
    truths = [truth(i, [], produced_at=100.0) for i in range(100)]
    verdicts = [verdict(i, [], detected_at=100.0 + (i + 1) / 1000) for i in range(100)]
    lat = run(truths, verdicts)["latency_ms"]
    assert lat["p50"] == pytest.approx(50.0)
    assert lat["p99"] == pytest.approx(99.0)


def test_verdicts_join_by_position_not_click_id() -> None:
    # A replay shares the original's click_id; only its own position may answer it.
    truths = [truth(0, []), {**truth(1, ["duplicate_click"]), "click_id": "c0"}]
    verdicts = [verdict(0, []), {**verdict(1, ["duplicate_click"]), "click_id": "c0"}]
    report = run(truths, verdicts)
    assert report["per_type"]["duplicate_click"]["recall"] == 1.0
    assert report["accounted_share"] == 1.0


def test_soft_groups_humans_and_bots() -> None:
    truths = [truth(0, []), truth(1, [], bot=True, population="click_farm"), truth(2, ["click_spam"], bot=True)]
    verdicts = [verdict(0, [], score=95), verdict(1, [], score=75), verdict(2, ["click_spam"], score=10)]
    soft = run(truths, verdicts)["soft"]
    assert soft["humans"]["clean"] == 1.0 and soft["humans"]["mean_score"] == 95
    assert soft["bots"]["n"] == 1 and soft["population:click_farm"]["clean"] == 1.0  # hard hits left out


@pytest.mark.parametrize(("values", "p", "expected"), [([], 50, None), ([3.0], 99, 3.0), ([1, 2, 3, 4], 50, 2),
                                                      ([1, 2, 3, 4], 99, 4)])
def test_percentile_nearest_rank(values, p, expected) -> None:
    assert percentile(values, p) == expected


def test_per_population_shares_add_up_to_one_and_kinds_are_marked() -> None:
    truths = [
        truth(0, [], population="office_nat"), truth(1, [], population="office_nat"),
        truth(2, [], population="office_nat"), truth(3, ["click_spam"], population="office_nat"),
        truth(4, [], bot=True, population="proxy_farm"), truth(5, [], bot=True, population="proxy_farm"),
        truth(6, [], bot=True, population="proxy_farm"),
        truth(7, [], error="not_json", population="malformed"),
    ]
    verdicts = [verdict(0, []), verdict(1, []), verdict(2, [], cls="suspicious"), verdict(3, ["click_spam"]),
                verdict(4, ["low_human_score"]), verdict(5, [])]  # 6: no answer
    pops = run(truths, verdicts, [dead(7, "not_json")])["populations"]
    assert list(pops) == ["office_nat", "proxy_farm", "malformed"]  # humans, frauds, invalid input
    office, proxy, bad = pops.values()
    assert (office["kind"], proxy["kind"], bad["kind"]) == ("human", "fraud", "invalid")
    assert (office["clean"], office["suspicious"], office["fraud"], office["hard_type"]) == (0.5, 0.25, 0.25, 0.25)
    assert (proxy["judged"], proxy["fraud"], proxy["clean"], proxy["not_judged"]["missing"]) == (2, 0.5, 0.5, 1)
    assert bad["judged"] == 0 and bad["clean"] is None and bad["not_judged"]["rejected"] == 1
    for p in (office, proxy):
        assert p["fraud"] + p["suspicious"] + p["clean"] == pytest.approx(1.0)


def test_render_shows_the_population_table() -> None:
    from rich.console import Console

    from fraudapp.tooling.evaluation import render

    report = run([truth(0, [], population="vpn_exit"), truth(1, [], bot=True, population="slow_bot")],
                 [verdict(0, [], cls="suspicious", score=60), verdict(1, [])])
    console = Console(record=True, width=200)
    for item in render(report):
        console.print(item)
    text = console.export_text()
    assert "Per population" in text and "vpn_exit" in text and "slow_bot" in text


def score_case() -> dict:
    truths = [
        truth(0, [], population="humans"), truth(1, [], population="office_nat"),
        truth(7, ["click_spam"], population="humans"),
        truth(2, [], bot=True, population="proxy_farm"), truth(3, [], bot=True, population="emulator_farm"),
        truth(4, [], bot=True, population="proxy_farm"), truth(5, [], bot=True, population="emulator_farm"),
        truth(6, [], error="not_json", population="malformed"),
    ]
    verdicts = [
        verdict(0, [], score=95), verdict(1, ["low_human_score"], score=10), verdict(7, ["click_spam"], score=20),
        verdict(2, ["low_human_score"], score=5), verdict(3, ["device_farm"], score=40),
        verdict(4, ["click_spam", "proxy_rotation"], score=30),  # 5: unanswered, a missed fraud click
    ]
    return run(truths, verdicts, [dead(6, "not_json")])


@pytest.mark.parametrize(
    ("fraud_type", "precision", "recall", "tp", "fp"),
    [
        ("low_human_score", 0.5, 0.25, 1, 1),  # one office worker flagged
        ("device_farm", 1.0, 0.25, 1, 0),
        ("proxy_rotation", 1.0, 0.25, 1, 0),  # any soft type a verdict names is scored
    ],
)
def test_score_section_per_soft_type_against_population_labels(fraud_type, precision, recall, tp, fp) -> None:
    m = score_case()["score"]["per_type"][fraud_type]
    assert (m["precision"], m["recall"], m["tp"], m["fp"]) == (precision, recall, tp, fp)


def test_score_section_auc_and_average_precision() -> None:
    s = score_case()["score"]
    assert list(s["per_type"]) == ["low_human_score", "device_farm", "proxy_rotation"]  # hard types left out
    assert (s["fraud_clicks"], s["human_clicks"], s["scored_positives"], s["scored_negatives"]) == (4, 3, 3, 3)
    # fraud scores 95, 70, 60 vs 90, 80, 5: 3 + 1 + 1 of 9 pairs
    assert s["roc_auc"] == pytest.approx(5 / 9)
    # by threshold 95 T, 90 F, 80 F, 70 T, 60 T, 5 F: 1/3 · (1 + 2/4 + 3/5)
    assert s["average_precision"] == pytest.approx(0.7)
    assert "not exact rule truth" in s["labels"]


def test_score_section_lists_the_soft_types_even_at_zero() -> None:
    s = run([truth(0, []), truth(1, [], bot=True, population="slow_bot")], [verdict(0, []), verdict(1, [])])["score"]
    assert s["per_type"]["device_farm"] == {"precision": None, "recall": 0.0, "tp": 0, "fp": 0}
    assert s["per_type"]["low_human_score"]["recall"] == 0.0
    assert s["roc_auc"] == 0.5  # both score 90


def test_render_shows_the_score_section() -> None:
    import orjson
    from rich.console import Console

    from fraudapp.tooling.evaluation import render

    report = orjson.loads(orjson.dumps(score_case()))  # and it is JSON
    console = Console(record=True, width=200)
    for item in render(report):
        console.print(item)
    text = console.export_text()
    assert "not exact rule truth" in text and "device_farm" in text and "ROC AUC 0.5556" in text
