"""The transaction truth joined with transaction verdicts and dead letters: accuracy. Pure.

Joined by Kafka position like the click report (fraudapp/tooling/evaluation.py, whose
join and metric helpers it uses): a verdict names its input in `source`, a dead letter
in `topic`/`partition`/`offset`.

* per fraud type: precision / recall / F1 / support. Every transaction rule is exact, so
  each is scored against the truth's `hard` labels; a type the truth lists under `either`
  for an input (tainted_funds through a receipt produced too close before it) is not
  scored there, and `either_order` counts how often it fired and how often not.
* verdict_confusion: expected class (clean / fraud / clean_or_fraud: `either` only /
  rejected) -> actual (clean / fraud / rejected / missing / multiple).
* dead_letters: every malformed input dead-lettered exactly once with its code; nothing
  valid dead-lettered, nothing lost, nothing doubled.
* accounted_share: inputs with exactly one answer / inputs; latency as the click report.
* processing_order: the largest number of records by which the worker judged an input
  ahead of one produced before it (verdicts' detected_at; re-keyed inputs left out, their
  hop delays them by design). The truth counted on that staying under its taint gap
  (truth.py); the report says when it did not. It measures one worker's order; with
  several, the taint also waits for the global table's changelog, which it does not see.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from fraudapp.tooling.evaluation import (
    EXAMPLES,
    Outcome,
    Position,
    TypeScores,
    actual_class,
    confusion_table,
    number,
    percentile,
    position,
)
from fraudapp.tooling.simulation.transactions.truth import TX_TYPES

EXPECTED = ("clean", "fraud", "clean_or_fraud", "rejected")
ACTUAL = ("clean", "fraud", "rejected", "missing", "multiple")


def evaluate_transactions(truth: list[dict[str, Any]], outputs: dict[Position, list[Outcome]]) -> dict[str, Any]:
    by_type = TypeScores(TX_TYPES)
    confusion = {e: dict.fromkeys(ACTUAL, 0) for e in EXPECTED}
    populations: dict[str, Counter[str]] = defaultdict(Counter)
    dead = Counter({"malformed": 0, "dead_lettered": 0, "code_mismatches": 0, "judged_instead": 0, "missing": 0,
                    "multiple": 0, "valid_dead_lettered": 0})
    by_code: Counter[str] = Counter()
    latencies: list[float] = []
    accounted = 0
    for t in truth:
        pos = position(t)
        found = outputs.get(pos, []) if pos else []
        actual = actual_class(found)
        confusion[t["expected"]][actual] += 1
        populations[t["population"]][actual] += 1
        accounted += len(found) == 1
        if t["expected"] == "rejected":
            dead["malformed"] += 1
            if actual == "rejected":
                dead["dead_lettered"] += 1
                by_code[str(found[0].body.get("error"))] += 1
                dead["code_mismatches"] += found[0].body.get("error") != t.get("error")
            elif actual in ("missing", "multiple"):
                dead[actual] += 1
            else:
                dead["judged_instead"] += 1
            continue
        if actual == "rejected":
            dead["valid_dead_lettered"] += 1
        verdict = found[0].body if actual in ("clean", "fraud") else None
        if verdict is not None and t.get("produced_at") is not None and verdict.get("detected_at") is not None:
            latencies.append((verdict["detected_at"] - t["produced_at"]) * 1000)
        predicted = set(verdict.get("fraud_types") or []) if verdict else set()
        by_type.add(predicted, set(t["hard"]), set(t.get("either") or ()),
                    {"i": t["i"], "tx_id": t["tx_id"], "population": t["population"], "role": t.get("role"),
                     "expected": t["hard"], "actual": sorted(predicted) if verdict else actual})
    per_type = by_type.per_type()
    exact = all(m["precision"] in (None, 1.0) and m["recall"] in (None, 1.0) for m in per_type.values())
    return {
        "stream": "transactions",
        "inputs": len(truth),
        "per_type": per_type,
        "exact": exact,
        "hard_exact": exact,  # the click report's name, for scripts reading either
        "either_order": by_type.either_order(),
        "verdict_confusion": confusion,
        "accounted_share": accounted / len(truth) if truth else None,
        "dead_letters": {**dead, "by_code": dict(sorted(by_code.items()))},
        "dead_letter_code_mismatches": dead["code_mismatches"],
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "n": len(latencies)},
        "processing_order": processing_order(truth, outputs),
        "populations": {p: {"n": sum(c.values()), **{a: c[a] for a in ACTUAL if c[a]}}
                        for p, c in sorted(populations.items())},
        "mismatches": by_type.mismatches(),
    }


def largest_inversion(when: dict[int, float]) -> int:
    """The largest j - i over inputs i < j (production order) with j judged before i:
    `when` maps an input's index to its verdict's detected_at."""
    worst, newest = 0, -1
    for index in sorted(when, key=lambda k: (when[k], k)):
        if index < newest:  # `newest`, produced after it, was judged before it
            worst = max(worst, newest - index)
        newest = max(newest, index)
    return worst


def processing_order(truth: list[dict[str, Any]], outputs: dict[Position, list[Outcome]]) -> dict[str, Any]:
    when: dict[int, float] = {}
    for t in truth:
        pos = position(t)
        found = outputs.get(pos, []) if pos else []
        if len(found) == 1 and found[0].kind == "verdict" and not t.get("rekeyed"):
            detected = found[0].body.get("detected_at")
            if isinstance(detected, (int, float)):
                when[t["i"]] = float(detected)
    gaps = {t["taint_gap"] for t in truth if t.get("taint_gap") is not None}
    gap = min(gaps) if gaps else None
    inversion = largest_inversion(when)
    return {"largest_inversion": inversion, "taint_gap": gap, "within_gap": gap is None or inversion < gap}


def render_transactions(report: dict[str, Any]) -> list[Any]:
    """rich renderables: per-type table, confusion matrix, populations, dead letters, summary."""
    from rich.table import Table
    from rich.text import Text

    per_type = Table(title="Per transaction fraud type (exact labels; order-dependent ones apart)")
    for col in ("fraud type", "precision", "recall", "F1", "support", "FP", "FN", "either: fired", "either: not"):
        per_type.add_column(col, justify="left" if col == "fraud type" else "right")
    for ft, m in report["per_type"].items():
        either = report["either_order"].get(ft, {})
        per_type.add_row(ft, number(m["precision"]), number(m["recall"]), number(m["f1"]), str(m["support"]), str(m["fp"]),
                         str(m["fn"]), str(either.get("fired", "")), str(either.get("not fired", "")))
    confusion = confusion_table(report["verdict_confusion"], ACTUAL)
    populations = Table(title="Populations: answers")
    populations.add_column("population")
    for cls in ("transfers", *ACTUAL):
        populations.add_column(cls, justify="right")
    for name, row in report["populations"].items():
        populations.add_row(name, str(row["n"]), *(str(row.get(c, 0)) for c in ACTUAL))
    d = report["dead_letters"]
    codes = ", ".join(f"{code} {n}" for code, n in d["by_code"].items()) or "none"
    dead = Text(
        f"dead letters: {d['dead_lettered']} of {d['malformed']} malformed inputs ({codes}); "
        f"wrong code {d['code_mismatches']}, judged instead {d['judged_instead']}, missing {d['missing']}, "
        f"doubled {d['multiple']}; valid inputs dead-lettered {d['valid_dead_lettered']}",
        style=None if d["dead_lettered"] == d["malformed"] and not d["code_mismatches"] and not d["valid_dead_lettered"]
        else "red",
    )
    lat = report["latency_ms"]
    summary = Text(
        f"transfers {report['inputs']}   accounted {number(report['accounted_share'])}   "
        f"decision latency p50 {number(lat['p50'], 1)} ms  p99 {number(lat['p99'], 1)} ms   "
        f"rules exact: {'yes' if report['exact'] else 'NO'}"
    )
    order = report["processing_order"]
    lag = Text(
        f"processing order: judged up to {order['largest_inversion']} records ahead of earlier-produced transfers "
        f"(the truth's --taint-gap: {order['taint_gap']})"
        + ("" if order["within_gap"] else ": NOT within it, so a tainted_funds the truth calls certain may have "
           "depended on order; simulate again with a larger --taint-gap"),
        style=None if order["within_gap"] else "red",
    )
    out: list[Any] = [per_type, confusion, populations, dead, lag, summary]
    for ft, ex in report["mismatches"].items():
        out.append(Text(f"{ft} mismatches (first {EXAMPLES}): {ex}", style="red"))
    return out
