"""The transaction stage without a broker (Faust's test_context, memory tables): verdicts,
dead letters, re-keying, alerts and the taint it passes on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from fraudapp import tables, transaction_stage
from fraudapp.app import settings
from fraudapp.models import BlacklistEntry
from tests.unit.test_agents import Sent, of, sent, settled  # noqa: F401 - the fixture


def tx(tx_id: str, sender: str, recipient: str, ts: float, amount: float = 1.0, **extra: Any) -> tuple[bytes, bytes]:
    body = {"tx_id": tx_id, "ts": ts, "from": sender, "to": recipient, "amount": amount, "asset": "ETH", **extra}
    return sender.lower().encode(), orjson.dumps(body)


async def run(sent: Sent, records: list[tuple[bytes | None, bytes]]) -> list[dict[str, Any]]:  # noqa: F811
    async with transaction_stage.check_transactions.test_context() as stage:
        for key, value in records:
            await stage.put(value, key=key)
        await settled(lambda: sum(len(of(sent, t)) for t in (settings.topic_transaction_verdicts,
                                                             settings.topic_transactions_dlq,
                                                             transaction_stage.topics.transactions_rekeyed.get_topic_name())),
                      len(records))
    return [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_transaction_verdicts)]


async def test_a_drainer_a_launderer_and_a_bad_record(sent: Sent) -> None:  # noqa: F811
    run_id = uuid.uuid4().hex[:8]
    scam, mule, clean = f"scam-{run_id}", f"mule-{run_id}", f"user-{run_id}"
    tables.blacklist.index.add(BlacklistEntry("wallet", scam, reason="phishing"))
    t = time.time()
    try:
        records = [tx("a", clean, scam, t, 2.0),  # a victim pays the scam wallet
                   tx("b", scam, mule, t + 1, 5.0),  # the scam wallet pays a mule: taints it
                   tx("c", mule, clean, t + 2, 4.0),  # the mule pays on: tainted_funds
                   (b"k", b"{broken"),
                   (b"not-the-sender", orjson.dumps({"tx_id": "d", "ts": t, "from": clean, "to": mule, "amount": 1,
                                                      "asset": "ETH"}))]
        verdicts = await run(sent, records)
    finally:
        tables.blacklist.index.remove("wallet", scam)
    assert [(v["tx_id"], v["fraud_types"]) for v in verdicts] == [
        ("a", ["scam_wallet"]), ("b", ["scam_wallet"]), ("c", ["tainted_funds"])]
    assert "received from a blacklisted wallet (scam-" in verdicts[2]["reasons"][0]["detail"]
    assert all(v["source"][2] == i for i, v in enumerate(verdicts))
    dead = [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_transactions_dlq)]
    assert [d["error"] for d in dead] == ["not_json"]
    (rekeyed,) = of(sent, transaction_stage.topics.transactions_rekeyed.get_topic_name())
    assert rekeyed["key"] == clean.encode()
    alerts = [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_alerts)]
    assert [(a["kind"], a["id"], a["direction"], a["tx_id"]) for a in alerts] == [
        ("blacklisted_counterparty", scam, "received", "a"), ("blacklisted_counterparty", scam, "sent", "b")]
    assert tables.wallet_taint.index.of(mule)[0].source == scam


async def test_a_sender_over_the_flagged_threshold_alerts_once_in_its_window(sent: Sent) -> None:  # noqa: F811
    sender = f"bot-{uuid.uuid4().hex[:8]}"
    start = (time.time() // 60) * 60
    # wallet_velocity: the 6th transfer within 60 s and on are flagged; the 3rd flagged alerts
    verdicts = await run(sent, [tx(f"v{i}", sender, f"to-{i % 2}", start + i) for i in range(10)])
    assert [bool(v["fraud_types"]) for v in verdicts] == [False] * 5 + [True] * 5
    alerts = [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_alerts)]
    assert [(a["kind"], a["id"], a["clicks"], a["fraud"]) for a in alerts] == [("flagged_transfers", sender, 8, 3)]
    assert alerts[0]["top_fraud_types"] == {"wallet_velocity": 3}
