"""`fraudapp simulate`: labeled, realistic traffic with its truth: clicks to the clicks topic
(`--stream clicks`, the default) or crypto transfers to the transactions topic
(`--stream transactions`)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import click

from fraudapp.kafkaconn import KafkaTarget, KafkaUnreachable, explain_connection_errors
from fraudapp.settings import Settings
from fraudapp.tooling.simulation.generator import (
    DEFAULT_MIX,
    EXTENDED_SHARE,
    ISSUE19_POPULATIONS,
    SimConfig,
    Traffic,
    generate,
    parse_mix,
)
from fraudapp.tooling.simulation.kafkaio import SimTopics, SimulationError, VerdictWatcher, ensure_topics
from fraudapp.tooling.simulation.mix import MixError
from fraudapp.tooling.simulation.traffic import GeneratedTraffic
from fraudapp.tooling.simulation.transactions.generator import (
    DEFAULT_TX_MIX,
    NOMINAL_TX_RATE,
    TxConfig,
    TxTraffic,
    auto_taint_gap,
    generate_transactions,
    parse_tx_mix,
)
from fraudapp.tooling.simulation.transactions.runner import transaction_topics
from fraudapp.tooling.simulation.transactions.truth import TxRules
from fraudapp.tooling.simulation.truth import Rules

# Event-time density when sending as fast as possible (--rate 0): the traffic still spans
# count / 1000 seconds of event time, so human pacing and the windows keep their meaning.
NOMINAL_RATE = 1000.0
# --rate when not given: clicks arrive by the thousand a second, transfers far fewer.
DEFAULT_RATES = {"clicks": 1000.0, "transactions": 100.0}


def _timing(count: int | None, duration: float | None, rate: float, start_ts: float | None,
            nominal_rate: float) -> tuple[int, float, float]:
    """A run's count, event rate and start: --count, or --duration at --rate; at full speed
    (--rate 0) the stream's nominal event rate."""
    if count is None:
        if duration is None:
            raise click.UsageError("give --count or --duration")
        if rate <= 0:
            raise click.UsageError("--duration needs --rate > 0 (or use --count)")
        count = max(1, round(duration * rate))
    event_rate = rate if rate > 0 else nominal_rate
    if start_ts is None:
        # Paced: events happen now. As fast as possible: the traffic of the last span.
        start_ts = round(time.time() if rate > 0 else time.time() - count / event_rate, 3)
    return count, event_rate, start_ts


def _shares(parse: Callable[[str | None], dict[str, float]], mix: str | None) -> dict[str, float]:
    try:
        return parse(mix)
    except MixError as exc:
        raise click.BadParameter(str(exc), param_hint="--mix") from None


def build_traffic(count: int | None, duration: float | None, rate: float, seed: int, mix: str | None,
                  start_ts: float | None, run: str | None, settings: Settings) -> Traffic:
    count, event_rate, start_ts = _timing(count, duration, rate, start_ts, NOMINAL_RATE)
    cfg = SimConfig(count=count, seed=seed, mix=_shares(parse_mix, mix), start_ts=start_ts, event_rate=event_rate,
                    run=run or "", rules=Rules.from_settings(settings), max_click_bytes=settings.max_click_bytes)
    return generate(cfg)


def build_transactions(count: int | None, duration: float | None, rate: float, seed: int, mix: str | None,
                       start_ts: float | None, run: str | None, taint_gap: int | None, settings: Settings) -> TxTraffic:
    count, event_rate, start_ts = _timing(count, duration, rate, start_ts, NOMINAL_TX_RATE)
    cfg = TxConfig(count=count, seed=seed, mix=_shares(parse_tx_mix, mix), start_ts=start_ts, event_rate=event_rate,
                   run=run or "", rules=TxRules.from_settings(settings),
                   taint_gap=taint_gap or auto_taint_gap(count, paced=rate > 0),
                   max_bytes=settings.max_transaction_bytes)
    return generate_transactions(cfg)


async def send(traffic: GeneratedTraffic, kafka: KafkaTarget, topics: SimTopics, settings: Settings, rate: float,
               wait_timeout: float, quiet: bool, label: str) -> list[dict]:
    from fraudapp.tooling.simulation.display import LiveProgress
    from fraudapp.tooling.simulation.runner import run_traffic

    await ensure_topics(kafka, topics, settings.partitions, settings.replication_factor)
    watcher = VerdictWatcher(kafka, topics.verdicts)
    try:
        await watcher.start(timeout=wait_timeout)
        with LiveProgress(label, watcher, enabled=not quiet) as live:
            return await run_traffic(traffic, kafka, topics, rate=rate, wait_timeout=wait_timeout,
                                     progress=live.update, status=None if quiet else live.status, watcher=watcher)
    finally:
        await watcher.stop()


