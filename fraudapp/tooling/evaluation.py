"""Joins the simulator's truth with the detector's outputs and computes accuracy. Pure.

Join key: an input's Kafka position. The simulator records (topic, partition, offset) of
every input it produced; a verdict names its input in `source` = [topic, partition, offset]
and a dead letter in `topic`/`partition`/`offset` (CONTRACT §3, §6). Click ids are not
unique enough (a replayed click shares its id with the original).

Metrics:
* per fraud type: precision / recall / F1 / support over inputs that should get a verdict;
  an input with no verdict counts as predicting nothing. Hard types are exact labels
  (truth.py); `low_human_score` is scored against "a bot population with no hard hit",
  an intent, not an exact label. A type the truth lists under `either` (it fires in some
  of the orders the contract allows only: clicks of other devices) is not scored for that
  input; `either_order` counts how often such a type fired and how often not.
* verdict_confusion: expected class (clean / fraud / rejected) -> actual class (clean /
  suspicious / fraud / rejected / missing / multiple).
* accounted_share: inputs with exactly one output (verdict or dead letter) / inputs.
* latency_ms: detected_at - produced_at of each verdict, p50 / p99 (nearest rank).
* populations: for every population of the truth, what the detector made of its inputs:
  the shares judged fraud / suspicious / clean (of its judged inputs, i.e. those with
  exactly one verdict: the three add up to 1), the share with a hard fraud type (`hard_type`), the mean
  score, and the inputs not judged (rejected / missing / multiple). Each is marked `human`
  (people, expected clean), `fraud` (bots and fraud patterns: the truth's `bot`) or
  `invalid` (malformed inputs, expected rejected).
* soft: the same verdict classes, for inputs with no hard hit only (how the soft score
  alone treats humans and bots).
* score: ROC AUC and average precision of `100 - score`, and precision / recall of each
  non-hard fraud type, against population labels (fraud populations positive, humans
  negative; not exact rule truth): score_report.py.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fraudapp.models import HARD_FRAUD_TYPES, SOFT_FRAUD_TYPE
from fraudapp.tooling.score_report import ScoreLabels, render_score

Position = tuple[str, int, int]
ACTUAL_CLASSES = ("clean", "suspicious", "fraud", "rejected", "missing", "multiple")
EXPECTED_CLASSES = ("clean", "fraud", "rejected")
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # "verdict" or "dead_letter"
    body: dict[str, Any]


def index_outputs(verdicts: Iterable[dict[str, Any]], dead_letters: Iterable[dict[str, Any]]) -> dict[Position, list[Outcome]]:
    """Outputs by the input position they answer."""
    out: dict[Position, list[Outcome]] = defaultdict(list)
    for v in verdicts:
        source = v.get("source")
        if isinstance(source, list) and len(source) == 3:
            out[(source[0], int(source[1]), int(source[2]))].append(Outcome("verdict", v))
    for d in dead_letters:
        if d.get("topic") is not None and d.get("partition") is not None and d.get("offset") is not None:
            out[(d["topic"], int(d["partition"]), int(d["offset"]))].append(Outcome("dead_letter", d))
    return out


def position(record: dict[str, Any]) -> Position | None:
    if record.get("offset") is None:
        return None
    return (record["topic"], int(record["partition"]), int(record["offset"]))


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if tp + fp and tp + fn else None)
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}


def actual_class(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "missing"
    if len(outcomes) > 1:
        return "multiple"
    o = outcomes[0]
    return "rejected" if o.kind == "dead_letter" else str(o.body.get("verdict"))


class TypeScores:
    """Per fraud type scores, fed one judged input at a time (the click and the transaction
    reports alike): tp / fp / fn, the first EXAMPLES mismatches of each kind, and how often
    each type the truth leaves to the order (`either`) fired."""

    def __init__(self, types: tuple[str, ...]) -> None:
        self.types = types
        self.counts: dict[str, Counter[str]] = {t: Counter() for t in types}
        self.examples: dict[str, dict[str, list[dict[str, Any]]]] = {t: {"fp": [], "fn": []} for t in types}
        self.either: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, predicted: set[str], expected: set[str], either: set[str], example: dict[str, Any]) -> None:
        """An input the verdict gave `predicted` and the truth `expected`; the types in
        `either` are not scored (either answer is right), only counted. `example` stands for
        the input among the mismatches."""
        for ft in either:
            self.either[ft]["fired" if ft in predicted else "not fired"] += 1
        for ft in self.types:
            if ft in either:
                continue
            key = ("tp" if ft in expected else "fp") if ft in predicted else ("fn" if ft in expected else None)
            if key is None:
                continue
            self.counts[ft][key] += 1
            if key != "tp" and len(self.examples[ft][key]) < EXAMPLES:
                self.examples[ft][key].append(dict(example))

    def per_type(self) -> dict[str, dict[str, Any]]:
        return {ft: prf(c["tp"], c["fp"], c["fn"]) for ft, c in self.counts.items()}

    def either_order(self) -> dict[str, dict[str, int]]:
        return {ft: {"fired": c["fired"], "not fired": c["not fired"]} for ft, c in sorted(self.either.items())}

    def mismatches(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return {ft: ex for ft, ex in self.examples.items() if ex["fp"] or ex["fn"]}


JUDGED_CLASSES = ("fraud", "suspicious", "clean")
POPULATION_KINDS = ("human", "fraud", "invalid")


def population_kind(t: dict[str, Any]) -> str:
    """`human`, `fraud` or `invalid`: what a truth record's population is."""
    if t["expected"] == "rejected":
        return "invalid"
    return "fraud" if t.get("bot") else "human"


