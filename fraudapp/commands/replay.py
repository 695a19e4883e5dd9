"""`fraudapp replay FILE`: re-feed recorded clicks; optionally compare with earlier verdicts.

Comparison pairs verdicts by input line, never by click_id: a click_id can be on several
lines (a replayed click), and each line is an input of its own with its own verdict. A
recorded verdict names its line in `line` (`evaluate --dump-verdicts` writes it: the
truth's `i`, the input's 0-based line in `simulate --out`); a new verdict names the
position its line was produced at, and replay knows which line it sent there.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import click
import orjson

from fraudapp.kafkaconn import KafkaTarget, KafkaUnreachable, explain_connection_errors
from fraudapp.models import FARM_FRAUD_TYPES, SOFT_FRAUD_TYPE
from fraudapp.settings import Settings
from fraudapp.shadow import by_fraud_type_and_campaign, outcome
from fraudapp.tooling.simulation.kafkaio import Position, Sent, SimTopics, SimulationError

Item = tuple[bytes | None, bytes, float]
# A dead-lettered input's answer, as compared with a verdict (evaluate's class name).
REJECTED = "rejected"


class Line(NamedTuple):
    """Where an item comes from: its 0-based line in the file (blank lines count) and click_id."""

    index: int
    click_id: str | None


def load_items(path: str) -> tuple[list[Item], list[Line]]:
    """Lines -> (key, value, emit offset) items and each item's line.

    A line is sent exactly as it is (bad lines too: the detector dead-letters them).
    Blank lines are skipped but counted: a `Line.index` is the line's 0-based position in
    the file, so the i-th line of `simulate --out` is input i of the truth. The key is the
    click's device_id when the line is a JSON object that has one. Pacing follows the `ts`
    field (epoch seconds) where it is a number, never going backwards: out-of-order events
    are sent in file order.
    """
    items: list[Item] = []
    lines: list[Line] = []
    first: float | None = None
    emit = 0.0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            key, click_id = None, None
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                if isinstance(obj.get("device_id"), str):
                    key = obj["device_id"].encode()
                click_id = obj.get("click_id") if isinstance(obj.get("click_id"), str) else None
                ts = obj.get("ts")
                if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                    first = ts if first is None else first
                    emit = max(emit, ts - first)
            items.append((key, line, emit))
            lines.append(Line(number, click_id))
    return items, lines


def _position(src: Any) -> Position | None:
    if isinstance(src, (list, tuple)) and len(src) == 3:
        try:
            return (str(src[0]), int(src[1]), int(src[2]))
        except (TypeError, ValueError):
            return None
    return None


def new_by_line(verdicts: Iterable[dict[str, Any]], dead: Iterable[dict[str, Any]], sent: Sequence[Sent],
                lines: Sequence[Line]) -> dict[int, dict[str, Any]]:
    """This replay's answers by file line: a verdict (its `source`) or, for a dead-lettered
    line, {"verdict": "rejected", "error": code}. An input's first answer wins (a second
    one is a redelivery's)."""
    line_at: dict[Position | None, int] = {s.position: lines[s.index].index for s in sent}
    out: dict[int, dict[str, Any]] = {}
    for v in verdicts:
        line = line_at.get(_position(v.get("source")))
        if line is not None:
            out.setdefault(line, v)
    for d in dead:
        line = line_at.get(_position([d.get("topic"), d.get("partition"), d.get("offset")]))
        if line is not None:
            out.setdefault(line, {"verdict": REJECTED, "fraud_types": [], "error": d.get("error")})
    return out


def recorded_by_line(records: Iterable[dict[str, Any]], lines: Sequence[Line],
                     truth: Iterable[dict[str, Any]] | None = None) -> tuple[dict[int, dict[str, Any]], list[Any]]:
    """Earlier verdicts by file line, and the click_ids of those that could not be paired.

    A record's line is its `line` field (`evaluate --dump-verdicts` writes it); failing
    that, the truth's `i` for its `source` position (`--truth`, for dumps without `line`);
    failing that, the one line of the file with its click_id. A click_id on several lines
    without either is ambiguous: left unpaired rather than guessed. An input's first
    recorded verdict wins.
    """
    by_truth: dict[Position | None, int] = {}
    for t in truth or ():
        pos = _position([t.get("topic"), t.get("partition"), t.get("offset")])
        if pos is not None and isinstance(t.get("i"), int):
            by_truth[pos] = t["i"]
    by_id: dict[str, list[int]] = {}
    for ln in lines:
        if ln.click_id is not None:
            by_id.setdefault(ln.click_id, []).append(ln.index)
    out: dict[int, dict[str, Any]] = {}
    unpaired: list[Any] = []
    for v in records:
        line = v.get("line")
        if not isinstance(line, int) or isinstance(line, bool):
            line = by_truth.get(_position(v.get("source")))
        if line is None:
            cid = v.get("click_id")
            candidates = by_id.get(cid, []) if isinstance(cid, str) else []
            line = candidates[0] if len(candidates) == 1 else None
        if line is None:
            unpaired.append(v.get("click_id"))
        else:
            out.setdefault(line, v)
    return out, unpaired