@click.command()
@click.option("--stream", type=click.Choice(("clicks", "transactions")), default="clicks", show_default=True,
              help="What to send: clicks to the clicks topic, or crypto transfers to the transactions topic.")
@click.option("--count", type=click.IntRange(1), default=None, help="Number of inputs to send.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None,
              help="Seconds of traffic at --rate (count = rate x duration).")
@click.option("--rate", type=click.FloatRange(0), default=None,
              help="Inputs per second; 0 = as fast as possible. Default: 1000 clicks/s, 100 transfers/s.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed (and options) -> same traffic.")
@click.option("--mix", default=None, metavar="NAME=SHARE,...",
              help="Population shares, e.g. humans=0.7,click_spam=0.1, or a preset: `default` or `extended` "
              "(the default plus " + ", ".join(ISSUE19_POPULATIONS) + f" at {EXTENDED_SHARE:g} each, renormalised). "
              "Default: " + ",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items())
              + "; with --stream transactions: " + ",".join(f"{k}={v:g}" for k, v in DEFAULT_TX_MIX.items()))
@click.option("--truth", "truth_path", default="truth.jsonl", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the truth (JSON lines).")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the inputs as JSON lines (the format `fraudapp replay` reads).")
@click.option("--broker", default=None, help="Kafka bootstrap (default: FRAUDAPP_BROKER; security: FRAUDAPP_SASL_*).")
@click.option("--start-ts", type=float, default=None,
              help="Event time of the run's start (default: now). Fix it, with --seed, for byte-identical reruns.")
@click.option("--run", "run_tag", default=None, help="Tag in every id (default: from seed and start).")
@click.option("--dry-run", is_flag=True, help="Only write --truth/--out; send nothing.")
@click.option("--wait-timeout", type=float, default=120.0, show_default=True,
              help="Longest wait for the detector (blacklist probe).")
@click.option("--taint-gap", type=click.IntRange(1), default=None,
              help="Transactions: records of production order after which a receipt surely taints its "
              "recipient's transfers; closer ones are labelled order-dependent (`either`). Default: a third of "
              "--count at full speed, 1000 paced (at least 1000).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(stream: str, count: int | None, duration: float | None, rate: float | None, seed: int, mix: str | None,
            truth_path: str, out_path: str | None, broker: str | None, start_ts: float | None, run_tag: str | None,
            dry_run: bool, wait_timeout: float, taint_gap: int | None, quiet: bool) -> None:
    """Send realistic labeled traffic (humans, bots, fraud patterns, bad input) to `clicks`,
    or with `--stream transactions` crypto transfers (ordinary users, scam wallets and their
    victims, drainers, velocity bots, a laundering chain, whales, one-off large amounts, bad
    input) to `transactions`, after publishing the run's scam wallets to the blacklist.

    The truth file has one JSON line per input: its id, population, expected class,
    expected hard fraud types (exact, CONTRACT §4 / §4b) and the order-dependent ones
    (`either`), and where and when it was produced. Labels never travel inside the inputs.
    """
    from fraudapp.tooling.simulation.runner import write_jsonl

    settings = Settings.from_env(**({"broker": broker} if broker else {}))
    rate = DEFAULT_RATES[stream] if rate is None else rate
    traffic: GeneratedTraffic
    if stream == "transactions":
        traffic = build_transactions(count, duration, rate, seed, mix, start_ts, run_tag, taint_gap, settings)
        topics, label = transaction_topics(settings), "transfers"
    else:
        traffic = build_traffic(count, duration, rate, seed, mix, start_ts, run_tag, settings)
        topics, label = SimTopics.from_settings(settings), "clicks"
    if out_path:
        with open(out_path, "wb") as fh:
            fh.write(traffic.input_lines())
    if dry_run:
        with open(truth_path, "wb") as fh:
            fh.write(traffic.truth_lines())
        click.echo(f"wrote {len(traffic.truth)} truth records to {truth_path} (dry run: nothing sent)")
        return
    kafka = settings.kafka_client_options()
    try:
        with explain_connection_errors(kafka):
            truth = asyncio.run(send(traffic, kafka, topics, settings, rate, wait_timeout, quiet, label))
    except (SimulationError, KafkaUnreachable) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    write_jsonl(truth_path, truth)
    click.echo(f"sent {len(truth)} inputs to {topics.clicks!r} (run {traffic.run}); truth in {truth_path}")