class PopulationClasses:
    """Per population: verdict classes of its inputs, fed one input at a time."""

    def __init__(self) -> None:
        self.kinds: dict[str, Counter[str]] = defaultdict(Counter)
        self.classes: dict[str, Counter[str]] = defaultdict(Counter)
        self.hard: Counter[str] = Counter()
        self.scores: dict[str, list[float]] = defaultdict(list)

    def add(self, t: dict[str, Any], actual: str, verdict: dict[str, Any] | None) -> None:
        pop = t["population"]
        self.kinds[pop][population_kind(t)] += 1
        self.classes[pop][actual] += 1
        if verdict is not None:
            self.hard[pop] += any(ft in HARD_FRAUD_TYPES for ft in verdict.get("fraud_types") or ())
            if isinstance(verdict.get("score"), (int, float)):
                self.scores[pop].append(float(verdict["score"]))

    def report(self) -> dict[str, dict[str, Any]]:
        """{population: {kind, inputs, judged, fraud, suspicious, clean, hard_type, mean_score,
        not_judged}}, humans first, then frauds, then invalid input; by name within each."""
        out = {}
        for pop in sorted(self.kinds, key=lambda p: (POPULATION_KINDS.index(self._kind(p)), p)):
            c = self.classes[pop]
            judged = sum(c[k] for k in JUDGED_CLASSES)
            scores = self.scores[pop]
            out[pop] = {
                "kind": self._kind(pop),
                "inputs": sum(c.values()),
                "judged": judged,
                **{k: c[k] / judged if judged else None for k in JUDGED_CLASSES},
                "hard_type": self.hard[pop] / judged if judged else None,
                "mean_score": sum(scores) / len(scores) if scores else None,
                "not_judged": {k: c[k] for k in ACTUAL_CLASSES if k not in JUDGED_CLASSES},
            }
        return out

    def _kind(self, pop: str) -> str:
        # A population is its inputs' kind; the most common one, should it ever be mixed.
        return self.kinds[pop].most_common(1)[0][0]


def evaluate(truth: list[dict[str, Any]], outputs: dict[Position, list[Outcome]]) -> dict[str, Any]:
    by_type = TypeScores((*HARD_FRAUD_TYPES, SOFT_FRAUD_TYPE))
    populations = PopulationClasses()
    score_labels = ScoreLabels()
    confusion = {e: dict.fromkeys(ACTUAL_CLASSES, 0) for e in EXPECTED_CLASSES}
    soft: dict[str, Counter] = defaultdict(Counter)
    scores: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    accounted = wrong_error = 0
    for t in truth:
        pos = position(t)
        found = outputs.get(pos, []) if pos else []
        actual = actual_class(found)
        confusion[t["expected"]][actual] += 1
        accounted += len(found) == 1
        verdict = found[0].body if actual in ("clean", "suspicious", "fraud") else None
        populations.add(t, actual, verdict)
        score_labels.add(population_kind(t), verdict)
        if actual == "rejected" and t.get("error") and found[0].body.get("error") != t["error"]:
            wrong_error += 1
        if verdict is not None and t.get("produced_at") is not None and verdict.get("detected_at") is not None:
            latencies.append((verdict["detected_at"] - t["produced_at"]) * 1000)
        if t["expected"] == "rejected":
            continue
        predicted = set(verdict.get("fraud_types") or []) if verdict else set()
        expected = set(t["hard"])
        if t.get("bot") and not expected:
            expected.add(SOFT_FRAUD_TYPE)
        by_type.add(predicted, expected, set(t.get("either") or ()),
                    {"i": t["i"], "click_id": t["click_id"], "population": t["population"], "expected": t["hard"],
                     "actual": sorted(predicted) if verdict else actual})
        if not t["hard"] and verdict is not None:
            group = "bots" if t.get("bot") else "humans"
            for key in (group, "population:" + t["population"]):
                soft[key][actual] += 1
                if isinstance(verdict.get("score"), (int, float)):
                    scores[key].append(float(verdict["score"]))
    per_type = by_type.per_type()
    hard_exact = all(
        per_type[ft]["precision"] in (None, 1.0) and per_type[ft]["recall"] in (None, 1.0) for ft in HARD_FRAUD_TYPES
    )
    return {
        "inputs": len(truth),
        "per_type": per_type,
        "hard_exact": hard_exact,
        "verdict_confusion": confusion,
        "accounted_share": accounted / len(truth) if truth else None,
        "either_order": by_type.either_order(),
        "dead_letter_code_mismatches": wrong_error,
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "n": len(latencies)},
        "populations": populations.report(),
        "soft": {
            k: {"n": sum(c.values()), **{cls: c[cls] / sum(c.values()) for cls in ("clean", "suspicious", "fraud")},
                "mean_score": sum(scores[k]) / len(scores[k]) if scores[k] else None}
            for k, c in sorted(soft.items())
        },
        "score": score_labels.report(),
        "mismatches": by_type.mismatches(),
    }


