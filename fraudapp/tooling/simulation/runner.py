"""Run generated traffic against a live detector: blacklist first, probe, then the clicks.

1. Publish the run's blacklist entries to `blacklist-updates`; the probe address is last.
2. Send probe clicks from the probe address until one is judged `ip_blacklist`: the worker
   that judged it has applied every entry (one partition, applied in order). Then wait the
   contract's 1 s for other workers. Probes are not part of the evaluated traffic.
3. Send the inputs in order, paced (or at full speed), never waiting for a verdict: real
   producers do not (truth.py says which labels other devices' order may change).
4. Return the truth records of what was sent, each with its topic, partition, offset and
   produced_at (wall time of the send): `evaluate` joins on the position.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from fraudapp.kafkaconn import KafkaTarget
from fraudapp.tooling.simulation.generator import Traffic
from fraudapp.tooling.simulation.kafkaio import (
    SimTopics,
    SimulationError,
    VerdictWatcher,
    new_producer,
    produce_inputs,
    publish,
)

# CONTRACT §4: "A change reaches every worker within 1 s."
BLACKLIST_PROPAGATION = 1.0
StatusFn = Callable[[str], None]


async def apply_blacklist(traffic: Traffic, producer: Any, watcher: VerdictWatcher, topics: SimTopics,
                          timeout: float, status: StatusFn | None = None) -> int:
    """Publish the entries and wait until a probe click is judged ip_blacklist; returns probes sent."""
    await publish(producer, topics.blacklist,
                  ((e["value"].encode(), orjson.dumps(e)) for e in traffic.entries))
    if status:
        status(f"published {len(traffic.entries)} blacklist entries; probing the detector")
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        probe_id = f"probe-{traffic.run}-{k}"
        # Stamped at the traffic's start, never "now": a probe must not move the detector's
        # stream time ahead of the traffic (a partition's state is swept by event time, so
        # a probe stamped now ahead of back-dated traffic would expire the traffic's windows).
        click = {"click_id": probe_id, "ts": traffic.config.start_ts, "device_id": probe_id, "ip": traffic.probe_ip}
        meta = await (await producer.send(topics.clicks, value=orjson.dumps(click), key=probe_id.encode()))
        verdict = await watcher.wait((meta.topic, meta.partition, meta.offset), max(1.0, deadline - time.monotonic()))
        k += 1
        if "ip_blacklist" in (verdict.get("fraud_types") or []):
            break
        if time.monotonic() > deadline:
            raise SimulationError(f"the detector did not apply the blacklist within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(BLACKLIST_PROPAGATION)
    return k


async def run_traffic(
    traffic: Traffic,
    kafka: KafkaTarget,
    topics: SimTopics,
    *,
    rate: float,
    wait_timeout: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
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
