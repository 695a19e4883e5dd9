"""Run generated transfers against a live detector, as the click runner does (runner.py):

1. Publish the run's wallet entries to `blacklist-updates`; the probe wallet's is last.
2. Send probe transfers to the probe wallet until one is judged `scam_wallet`: the worker
   that judged it has applied every entry (one partition, applied in order). Then wait the
   contract's 1 s for the other workers. Probes are not part of the evaluated traffic:
   each comes from a wallet of its own and moves nothing (amount 0 taints nobody).
3. Send the inputs in order, paced or at full speed, never waiting for a verdict.
4. Return the truth records of what was sent, with topic, partition, offset, produced_at.

The topics are the click runner's `SimTopics`, filled with the transaction topics
(`clicks` is the input topic, `verdicts` and `dlq` the transaction ones): every Kafka
helper of kafkaio.py then serves both streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from fraudapp.kafkaconn import KafkaTarget
from fraudapp.settings import Settings
from fraudapp.tooling.simulation.kafkaio import (
    SimTopics,
    SimulationError,
    VerdictWatcher,
    new_producer,
    produce_inputs,
    publish,
)
from fraudapp.tooling.simulation.runner import BLACKLIST_PROPAGATION, StatusFn
from fraudapp.tooling.simulation.transactions.generator import TxTraffic
from fraudapp.tooling.simulation.transactions.wallets import evm_address


def transaction_topics(s: Settings) -> SimTopics:
    return SimTopics(s.topic_transactions, s.topic_transaction_verdicts, s.topic_transactions_dlq, s.topic_blacklist)


def probe_transfer(traffic: TxTraffic, k: int) -> tuple[bytes, bytes]:
    """(key, value) of probe k: a zero transfer from a wallet of its own to the probe wallet.
    Stamped at the traffic's start, never "now": a probe must not move the detector's
    stream time ahead of back-dated traffic (state is swept by event time)."""
    sender = evm_address(traffic.run, "probe_sender", k)
    body = {"tx_id": f"probe-{traffic.run}-{k}", "ts": traffic.config.start_ts, "from": sender,
            "to": traffic.probe_wallet, "amount": 0, "asset": "ETH"}
    return sender.encode(), orjson.dumps(body)


async def apply_wallet_blacklist(traffic: TxTraffic, producer: Any, watcher: VerdictWatcher, topics: SimTopics,
                                 timeout: float, status: StatusFn | None = None) -> int:
    """Publish the entries and wait until a probe transfer is judged scam_wallet; returns probes sent."""
    await publish(producer, topics.blacklist, ((e["value"].encode(), orjson.dumps(e)) for e in traffic.entries))
    if status:
        status(f"published {len(traffic.entries)} wallet blacklist entries; probing the detector")
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        key, value = probe_transfer(traffic, k)
        meta = await (await producer.send(topics.clicks, value=value, key=key))
        verdict = await watcher.wait((meta.topic, meta.partition, meta.offset), max(1.0, deadline - time.monotonic()))
        k += 1
        if "scam_wallet" in (verdict.get("fraud_types") or []):
            break
        if time.monotonic() > deadline:
            raise SimulationError(f"the detector did not apply the wallet blacklist within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(BLACKLIST_PROPAGATION)
    return k


async def run_transactions(
    traffic: TxTraffic,
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
        await apply_wallet_blacklist(traffic, producer, watcher, topics, wait_timeout, status)
        if status:
            status(f"sending {len(traffic.inputs)} transfers to {topics.clicks!r}")
        items = [(i.key, i.value, i.emit) for i in traffic.inputs]
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