def number(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def confusion_table(confusion: dict[str, dict[str, int]], classes: tuple[str, ...]) -> Any:
    """rich table of `verdict_confusion`: expected classes (rows) by actual `classes`."""
    from rich.table import Table

    table = Table(title="Verdict classes: expected (rows) vs actual")
    table.add_column("expected")
    for cls in classes:
        table.add_column(cls, justify="right")
    for exp, row in confusion.items():
        table.add_row(exp, *(str(row[c]) for c in classes))
    return table


def render(report: dict[str, Any]) -> list[Any]:
    """rich renderables: per-type table, confusion matrix, population table, soft-score table,
    the score section against population labels, summary."""
    from rich.table import Table
    from rich.text import Text

    per_type = Table(title="Per fraud type (hard rules exact; low_human_score vs bot intent)")
    for col in ("fraud type", "precision", "recall", "F1", "support", "FP", "FN"):
        per_type.add_column(col, justify="left" if col == "fraud type" else "right")
    for ft, m in report["per_type"].items():
        per_type.add_row(ft, number(m["precision"]), number(m["recall"]), number(m["f1"]), str(m["support"]),
                         str(m["fp"]), str(m["fn"]))
    confusion = confusion_table(report["verdict_confusion"], ACTUAL_CLASSES)
    soft = Table(title="Soft score on clicks with no hard hit")
    for col in ("group", "clicks", "clean", "suspicious", "fraud", "mean score"):
        soft.add_column(col, justify="left" if col == "group" else "right")
    for group, s in report["soft"].items():
        soft.add_row(group, str(s["n"]), f"{s['clean']:.1%}", f"{s['suspicious']:.1%}", f"{s['fraud']:.1%}",
                     number(s["mean_score"], 1))
    lat = report["latency_ms"]
    out_populations = population_table(report["populations"]) if "populations" in report else None
    summary = Text(
        f"inputs {report['inputs']}   accounted {number(report['accounted_share'])}   "
        f"decision latency p50 {number(lat['p50'], 1)} ms  p99 {number(lat['p99'], 1)} ms   "
        f"hard rules exact: {'yes' if report['hard_exact'] else 'NO'}"
    )
    out_score = render_score(report["score"]) if "score" in report else []
    out: list[Any] = [per_type, confusion, *([out_populations] if out_populations else []), soft, *out_score, summary]
    for ft, ex in report["mismatches"].items():
        if ft in HARD_FRAUD_TYPES:
            out.append(Text(f"{ft} mismatches (first {EXAMPLES}): {ex}", style="red"))
    return out


def share(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


KIND_TITLES = {"human": "humans → clean", "fraud": "frauds → fraud/susp.", "invalid": "invalid → rejected"}


def population_table(populations: dict[str, dict[str, Any]]) -> Any:
    """rich table of `populations` (fits 80 columns): each population's verdict classes, in
    sections for humans, frauds and invalid input. `hard`: share with a hard fraud type;
    `other`: inputs with no single verdict (rejected, missing or answered twice)."""
    from rich import box
    from rich.table import Table

    table = Table(title="Per population: verdict classes of judged inputs", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("population", "n", "fraud", "susp.", "clean", "hard", "score", "other"):
        table.add_column(col, justify="left" if col == "population" else "right", no_wrap=col == "population")
    kind = None
    for pop, p in populations.items():
        if p["kind"] != kind:
            if kind is not None:
                table.add_section()
            kind = p["kind"]
            table.add_row(KIND_TITLES.get(kind, kind), style="bold")
        # red: most of a fraud population passed as clean, or most of a human one did not
        wrong = None if p["clean"] is None or kind == "invalid" else (p["clean"] if kind == "fraud" else 1 - p["clean"])
        table.add_row(pop, str(p["inputs"]), share(p["fraud"]), share(p["suspicious"]), share(p["clean"]),
                      share(p["hard_type"]), number(p["mean_score"], 1), str(p["inputs"] - p["judged"]),
                      style="red" if wrong is not None and wrong > 0.5 else None)
    return table