def read_reputation(verdict: Mapping[str, Any]) -> bool:
    """The verdict depended on the reputation: a farm rule fired or the network layer scored."""
    return bool(set(verdict.get("fraud_types") or ()) & set(FARM_FRAUD_TYPES)) or (
        (verdict.get("layers") or {}).get("network") is not None)


def compare(old: Mapping[int, dict[str, Any]], new: Mapping[int, dict[str, Any]],
            unpaired: Sequence[Any] = ()) -> dict[str, Any]:
    """Earlier verdicts vs new answers, both by file line: which changed class or fraud
    types, which have no new answer, and which lines are answered now but were not before.
    A change only in fraud types the recorded verdict lists under `either` (they depend on
    the order of other devices' clicks, which CONTRACT §4 leaves open) is `order_dependent`,
    not `changed`. A change where one of the two verdicts read the reputation (a farm rule
    fired, or the network layer lowered its score) and no hard fraud type differs is
    `reputation_dependent`: the reputation follows the clicks with a lag (CONTRACT §4,
    farm rules), so it depends on timing."""
    changed: list[dict[str, Any]] = []
    order_dependent: list[dict[str, Any]] = []
    reputation_dependent: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    unchanged = 0
    for line in sorted(old):
        v = old[line]
        now = new.get(line)
        if now is None:
            missing.append({"line": line, "click_id": v.get("click_id")})
            continue
        before, after = outcome(v), outcome(now)
        if before == after:
            unchanged += 1
            continue
        change = {"line": line, "click_id": v.get("click_id"), "campaign_id": v.get("campaign_id"),
                  "before": before, "after": after}
        # Only fraud types the contract lets depend on other devices' order differ (§4).
        either = set(v.get("either") or ())
        differ = set(before["fraud_types"]) ^ set(after["fraud_types"])
        if not differ - {*FARM_FRAUD_TYPES, SOFT_FRAUD_TYPE} and (read_reputation(v) or read_reputation(now)):
            reputation_dependent.append(change)
        elif differ <= either and either:
            order_dependent.append(change)
        else:
            changed.append(change)
    new_only = [{"line": line, "click_id": new[line].get("click_id"), "after": outcome(new[line])}
                for line in sorted(set(new) - set(old)) if new[line].get("verdict") != REJECTED]
    return {"compared": len(old), "unchanged": unchanged, "changed": changed, "order_dependent": order_dependent,
            "reputation_dependent": reputation_dependent, "missing": missing, "new_only": new_only, "unpaired": list(unpaired),
            "by": by_fraud_type_and_campaign(changed)}


async def _replay(items: list[Item], kafka: KafkaTarget, topics: SimTopics, speed: float, quiet: bool,
                  wait_new: float | None) -> tuple[list[Sent], list[dict[str, Any]], list[dict[str, Any]]]:
    from fraudapp.tooling.simulation.display import LiveProgress
    from fraudapp.tooling.simulation.kafkaio import collect_outputs, new_producer, produce_inputs

    producer = new_producer(kafka)
    await producer.start()
    started = time.time()
    try:
        with LiveProgress("replay", enabled=not quiet) as live:
            sent = await produce_inputs(producer, topics.clicks, items, speed=speed, progress=live.update)
    finally:
        await producer.stop()
    verdicts: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    if wait_new is not None:
        with LiveProgress("verdicts", enabled=not quiet) as live:
            verdicts, dead = await collect_outputs(kafka, topics, [s.position for s in sent], started - 5, wait_new,
                                                   progress=live.update)
    return sent, verdicts, dead


def _fmt(outcome: dict[str, Any]) -> str:
    return f"{outcome['verdict']} {outcome['fraud_types']}"


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=click.FloatRange(0), default=1.0, show_default=True,
              help="1.0 = original pacing (by the clicks' ts), 2.0 = twice as fast, 0 = as fast as possible.")
@click.option("--compare", "compare_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Earlier verdicts (JSON lines from `evaluate --dump-verdicts`): report what changed, "
              "input by input (by line of FILE, not by click_id).")
