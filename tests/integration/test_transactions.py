"""Crypto transfers through two real workers (CONTRACT §2b, §3b, §4b): produced at full
speed, every accepted transfer gets exactly one verdict equal to the brute-force reference,
bad ones are dead-lettered, wallet alerts come at once or per window, a wallet list loaded
with `fraudapp blacklist load` is in force, GET /wallets answers from the owning worker,
and the one cross-partition rule (tainted_funds) has its lag measured."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import orjson
import pytest
from eth_utils import to_checksum_address
from jsonschema import Draft202012Validator

from fraudapp import schemas
from fraudapp.tooling.benchmark.kafkaio import produce
from tests.integration.conftest import Cluster, Worker, consume_json, wait_for

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))
# the defaults of CONTRACT §4b
VELOCITY, VELOCITY_S, FAN_OUT, FAN_OUT_S, FACTOR, HISTORY, MIN_KNOWN = 5, 60.0, 10, 600.0, 20.0, 50, 5


def wallet(name: str) -> str:
    """A lower-case EVM address derived from a name."""
    return "0x" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:8]


def http_json(worker: Worker, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(worker.url + path, timeout=15) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def traffic(run: str, start: float, scam: str) -> list[dict[str, Any]]:
    """Users, a velocity bot, a drainer, whales, a victim of the scam wallet, a one-off large amount."""
    out: list[dict[str, Any]] = []

    def send(sender: str, to: str, ts: float, amount: float, asset: str = "ETH") -> None:
        out.append({"tx_id": f"{run}-{len(out)}", "ts": ts, "from": sender, "to": to, "amount": amount, "asset": asset})

    for u in range(20):  # users: a few transfers each, minutes apart
        for i in range(3):
            send(wallet(f"{run}-user{u}"), wallet(f"{run}-shop{i}"), start + u + 120 * i, 1.0 + u % 4)
    bot = wallet(f"{run}-bot")
    for i in range(12):  # 12 transfers in 12 s: the 6th on is wallet_velocity
        send(bot, wallet(f"{run}-sink{i % 2}"), start + i, 0.5)
    drainer = wallet(f"{run}-drainer")
    for i in range(14):  # a new recipient every 50 s: 10 within 600 s from the 10th transfer on
        send(drainer, wallet(f"{run}-drop{i}"), start + 50 * i, 3.0)
    for w in range(3):  # whales: large but steady amounts
        for i in range(8):
            send(wallet(f"{run}-whale{w}"), wallet(f"{run}-desk"), start + 300 * i, 5000.0 + 10 * i, "USDT")
    spender = wallet(f"{run}-spender")
    for i in range(7):  # a steady history, then one far above 20 x its median
        send(spender, wallet(f"{run}-shop0"), start + 200 * i, 10.0 if i < 6 else 900.0, "USDT")
    victim = to_checksum_address(wallet(f"{run}-victim"))  # keyed by its checksummed form: re-keyed
    send(victim, scam, start + 5, 2.0)
    return out


def reference(transfers: list[dict[str, Any]], blacklisted: set[str]) -> dict[str, list[str]]:
    """tx_id -> fraud types, from the whole history of each sender in production order."""
    expected: dict[str, list[str]] = {}
    done: list[dict[str, Any]] = []
    for tx in transfers:
        sender, to, ts = tx["from"].lower(), tx["to"].lower(), tx["ts"]
        mine = [d for d in done if d["from"].lower() == sender]
        types = []
        if sender in blacklisted or to in blacklisted:
            types.append("scam_wallet")
        if sum(1 for d in mine if ts - VELOCITY_S <= d["ts"] <= ts) >= VELOCITY:
            types.append("wallet_velocity")
        if len({d["to"].lower() for d in mine if ts - FAN_OUT_S <= d["ts"] <= ts} | {to}) >= FAN_OUT:
            types.append("fan_out")
        amounts = [d["amount"] for d in mine if d["asset"] == tx["asset"]][-HISTORY:]
        if len(amounts) >= MIN_KNOWN and tx["amount"] > FACTOR * median(amounts):
            types.append("large_amount")
        expected[tx["tx_id"]] = types
        done.append(tx)
    return expected


def test_transfers_are_judged_exactly_alerted_and_explained(fraud_cluster: Cluster, tmp_path: Path) -> None:
    admin = "admin-" + uuid.uuid4().hex
    workers = [fraud_cluster.start_worker(name, FRAUDAPP_ADMIN_TOKEN=admin) for name in ("w1", "w2")]
    run = uuid.uuid4().hex[:6]
    scam = to_checksum_address(wallet(f"{run}-scam"))
    # A sanction list as published: a header, the address checksummed, a reason column.
    listing = tmp_path / "scam-wallets.csv"
    listing.write_text(f"address,reason\n{scam},phishing kit\n")
    cli = subprocess.run([FRAUDAPP, "blacklist", "load", str(listing)], env=fraud_cluster.env(),
                         capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    wait_for(lambda: all(http_json(w, f"/blacklist/{scam}?kind=wallet")[0] == 200 for w in workers), 30,
             "both workers to hold the scam wallet")

    start = (time.time() // 60) * 60 - 3600  # the bot's 12 s in one alert window
    sent = traffic(run, start, scam)
    bad = [b"{not json", orjson.dumps({"tx_id": "x1", "ts": start, "from": scam[:-1] + ("a" if scam[-1] != "a" else "b"),
                                       "to": "y", "amount": 1, "asset": "ETH"}),
           orjson.dumps({"tx_id": "x2", "ts": start, "from": "a", "to": "b", "amount": -5, "asset": "ETH"})]
    # keyed by the sender as given: the victim's checksummed key is re-keyed by the worker
    records = [(tx["from"].encode(), orjson.dumps(tx)) for tx in sent] + [(b"bad", raw) for raw in bad]
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("transactions"), records))  # full speed

    verdicts = consume_json(fraud_cluster, "transaction-verdicts", len(sent), timeout=120)
    assert sorted(v["tx_id"] for v in verdicts) == sorted(tx["tx_id"] for tx in sent)  # one each, none lost
    expected = reference(sent, {scam.lower()})
    wrong = {v["tx_id"]: (v["fraud_types"], expected[v["tx_id"]]) for v in verdicts
             if v["fraud_types"] != expected[v["tx_id"]]}
    assert not wrong, wrong
    by_type = {t: sum(t in v["fraud_types"] for v in verdicts)
               for t in ("scam_wallet", "wallet_velocity", "fan_out", "large_amount")}
    assert by_type == {"scam_wallet": 1, "wallet_velocity": 7, "fan_out": 5, "large_amount": 1}, by_type
    dead = consume_json(fraud_cluster, "transactions-dlq", len(bad), timeout=60)
    assert sorted(d["error"] for d in dead) == ["invalid_value", "invalid_value", "not_json"]

    alerts = consume_json(fraud_cluster, "fraud-alerts", 2, timeout=60)
    kinds = sorted((a["kind"], a["id"]) for a in alerts)
    assert kinds == sorted([("blacklisted_counterparty", scam.lower()),
                            ("flagged_transfers", wallet(f"{run}-bot"))]), alerts

    for name, records_ in (("transaction-verdict", verdicts), ("alert", alerts), ("dead-letter", dead)):
        validator = Draft202012Validator(schemas.load(name))
        assert not [e.message for r in records_ for e in validator.iter_errors(r)], name

    # GET /wallets from either worker, in either case: the owner answers
    bot = wallet(f"{run}-bot")
    answers = [http_json(w, f"/wallets/{to_checksum_address(bot)}") for w in workers]
    assert all(status == 200 for status, _ in answers), answers
    assert answers[0][1]["served_by"] == answers[1][1]["served_by"]
    assert answers[0][1]["address"] == bot and answers[0][1]["velocity_window"]["transfers"] == 12

    # tainted_funds: the scam wallet pays a mule; once the taint reached the mule's owner,
    # the mule's transfers are tainted (and its recipient's, one hop further, too).
    mule, mule2 = wallet(f"{run}-mule"), wallet(f"{run}-mule2")
    t = start + 3000  # before now: GET /wallets shows the taint in force now
    pay = {"tx_id": f"{run}-pay", "ts": t, "from": scam.lower(), "to": mule, "amount": 50.0, "asset": "ETH"}
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("transactions"),
                        [(pay["from"].encode(), orjson.dumps(pay))]))
    produced = time.monotonic()
    wait_for(lambda: all((http_json(w, f"/wallets/{mule}")[1] or {}).get("taint") for w in workers), 30,
             "the mule's taint to be readable on both workers")
    lag = time.monotonic() - produced
    print(f"\ntaint readable on both workers {lag:.2f} s after the tainting transfer was produced")
    onward = [{"tx_id": f"{run}-on", "ts": t + 10, "from": mule, "to": mule2, "amount": 40.0, "asset": "ETH"}]
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("transactions"),
                        [(tx["from"].encode(), orjson.dumps(tx)) for tx in onward]))
    wait_for(lambda: all((http_json(w, f"/wallets/{mule2}")[1] or {}).get("taint") for w in workers), 30,
             "the second mule's taint to be readable on both workers")
    last = [{"tx_id": f"{run}-last", "ts": t + 20, "from": mule2, "to": wallet(f"{run}-exit"), "amount": 30.0,
             "asset": "ETH"}]
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("transactions"),
                        [(tx["from"].encode(), orjson.dumps(tx)) for tx in last]))
    total = len(sent) + 3
    later = {v["tx_id"]: v for v in consume_json(fraud_cluster, "transaction-verdicts", total, timeout=60)}
    assert later[f"{run}-pay"]["fraud_types"] == ["scam_wallet"]
    assert later[f"{run}-on"]["fraud_types"] == ["tainted_funds"]
    assert "received from a blacklisted wallet" in later[f"{run}-on"]["reasons"][0]["detail"]
    assert later[f"{run}-last"]["fraud_types"] == ["tainted_funds"]  # two hops (TAINT_HOPS 1)
    assert "1 hop(s) from a blacklisted one" in later[f"{run}-last"]["reasons"][0]["detail"]
    for worker in workers:
        assert "Traceback" not in worker.log.read_text(errors="replace"), worker.tail(80)
