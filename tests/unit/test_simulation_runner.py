"""The runner both streams share (runner.py): each stream's probe, and the loop that sends
probes until the detector shows it has applied the run's blacklist. No broker: a producer
and a verdict watcher that answer in memory."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from fraudapp.tooling.simulation import runner
from fraudapp.tooling.simulation.generator import SimConfig, generate
from fraudapp.tooling.simulation.kafkaio import SimTopics, SimulationError
from fraudapp.tooling.simulation.traffic import GeneratedTraffic
from fraudapp.tooling.simulation.transactions.generator import TxConfig, generate_transactions
from fraudapp.tooling.simulation.transactions.truth import compared
from fraudapp.validate import Rejection, parse_click, parse_transaction

pytestmark = pytest.mark.unit

TOPICS = SimTopics("in", "verdicts", "dlq", "blacklist")
CLICKS = generate(SimConfig(count=50, seed=3))
TRANSFERS = generate_transactions(TxConfig(count=50, seed=3))


class Producer:
    """Records what is sent; every send is acknowledged at the next offset."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack.set_result(SimpleNamespace(topic=topic, partition=0, offset=len(self.sent) - 1))
        return ack


class Watcher:
    """Judges the probes in turn with the given fraud types."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = iter(answers)

    async def wait(self, pos: tuple[str, int, int], timeout: float) -> dict[str, Any]:
        return {"fraud_types": next(self.answers, [])}


def test_each_streams_probe_is_a_valid_input_of_the_probe_entry_stamped_at_the_start() -> None:
    key, value = CLICKS.probe(0)
    click = parse_click(value)
    assert not isinstance(click, Rejection)
    assert (click.ts, click.ip, key) == (CLICKS.config.start_ts, CLICKS.entries[-1]["value"], click.device_id.encode())
    key, value = TRANSFERS.probe(0)
    transfer = parse_transaction(value)
    assert not isinstance(transfer, Rejection)
    body = orjson.loads(value)
    assert (body["ts"], body["amount"], key) == (TRANSFERS.config.start_ts, 0, body["from"].encode())
    assert compared(body["to"]) == compared(TRANSFERS.entries[-1]["value"]) == TRANSFERS.probe_wallet
    # each probe is an input of its own (the detector would drop a repeated id)
    for traffic in (CLICKS, TRANSFERS):
        assert traffic.probe(0) != traffic.probe(1)


@pytest.mark.parametrize("traffic", [CLICKS, TRANSFERS], ids=["clicks", "transactions"])
async def test_probes_until_one_is_judged_the_streams_proving_type(traffic: GeneratedTraffic,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BLACKLIST_PROPAGATION", 0.0)
    producer = Producer()
    other = "scam_wallet" if traffic.probe_proves == "ip_blacklist" else "ip_blacklist"
    watcher = Watcher([[], [other], [traffic.probe_proves]])
    assert await runner.apply_blacklist(traffic, producer, watcher, TOPICS, timeout=30) == 3  # type: ignore[arg-type]
    published = len(traffic.entries)
    assert [(t, orjson.loads(v)) for t, _, v in producer.sent[:published]] == [("blacklist", e) for e in traffic.entries]
    assert producer.sent[published:] == [("in", *traffic.probe(k)) for k in range(3)]


async def test_a_blacklist_never_applied_is_an_error() -> None:
    with pytest.raises(SimulationError, match="did not apply the blacklist"):
        await runner.apply_blacklist(TRANSFERS, Producer(), Watcher([]), TOPICS, timeout=0)  # type: ignore[arg-type]