@click.option("--truth", "truth_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The run's truth file: pairs --compare verdicts that have no `line` field (older dumps).")
@click.option("--diff-out", default=None, type=click.Path(dir_okay=False), help="Write the changes as JSON.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Longest wait for the new verdicts.")
@click.option("--rules", "rules_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A rule set (JSON) to publish to the deployment first: the diff then shows what it changes, "
              "per fraud type and campaign. Its version must be above the one the deployment applies.")
@click.option("--broker", default=None, help="Kafka bootstrap (default: FRAUDAPP_BROKER).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(file: str, speed: float, compare_path: str | None, truth_path: str | None, diff_out: str | None,
            timeout: float, rules_path: str | None, broker: str | None, quiet: bool) -> None:
    """Re-feed a JSON-lines file of clicks (e.g. from `simulate --out`) into `clicks`.

    Replaying into the same detector makes every click a duplicate_click (it remembers
    click ids for DEDUP_SECONDS): compare against a deployment with fresh state (and the
    same blacklist), e.g. after changing a setting or a rule.

    --compare pairs each recorded verdict with the new answer to the same line of FILE
    (0-based, blank lines counted): the `line` that `evaluate --dump-verdicts` records
    is the input's line in `simulate --out`. A click_id on several lines is several
    inputs; dead-lettered lines have no verdict and shift nothing. Each change is listed
    with its line and click_id; a recorded verdict now dead-lettered shows as `rejected`.
    """
    from fraudapp.tooling.simulation.runner import read_jsonl

    settings = Settings.from_env(**({"broker": broker} if broker else {}))
    topics = SimTopics.from_settings(settings)
    items, lines = load_items(file)
    version = _publish_rules(rules_path, settings) if rules_path else None
    kafka = settings.kafka_client_options()
    try:
        with explain_connection_errors(kafka):
            sent, verdicts, dead = asyncio.run(_replay(items, kafka, topics, speed, quiet,
                                                       timeout if compare_path else None))
    except (SimulationError, KafkaUnreachable) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"replayed {len(sent)} of {len(items)} lines into {topics.clicks!r}")
    if version is not None and verdicts:
        other = sorted({v.get("rules_version") for v in verdicts} - {version}, key=str)
        if other:
            click.echo(f"error: {sum(v.get('rules_version') != version for v in verdicts)} verdicts were judged "
                       f"under rule set version(s) {other}, not {version}: the deployment had not applied it yet, "
                       "or applies a newer one; replay into a fresh deployment again", err=True)
            sys.exit(1)
    if not compare_path:
        return
    old, unpaired = recorded_by_line(read_jsonl(compare_path), lines, read_jsonl(truth_path) if truth_path else None)
    diff = compare(old, new_by_line(verdicts, dead, sent, lines), unpaired)
    click.echo(f"compared {diff['compared']} inputs: {diff['unchanged']} unchanged, {len(diff['changed'])} changed, "
               f"{len(diff['order_dependent'])} order-dependent (other devices' clicks, either order), "
               f"{len(diff['reputation_dependent'])} reputation-dependent (farm rules and the network layer, "
               "which follow the clicks with a lag), "
               f"{len(diff['missing'])} without a new verdict, {len(diff['new_only'])} answered now but not before")
    if diff["unpaired"]:
        click.echo(f"{len(diff['unpaired'])} recorded verdicts not paired with a line (no `line` field and their "
                   "click_id is on several lines or none: dump them again with `evaluate --dump-verdicts`, or "
                   "give --truth)")
    for name, counts in diff["by"]["fraud_types"].items():
        click.echo(f"  {name}: +{counts['gained']} -{counts['lost']}")
    for campaign, count in diff["by"]["campaigns"].items():
        click.echo(f"  campaign {campaign}: {count} changed")
    for change in diff["changed"][:20]:
        click.echo(f"  line {change['line']} {change['click_id']}: {_fmt(change['before'])} -> {_fmt(change['after'])}")
    if len(diff["changed"]) > 20:
        click.echo(f"  ... {len(diff['changed']) - 20} more (see --diff-out)")
    if diff_out:
        with open(diff_out, "wb") as fh:
            fh.write(orjson.dumps(diff, option=orjson.OPT_INDENT_2))


def _publish_rules(path: str, settings: Settings) -> int:
    """Check the rule set, publish it to the deployment's rules topic and wait until it is
    applied; its version."""
    from pathlib import Path

    from fraudapp.commands.rules import publish_file

    return publish_file(Path(path), settings, wait=True, action="set").version
