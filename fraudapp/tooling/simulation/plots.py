"""PNG charts of an evaluation (matplotlib, the optional `plots` extra; imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraudapp.tooling.evaluation import ACTUAL_CLASSES, Outcome, index_outputs, population_kind, position
from fraudapp.tooling.score_curves import Sample, average_precision, pr_points, roc_auc, roc_points, sweep
from fraudapp.tooling.score_report import ScoreLabels


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit("plots need matplotlib: pip install 'fraudapp[plots]'") from exc
    return plt


def draw(report: dict[str, Any], truth: list[dict[str, Any]], verdicts: list[dict[str, Any]], out_dir: str) -> list[Path]:
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    types = list(report["per_type"])
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(types))
    for k, metric in enumerate(("precision", "recall", "f1")):
        ax.bar([x + (k - 1) * 0.27 for x in xs], [report["per_type"][t][metric] or 0 for t in types], 0.27,
               label=metric)
    ax.set_xticks(list(xs), types, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Per fraud type")
    ax.legend()
    paths.append(_save(fig, out / "per_type.png"))

    fig, ax = plt.subplots(figsize=(7, 3))
    rows = list(report["verdict_confusion"])
    grid = [[report["verdict_confusion"][r][c] for c in ACTUAL_CLASSES] for r in rows]
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(ACTUAL_CLASSES)), ACTUAL_CLASSES)
    ax.set_yticks(range(len(rows)), rows)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_title("Expected (rows) vs actual verdict class")
    paths.append(_save(fig, out / "confusion.png"))

    index = index_outputs(verdicts, [])
    latencies, human_scores, bot_scores = [], [], []
    labels = ScoreLabels()
    for t in truth:
        pos = position(t)
        found: list[Outcome] = index.get(pos, []) if pos else []
        if len(found) != 1:
            continue
        v = found[0].body
        labels.add(population_kind(t), v)
        if t.get("produced_at") and v.get("detected_at"):
            latencies.append((v["detected_at"] - t["produced_at"]) * 1000)
        if not t["hard"] and isinstance(v.get("score"), (int, float)):
            (bot_scores if t.get("bot") else human_scores).append(v["score"])
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(latencies, bins=60)
    ax.set_xlabel("decision latency, ms (detected_at - produced_at)")
    ax.set_ylabel("verdicts")
    paths.append(_save(fig, out / "latency.png"))

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist([human_scores, bot_scores], bins=20, range=(0, 100), label=["humans", "bots"])
    ax.set_xlabel("soft score (clicks with no hard hit)")
    ax.legend()
    paths.append(_save(fig, out / "scores.png"))
    return paths + draw_score_curves(labels.samples, out_dir)


def draw_score_curves(samples: Sequence[Sample], out_dir: str) -> list[Path]:
    """score_roc.png and score_pr.png of (fraud score = 100 - score, fraud population) samples;
    a curve with a class absent is drawn empty, so both files always exist."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = sweep(samples)
    note = "fraud populations vs humans (population labels)"

    fig, ax = plt.subplots(figsize=(5, 5))
    roc = roc_points(steps)
    ax.plot([x for x, _ in roc], [y for _, y in roc])
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")  # chance, for scale
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate (humans)", ylabel="true positive rate (frauds)")
    ax.set_title(f"ROC of 100 - score, AUC {_fmt(roc_auc(samples))}\n{note}", fontsize=9)
    paths = [_save(fig, out / "score_roc.png")]

    fig, ax = plt.subplots(figsize=(5, 5))
    pr = pr_points(steps)
    # AP sums, over each recall step, the precision reached at its end: draw those steps.
    ax.plot([r for r, _ in pr], [p for _, p in pr], drawstyle="steps-pre")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall (frauds)", ylabel="precision")
    ax.set_title(f"Precision-recall of 100 - score, AP {_fmt(average_precision(samples))}\n{note}", fontsize=9)
    paths.append(_save(fig, out / "score_pr.png"))
    return paths


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
