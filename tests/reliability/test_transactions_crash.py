"""Transfers survive crashes as clicks do (issue 18): SIGKILL a random worker mid-stream,
restart it, and every input offset of `transactions` still has exactly one verdict or dead
letter, each verdict equal to the brute-force reference, and the wallet-activity table
equal to its recomputation from the input.

The traffic has no blacklist and no taint, so every label depends only on its sender's
own transfers in their Kafka order (the cross-partition rule is tested in
tests/integration/test_transactions.py). Short version in the default suite; the medium
one is marked slow."""

from __future__ import annotations

import random
import signal
import statistics
import time
from collections import defaultdict
from statistics import median
from typing import Any

import orjson
import pytest
from eth_utils import to_checksum_address

from fraudapp.settings import Settings
from fraudapp.state.wallets import WalletActivity, Windows
from tests.integration.conftest import Cluster
from tests.reliability.harness import Producer, Traffic, collect_outputs, compare_state, read_table, verify
from tests.reliability.test_reliability import GUARANTEE, SHORT, SLOW, check, first_verdict_after_restart, start

S = Settings()
WINDOWS = Windows(velocity=S.wallet_velocity_seconds, fan_out=S.fan_out_seconds, history=S.large_amount_history,
                  min_known=S.large_amount_min_known, alert=S.wallet_alert_window_seconds,
                  lateness=S.lateness_seconds, idle=S.wallet_idle_seconds)  # fmt: skip


def make_transfers(n: int, seed: int = 11, span: float = 600.0) -> tuple[Traffic, dict[str, list[str]], list[Any]]:
    """n inputs: ~1 % malformed, ~2 % single transfers keyed by the checksummed address
    (re-keyed), the rest keyed by the sender; bursts (velocity), spreading senders (fan-out) and rare big
    amounts (large_amount). Returns the traffic, tx_id -> expected fraud types, and the
    valid transfers in production order."""
    rng = random.Random(seed)
    senders = [f"0x{rng.getrandbits(160):040x}" for _ in range(max(10, n // 40))]
    t = time.time() - span - 60
    step = span / n
    records: list[tuple[bytes | None, bytes]] = []
    expected: dict[str, list[str]] = {}
    valid: list[Any] = []
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    bad = 0
    for i in range(n):
        t += step
        r = rng.random()
        if r < 0.01:
            records.append((b"bad", b"not json %d" % i))
            bad += 1
            continue
        # Keyed by its checksummed form, a transfer is re-keyed and so reaches the stage after
        # its sender's later ones: no Kafka order between the two keys. Such senders send once.
        checksummed = r < 0.03
        sender = f"0x{rng.getrandbits(160):040x}" if checksummed else rng.choice(senders)
        ts = round(t + (rng.random() * 2 if rng.random() < 0.3 else 0.0), 3)
        to = f"dst{rng.randrange(30)}"
        amount = round(rng.uniform(1, 5), 2) * (100 if rng.random() < 0.01 else 1)
        tx = {"tx_id": f"t{i}", "ts": ts, "from": sender, "to": to, "amount": amount, "asset": "ETH"}
        mine = history[sender]
        types = []
        if sum(1 for d in mine if ts - WINDOWS.velocity <= d["ts"] <= ts) >= S.wallet_velocity_threshold:
            types.append("wallet_velocity")
        if len({d["to"] for d in mine if ts - WINDOWS.fan_out <= d["ts"] <= ts} | {to}) >= S.fan_out_threshold:
            types.append("fan_out")
        amounts = [d["amount"] for d in mine][-WINDOWS.history:]
        if len(amounts) >= WINDOWS.min_known and amount > S.large_amount_factor * median(amounts):
            types.append("large_amount")
        expected[tx["tx_id"]] = types
        mine.append(tx)
        valid.append(tx)
        key = to_checksum_address(sender) if checksummed else sender
        records.append((key.encode(), orjson.dumps(tx)))
    return Traffic(records, {}, bad), expected, valid


def check_wallet_state(cluster: Cluster, valid: list[Any]) -> Any:
    """wallet-activity after the run equals its recomputation from the input (each transfer
    added once to its sender's state, in production order, alert windows counted with the
    reference's labels)."""
    states: dict[str, WalletActivity] = {}
    newest = 0.0
    for tx in valid:
        state = states.setdefault(tx["from"], WalletActivity())
        state.aggregate(tx["ts"], tx["to"], tx["asset"], tx["amount"], WINDOWS)
        newest = max(newest, tx["ts"])
    actual = read_table(cluster, "wallet-activity")
    # alert windows depend on the labels: compared through the verdicts, not here
    strip = {k: {**v, "w": None} for k, v in actual.items()}
    return compare_state("wallet-activity", strip, {k: {**s.to_json(), "w": None} for k, s in states.items()},
                         lambda v: WalletActivity.json_expires_at(v, WINDOWS.idle), newest)


@pytest.mark.parametrize(
    "n,kills,rate",
    [pytest.param(3000, 2, 400, marks=SHORT, id="short"), pytest.param(20_000, 6, 400, marks=SLOW, id="medium")],
)
def test_sigkill_random_worker_transactions(fraud_cluster: Cluster, n: int, kills: int, rate: float) -> None:
    rng = random.Random(n + kills)
    traffic, expected, valid = make_transfers(n)
    # static membership: a restarted worker takes its partitions back at once (the click
    # crash test covers dynamic membership)
    workers = {name: start(fraud_cluster, name, static=True) for name in ("w1", "w2")}
    producer = Producer(fraud_cluster, traffic, rate=rate, topic="transactions")
    t_start = time.monotonic()
    producer.start()
    production = n / rate
    recoveries: list[float | None] = []
    for moment in sorted(rng.uniform(0.1, 0.9) * production for _ in range(kills)):
        time.sleep(max(0.0, moment - (time.monotonic() - t_start)))
        name = rng.choice(sorted(workers))
        workers[name].stop(signal.SIGKILL)
        time.sleep(rng.uniform(0.0, 2.0))
        workers[name] = start(fraud_cluster, name, wait=False, static=True, port=workers[name].port)
        recoveries.append(first_verdict_after_restart(workers[name], timeout=120, metric="fraudapp_transaction_verdicts_total"))
    producer.join(timeout=production * 3 + 120)
    assert producer.error is None and producer.sent == n, producer.error
    records = collect_outputs(fraud_cluster, n, timeout=max(120.0, n / 100),
                              outputs=("transaction-verdicts", "transactions-dlq"))
    elapsed = time.monotonic() - t_start

    def wrong(verdict: dict[str, Any]) -> str | None:
        want = expected.get(verdict["tx_id"])
        return None if verdict["fraud_types"] == want else f"{verdict['tx_id']}: expected {want} got {verdict['fraud_types']}"

    report = verify(fraud_cluster, traffic, records, streams=("transactions", "transactions-dlq"), wrong=wrong)
    measured = [r for r in recoveries if r is not None]
    flagged = sum(1 for types in expected.values() if types)
    print(f"\n[crash transactions {GUARANTEE}] {n} inputs ({flagged} flagged), {kills} SIGKILLs, "
          f"{elapsed:.0f} s end to end; restart -> first verdict: "
          + (f"median {statistics.median(measured):.1f} s" if measured else "n/a"))
    state = check_wallet_state(fraud_cluster, valid)
    print(state.line())
    for example in state.examples[:5]:
        print("  ", example[:300])
    check(report)
    assert flagged > 0  # the traffic exercises the rules
    if GUARANTEE == "exactly_once":
        assert state.ok, state.line()
