"""`fraudapp replay FILE`: re-feed recorded clicks; optionally compare with earlier verdicts."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click
import orjson

from fraudapp.kafkaconn import KafkaTarget, KafkaUnreachable, explain_connection_errors
from fraudapp.settings import Settings
from fraudapp.simulation.kafkaio import SimTopics, SimulationError

Item = tuple[bytes | None, bytes, float, tuple[int, ...]]


def load_items(path: str) -> tuple[list[Item], list[str | None]]:
    """Lines -> (key, value, emit offset, no deps) items and each line's click_id.

    A line is sent exactly as it is (bad lines too: the detector dead-letters them).
    Blank lines are skipped. The key is the click's device_id when the line is a JSON
    object that has one. Pacing follows the `ts` field (epoch seconds) where it is a
    number, never going backwards: out-of-order events are sent in file order.
    """
    items: list[Item] = []
    ids: list[str | None] = []
    first: float | None = None
    emit = 0.0
    with open(path, "rb") as fh:
        for raw in fh:
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
            items.append((key, line, emit, ()))
            ids.append(click_id)
    return items, ids


def compare(old: list[dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Earlier verdicts vs new ones by click_id: which changed class or fraud types."""
    changed, unchanged, missing = [], 0, []
    for v in old:
        cid = v.get("click_id")
        now = new.get(cid)
        if now is None:
            missing.append(cid)
            continue
        before = (v.get("verdict"), sorted(v.get("fraud_types") or []))
        after = (now.get("verdict"), sorted(now.get("fraud_types") or []))
        if before == after:
            unchanged += 1
        else:
            changed.append({"click_id": cid, "before": {"verdict": before[0], "fraud_types": before[1]},
                            "after": {"verdict": after[0], "fraud_types": after[1]}})
    return {"compared": len(old), "unchanged": unchanged, "changed": changed, "missing": missing}


async def _replay(items: list[Item], kafka: KafkaTarget, topics: SimTopics, speed: float, quiet: bool,
                  wait_new: float | None) -> tuple[list[Any], list[dict[str, Any]]]:
    from fraudapp.simulation.display import LiveProgress
    from fraudapp.simulation.kafkaio import collect_outputs, new_producer, produce_inputs

    producer = new_producer(kafka)
    await producer.start()
    started = time.time()
    try:
        with LiveProgress("replay", enabled=not quiet) as live:
            sent = await produce_inputs(producer, topics.clicks, items, speed=speed, progress=live.update)
    finally:
        await producer.stop()
    verdicts: list[dict[str, Any]] = []
    if wait_new is not None:
        with LiveProgress("verdicts", enabled=not quiet) as live:
            verdicts, _ = await collect_outputs(kafka, topics, [s.position for s in sent], started - 5, wait_new,
                                                progress=live.update)
    return sent, verdicts


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--speed", type=click.FloatRange(0), default=1.0, show_default=True,
              help="1.0 = original pacing (by the clicks' ts), 2.0 = twice as fast, 0 = as fast as possible.")
@click.option("--compare", "compare_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Earlier verdicts (JSON lines, e.g. from `evaluate --dump-verdicts`): report what changed.")
@click.option("--diff-out", default=None, type=click.Path(dir_okay=False), help="Write the changes as JSON.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Longest wait for the new verdicts.")
@click.option("--broker", default=None, help="Kafka bootstrap (default: FRAUDAPP_BROKER).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(file: str, speed: float, compare_path: str | None, diff_out: str | None, timeout: float,
            broker: str | None, quiet: bool) -> None:
    """Re-feed a JSON-lines file of clicks (e.g. from `simulate --out`) into `clicks`.

    Replaying into the same detector makes every click a duplicate_click (it remembers
    click ids for DEDUP_SECONDS): compare against a deployment with fresh state, e.g.
    after changing a setting or a rule.
    """
    from fraudapp.simulation.runner import read_jsonl

    settings = Settings.from_env(**({"broker": broker} if broker else {}))
    topics = SimTopics.from_settings(settings)
    items, ids = load_items(file)
    kafka = settings.kafka_client_options()
    try:
        with explain_connection_errors(kafka):
            sent, verdicts = asyncio.run(_replay(items, kafka, topics, speed, quiet,
                                                 timeout if compare_path else None))
    except (SimulationError, KafkaUnreachable) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"replayed {len(sent)} of {len(items)} lines into {topics.clicks!r}")
    if not compare_path:
        return
    # New verdicts by the click_id of the line they answer (positions, not ids, join them).
    line_of = {s.position: s.index for s in sent}
    new: dict[str, dict[str, Any]] = {}
    for v in verdicts:
        src = v.get("source") or []
        idx = line_of.get((src[0], int(src[1]), int(src[2]))) if len(src) == 3 else None
        if idx is not None and ids[idx] is not None:
            new.setdefault(ids[idx], v)  # a replayed id's first line wins, like the original run
    diff = compare(read_jsonl(compare_path), new)
    click.echo(f"compared {diff['compared']}: {diff['unchanged']} unchanged, {len(diff['changed'])} changed, "
               f"{len(diff['missing'])} without a new verdict")
    for change in diff["changed"][:20]:
        b, a = change["before"], change["after"]
        click.echo(f"  {change['click_id']}: {b['verdict']} {b['fraud_types']} -> {a['verdict']} {a['fraud_types']}")
    if len(diff["changed"]) > 20:
        click.echo(f"  ... {len(diff['changed']) - 20} more (see --diff-out)")
    if diff_out:
        with open(diff_out, "wb") as fh:
            fh.write(orjson.dumps(diff, option=orjson.OPT_INDENT_2))
