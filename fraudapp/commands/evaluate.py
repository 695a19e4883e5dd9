"""`fraudapp evaluate`: join the simulator's truth with verdicts and dead letters; accuracy
(of the click rules, or with `--stream transactions` of the transaction rules)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import orjson

from fraudapp.kafkaconn import KafkaTarget, KafkaUnreachable, explain_connection_errors
from fraudapp.settings import Settings
from fraudapp.tooling.simulation.kafkaio import SimTopics


def load_outputs(truth: list[dict[str, Any]], kafka: KafkaTarget, topics: SimTopics, timeout: float,
                 quiet: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from fraudapp.tooling.evaluation import position
    from fraudapp.tooling.simulation.display import LiveProgress
    from fraudapp.tooling.simulation.kafkaio import collect_outputs

    wanted = {p for t in truth if (p := position(t)) is not None}
    # Outputs can't predate their inputs: start a little before the first send.
    since = min((t["produced_at"] for t in truth if t.get("produced_at")), default=0.0) - 5.0

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with LiveProgress("answered", enabled=not quiet) as live:
            return await collect_outputs(kafka, topics, wanted, since, timeout, progress=live.update)

    return asyncio.run(run())


def dump_verdicts(path: str, truth: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> None:
    """The verdicts as JSON lines, each with `line`: the truth's `i` of the input it
    answers, i.e. its 0-based line in `simulate --out` (what `replay --compare` pairs on),
    and `either` where the truth has order-dependent fraud types for it."""
    from fraudapp.tooling.evaluation import position

    by_position = {p: t for t in truth if (p := position(t)) is not None and isinstance(t.get("i"), int)}
    with open(path, "wb") as fh:
        for v in verdicts:
            src = v.get("source")
            t = by_position.get((src[0], int(src[1]), int(src[2]))) if isinstance(src, list) and len(src) == 3 else None
            if t is not None:
                # `either`: the fraud types this input may or may not get (CONTRACT §4 order)
                v = {**v, "line": t["i"], **({"either": t["either"]} if t.get("either") else {})}
            fh.write(orjson.dumps(v) + b"\n")


def print_report(report: dict[str, Any]) -> None:
    from fraudapp.tooling.evaluation import render

    print_rich(render(report))


def print_rich(items: list[Any]) -> None:
    from rich.console import Console

    console = Console()
    for item in items:
        console.print(item)


@click.command()
@click.option("--truth", "truth_path", default="truth.jsonl", show_default=True, type=click.Path(exists=True,
              dir_okay=False), help="Truth file written by `fraudapp simulate`.")
@click.option("--broker", default=None, help="Kafka bootstrap (default: FRAUDAPP_BROKER).")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Stop reading after this many seconds even if inputs are unanswered.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--plots", "plots_dir", default=None, type=click.Path(file_okay=False),
              help="Draw PNG charts there, the soft score's ROC and PR curves among them (needs the `plots` "
              "extra: matplotlib).")
@click.option("--dump-verdicts", "dump_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's verdicts as JSON lines, each with `line`: its input's 0-based line in "
              "`simulate --out` (input for `fraudapp replay --compare`).")
@click.option("--strict", is_flag=True, help="Exit 1 unless hard rules are exact and every input is accounted for.")
@click.option("--stream", type=click.Choice(("clicks", "transactions")), default="clicks", show_default=True,
              help="Which simulation the truth file is of (`simulate --stream`): read verdicts and dead letters "
              "of the clicks or of the transactions topics.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(truth_path: str, broker: str | None, timeout: float, json_path: str | None, plots_dir: str | None,
            dump_path: str | None, strict: bool, stream: str, quiet: bool) -> None:
    """Accuracy of the detector on simulated traffic: per fraud type precision / recall /
    F1, verdict confusion, accounted share, decision latency; for clicks also each
    population's shares judged fraud / suspicious / clean (humans and frauds marked; in
    --json under `populations`) and the soft score against population labels: ROC AUC,
    average precision, and precision / recall of each non-hard fraud type (under `score`);
    for transactions also the order-dependent labels apart and the dead-letter accounting."""
    from fraudapp.tooling.evaluation import evaluate, index_outputs
    from fraudapp.tooling.simulation.runner import read_jsonl

    settings = Settings.from_env(**({"broker": broker} if broker else {}))
    truth = read_jsonl(truth_path)
    if not any(t.get("offset") is not None for t in truth):
        raise click.UsageError(f"{truth_path} has no produced positions (a --dry-run truth?)")
    of_transactions = any("tx_id" in t for t in truth)
    if of_transactions != (stream == "transactions"):
        other = "transactions" if of_transactions else "clicks"
        raise click.UsageError(f"{truth_path} is the truth of --stream {other}: evaluate it with --stream {other}")
    if stream == "transactions" and plots_dir:
        raise click.UsageError("--plots draws the click report only")
    if stream == "transactions":
        from fraudapp.tooling.simulation.transactions.runner import transaction_topics

        topics = transaction_topics(settings)
    else:
        topics = SimTopics.from_settings(settings)
    kafka = settings.kafka_client_options()
    try:
        with explain_connection_errors(kafka):
            verdicts, dead = load_outputs(truth, kafka, topics, timeout, quiet)
    except KafkaUnreachable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if stream == "transactions":
        from fraudapp.tooling.simulation.transactions.evaluation import evaluate_transactions, render_transactions

        report = evaluate_transactions(truth, index_outputs(verdicts, dead))
        print_rich(render_transactions(report))
    else:
        report = evaluate(truth, index_outputs(verdicts, dead))
        print_report(report)
    if json_path:
        with open(json_path, "wb") as fh:
            fh.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if dump_path:
        dump_verdicts(dump_path, truth, verdicts)
    if plots_dir:
        from fraudapp.tooling.simulation.plots import draw

        for path in draw(report, truth, verdicts, plots_dir):
            click.echo(f"plot: {path}")
    if strict and not (report["hard_exact"] and report["accounted_share"] == 1.0):
        sys.exit(1)
