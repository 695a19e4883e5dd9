"""Run generated traffic of either stream against a live detector: blacklist first, probe,
then the inputs.

1. Publish the run's blacklist entries to `blacklist-updates`; the probe's entry is last.
2. Send probe inputs (`GeneratedTraffic.probe`: clicks from the probe address, or transfers
   to the probe wallet) until one is judged the fraud type that proves the entry applied
   (`probe_proves`): the worker that judged it has applied every entry (one partition,
   applied in order). Then wait the contract's 1 s for other workers. Probes are not part
   of the evaluated traffic.
3. Send the inputs in order, paced (or at full speed), never waiting for a verdict: real
   producers do not (each stream's truth.py says which labels that order may change).
4. Return the truth records of what was sent, each with its topic, partition, offset and
   produced_at (wall time of the send): `evaluate` joins on the position.

`topics` is a `SimTopics` of either stream: for transfers `clicks` names the transactions
topic (transactions/runner.py), so every Kafka helper of kafkaio.py serves both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from fraudapp.kafkaconn import KafkaTarget
from fraudapp.tooling.simulation.kafkaio import (
    ProgressFn,
    SimTopics,
    SimulationError,
    VerdictWatcher,
    new_producer,
    produce_inputs,
    publish,
)
from fraudapp.tooling.simulation.traffic import GeneratedTraffic

# CONTRACT §4: "A change reaches every worker within 1 s."
BLACKLIST_PROPAGATION = 1.0
StatusFn = Callable[[str], None]


async def apply_blacklist(traffic: GeneratedTraffic, producer: Any, watcher: VerdictWatcher, topics: SimTopics,
                          timeout: float, status: StatusFn | None = None) -> int:
    """Publish the entries and send probes until one is judged `traffic.probe_proves`;
    returns probes sent."""
    await publish(producer, topics.blacklist,
                  ((e["value"].encode(), orjson.dumps(e)) for e in traffic.entries))
    if status:
        status(f"published {len(traffic.entries)} blacklist entries; probing the detector")
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        key, value = traffic.probe(k)
        meta = await (await producer.send(topics.clicks, value=value, key=key))
        verdict = await watcher.wait((meta.topic, meta.partition, meta.offset), max(1.0, deadline - time.monotonic()))
        k += 1
        if traffic.probe_proves in (verdict.get("fraud_types") or []):
            break
        if time.monotonic() > deadline:
            raise SimulationError(f"the detector did not apply the blacklist within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(BLACKLIST_PROPAGATION)
    return k


async def run_traffic(
    traffic: GeneratedTraffic,
    kafka: KafkaTarget,
    topics: SimTopics,
    *,
    rate: float,
    wait_timeout: float = 120.0,
    progress: ProgressFn | None = None,
    status: StatusFn | None = None,
    watcher: VerdictWatcher | None = None,
) -> list[dict[str, Any]]:
    """Produce `traffic`; the truth records of what was sent (with positions)."""
    own_watcher = watcher is None
    watcher = watcher or VerdictWatcher(kafka, topics.verdicts)
    producer = new_producer(kafka)
    await producer.start()
    try:
        if own_watcher:
            await watcher.start(timeout=wait_timeout)
        await apply_blacklist(traffic, producer, watcher, topics, wait_timeout, status)
        if status:
            status(f"sending {len(traffic.inputs)} inputs to {topics.clicks!r}")
        items = [(i.key, i.value, i.emit) for i in traffic.inputs]
        # Emit offsets are event-time seconds at the configured rate: speed 1 replays that
        # schedule on the wall clock; rate 0 sends as fast as possible.
        sent = await produce_inputs(producer, topics.clicks, items, speed=1.0 if rate > 0 else 0.0,
                                    progress=progress)
    finally:
        await producer.stop()
        if own_watcher:
            await watcher.stop()
    truth = []
    for s in sent:
        record = dict(traffic.truth[s.index])
        record.update(topic=s.position[0], partition=s.position[1], offset=s.position[2],
                      produced_at=round(s.produced_at, 6))
        truth.append(record)
    return truth


def write_jsonl(path: str, records: list[dict[str, Any]]) -> None:
    with open(path, "wb") as fh:
        fh.writelines(orjson.dumps(r) + b"\n" for r in records)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]
