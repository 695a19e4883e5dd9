"""Labeled transfers from a seed: the inputs in production order, their truth, the blacklist.

Deterministic like the click generator: the same `TxConfig` gives byte-identical inputs,
truth and entries (one `random.Random(seed)`, addresses hashed from the run tag and
counters, times rounded to milliseconds, orjson output in insertion order).

Production order is event-time order (plus the few `delay`ed transfers), at `event_rate`
transfers per second of event time: the default for sending as fast as possible
(NOMINAL_TX_RATE) spreads 3,000 transfers over 10 minutes of event time, so that a drainer
(13-45 s between transfers), a bot (1-8 s) and a laundering chain (hops `taint_gap` records
apart) each keep their meaning.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from fraudapp.tooling.simulation.mix import allocate, parse_shares
from fraudapp.tooling.simulation.traffic import GeneratedTraffic, Input
from fraudapp.tooling.simulation.transactions.populations import TX_POPULATIONS, PlannedTx, TxContext
from fraudapp.tooling.simulation.transactions.truth import (
    Transfer,
    TxRules,
    blacklisted_wallets,
    check_lateness,
    reference_labels,
)
from fraudapp.tooling.simulation.transactions.wallets import evm_address

DEFAULT_TX_MIX: dict[str, float] = {
    "ordinary": 0.50,
    "scam_victims": 0.08,
    "drainers": 0.08,
    "velocity_bots": 0.09,
    "laundering": 0.08,
    "whales": 0.06,
    "large_one_off": 0.08,
    "malformed": 0.03,
}
# Transfers per second of event time when sending as fast as possible (--rate 0).
NOMINAL_TX_RATE = 5.0
# Records of production order between a receipt and a transfer of its recipient before
# the truth counts on the detector having seen the receipt (truth.py). At full speed the
# worker drains a backlog of the whole run, its partitions unevenly: one worker (4
# partitions, 2 busy cores) took inputs up to 11-26 % of the run ahead of earlier-produced
# ones (638-1,028 of 4,000, 3,553-4,486 of 20,000, 10,693 of 100,000), hence a third of
# the run, and at least MIN_TAINT_GAP; paced traffic it keeps up with strays far less.
# `evaluate` measures it on every run and warns when it reaches the gap
# (tests/integration/test_simulate_transactions.py).
MIN_TAINT_GAP = 1000


def auto_taint_gap(count: int, paced: bool) -> int:
    """The default --taint-gap (see MIN_TAINT_GAP)."""
    return MIN_TAINT_GAP if paced else max(MIN_TAINT_GAP, count // 3)


def parse_tx_mix(text: str | None) -> dict[str, float]:
    """'ordinary=0.7,drainers=0.1' -> shares normalised to 1 (missing populations: 0).
    Empty or None -> DEFAULT_TX_MIX."""
    return parse_shares(text, TX_POPULATIONS, DEFAULT_TX_MIX)


@dataclass(frozen=True)
class TxConfig:
    count: int
    seed: int = 1
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TX_MIX))
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    event_rate: float = NOMINAL_TX_RATE
    run: str = ""
    rules: TxRules = field(default_factory=TxRules)
    taint_gap: int = MIN_TAINT_GAP  # records (truth.py); the command line's default: auto_taint_gap
    max_bytes: int = 65536

    @property
    def run_tag(self) -> str:
        return self.run or f"{self.seed}x{int(self.start_ts) % 1_000_000:06d}"


@dataclass
class TxTraffic(GeneratedTraffic):
    config: TxConfig
    probe_wallet: str  # blacklisted (last entry, kind wallet): the runner's probe transfers go to it

    probe_proves: ClassVar[str] = "scam_wallet"

    def probe(self, k: int) -> tuple[bytes | None, bytes]:
        # A zero transfer from a wallet of its own to the probe wallet: each probe comes from
        # a wallet no input uses and moves nothing (amount 0 taints nobody).
        sender = evm_address(self.run, "probe_sender", k)
        body = {"tx_id": f"probe-{self.run}-{k}", "ts": self.config.start_ts, "from": sender,
                "to": self.probe_wallet, "amount": 0, "asset": "ETH"}
        return sender.encode(), orjson.dumps(body)


def _body(p: PlannedTx, tx_id: str, ts: float) -> dict[str, Any]:
    body: dict[str, Any] = {"tx_id": tx_id, "ts": ts, "from": p.wire_from or p.sender, "to": p.wire_to or p.recipient,
                            "amount": p.amount, "asset": p.asset}
    body.update(p.extra)
    return body


def generate_transactions(cfg: TxConfig) -> TxTraffic:
    if cfg.taint_gap < 1:
        raise ValueError("taint_gap must be at least 1 record")
    rng = random.Random(cfg.seed)
    ctx = TxContext(rng=rng, run=cfg.run_tag, span=max(cfg.count / cfg.event_rate, 1.0), event_rate=cfg.event_rate,
                    taint_gap=cfg.taint_gap, rules=cfg.rules, max_bytes=cfg.max_bytes)
    counts = allocate(cfg.count, cfg.mix)
    for name, make in TX_POPULATIONS.items():  # fixed order: the mix's order must not matter
        n = counts.get(name, 0)
        kept: list[PlannedTx] = []
        while len(kept) < n:
            # The run is a window of traffic: what would be sent after its span is not part
            # of it (a paced run lasts its duration). A pattern that does not fit loses its
            # tail; the truth judges what is left.
            kept += [p for p in make(ctx, n - len(kept)) if 0.0 <= p.at + p.delay <= ctx.span]
        ctx.planned.extend(kept[:n])
    probe_wallet = ctx.wallet("probe")
    ctx.blacklist(probe_wallet, "simulator probe")  # last: applied after every other entry

    for serial, p in enumerate(ctx.planned):
        p.serial = serial
    ordered = sorted(ctx.planned, key=lambda p: (round(p.at + p.delay, 3), p.serial))

    transfers: list[Transfer | None] = []
    inputs: list[Input] = []
    ids: list[str | None] = []
    for i, p in enumerate(ordered):
        if p.sender is None or p.recipient is None:
            transfers.append(None)
            ids.append(p.tx_id)
            value, key = p.raw or b"", p.key
        else:
            tx_id, ts = f"tx-{ctx.run}-{p.serial}", round(cfg.start_ts + p.at, 3)
            transfers.append(Transfer(ts, p.sender, p.recipient, p.amount, p.asset))
            ids.append(tx_id)
            value, key = orjson.dumps(_body(p, tx_id, ts)), p.sender if p.key is None else p.key
        inputs.append(Input(i, key.encode() if key else None, value, round(p.at + p.delay, 3)))
    check_lateness(transfers, cfg.rules)
    rekeyed = {i for i, p in enumerate(ordered) if p.sender is not None and p.key is not None and p.key != p.sender}
    labels = reference_labels(transfers, blacklisted_wallets(ctx.entries), cfg.rules, cfg.taint_gap, rekeyed)

    truth = []
    for i, (p, t, tx_id) in enumerate(zip(ordered, transfers, ids, strict=True)):
        if t is None:
            expected = "rejected"
        elif labels[i].hard:
            expected = "fraud"
        else:
            expected = "clean_or_fraud" if labels[i].either else "clean"
        truth.append({
            "i": i,
            "tx_id": tx_id,
            "from": t.sender if t else None,
            "population": p.population,
            "role": p.role,
            "expected": expected,
            "hard": labels[i].hard,
            "either": labels[i].either,
            "error": p.error,
            "rekeyed": i in rekeyed,  # keyed otherwise: judged after a re-keying hop
            "taint_gap": cfg.taint_gap,  # the margin `either` was decided with (evaluate checks it)
        })
    return TxTraffic(inputs=inputs, truth=truth, entries=ctx.entries, run=ctx.run, config=cfg, probe_wallet=probe_wallet)
