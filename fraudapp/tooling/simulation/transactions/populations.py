"""Who sends what: one function per population of wallets, each planning about `n` transfers.

A population decides what each transfer says (its wallets in their compared form, the
amount, the asset, how the addresses are written on the wire) and when it happens (`at`,
seconds of event time after the run's start; `delay` more before it is sent). Ids,
timestamps, bytes, production order and the truth are the generator's and the truth
module's job. Populations aim at one rule each, but never promise a label: the truth
computes every label from the contract, so a pattern squeezed into a short run (which
may, say, also trip wallet_velocity) is still judged exactly.

Why the patterns look as they do (default thresholds, CONTRACT §4b):
* gaps of >= 13 s between a wallet's transfers keep it under wallet_velocity (5 earlier
  in 60 s needs 5 gaps summing to <= 60 s), unless the population is about velocity;
* ordinary amounts stay within 0.3x..3x of a wallet's typical amount, so never above 20x
  the median of its history (large_amount);
* a laundering chain's hops are spread 1.25 x `taint_gap` records apart in production
  order, the margin the truth needs to call tainted_funds certain rather than
  order-dependent (truth.py), and the chain ends with a third-hop mule that is never
  tainted.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from fraudapp.tooling.simulation import catalog
from fraudapp.tooling.simulation.transactions.truth import TxRules
from fraudapp.tooling.simulation.transactions.wallets import (
    bad_checksum,
    checksummed,
    evm_address,
    tron_address,
)

# The typical amount of a wallet per asset: (log-normal median, sigma, decimals).
ASSETS: dict[str, tuple[float, float, int]] = {"ETH": (0.4, 1.0, 6), "USDT": (150.0, 1.1, 2), "USDC": (120.0, 1.0, 2)}
# Wallets whose transfers come through a platform carry its optional fields (§2b).
PLATFORM_SHARE = 0.3
BLACKLIST_TTL = 21600  # the run's entries outlive it (6 h) and then clean themselves up


@dataclass(slots=True)
class PlannedTx:
    population: str
    role: str  # what this transfer is within its population (truth records carry it)
    at: float  # event time, seconds after the run's start (may be < 0: an old receipt)
    sender: str | None = None  # `from` in its compared form (None: malformed input)
    recipient: str | None = None  # `to` in its compared form
    amount: float = 0.0
    asset: str = "ETH"
    wire_from: str | None = None  # `from` as written, when not the compared form (EIP-55)
    wire_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # optional fields: chain, fee, ip, ...
    raw: bytes | None = None  # a malformed input's exact bytes
    key: str | None = None  # Kafka key when not the sender's compared form ("": no key)
    error: str | None = None  # expected rejection code of a malformed input
    tx_id: str | None = None  # a malformed input's tx_id, when it has one
    delay: float = 0.0  # sent this long after `at`
    serial: int = 0  # generation order: the tie-break of production order


@dataclass
class TxContext:
    rng: random.Random
    run: str
    span: float  # seconds of event time the run covers
    event_rate: float  # transfers per second of event time (production order follows it)
    taint_gap: int  # records between a receipt and the transfers it taints (truth.py)
    rules: TxRules
    max_bytes: int = 65536  # the detector's MAX_TRANSACTION_BYTES: `oversize` inputs exceed it
    entries: list[dict[str, Any]] = field(default_factory=list)  # blacklist updates to publish
    planned: list[PlannedTx] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)

    def _next(self, role: str) -> int:
        n = self._ids.get(role, 0)
        self._ids[role] = n + 1
        return n

    def wallet(self, role: str) -> str:
        return evm_address(self.run, role, self._next(role))

    def tron(self, role: str) -> str:
        return tron_address(self.run, role, self._next("tron-" + role))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{self.run}-{self._next('id-' + prefix)}"

    def start(self, duration: float) -> float:
        """A start at which a pattern lasting `duration` seconds fits in the span, if it can."""
        return self.rng.uniform(0.0, max(0.0, self.span - duration))

    def fit(self, duration: float) -> float:
        """How much to squeeze a pattern's gaps so that it fits in the span (1: not at all)."""
        return min(1.0, self.span * 0.95 / duration) if duration > 0 else 1.0

    @property
    def calm(self) -> float:
        """The shortest gap that keeps a wallet under wallet_velocity: THRESHOLD earlier
        transfers within the window need THRESHOLD gaps summing to at most the window."""
        return self.rules.velocity_seconds / max(1, self.rules.velocity_threshold) + 0.5

    def spread(self, gaps: list[float], floor: float = 0.0) -> tuple[float, list[float]]:
        """(start, gaps) of a pattern: the gaps squeezed to fit the span but none below
        `floor` (a pattern that still does not fit loses its tail to the span's end)."""
        squeeze = self.fit(sum(gaps))
        fitted = [max(floor, g * squeeze) for g in gaps]
        return self.start(sum(fitted)), fitted

    def blacklist(self, wallet: str, reason: str) -> None:
        # Half the entries name the wallet in its EIP-55 form, as scam trackers publish
        # them: the detector must compare them in lower case.
        value = checksummed(wallet) if wallet.startswith("0x") and self.rng.random() < 0.5 else wallet
        self.entries.append({"op": "add", "kind": "wallet", "value": value, "reason": f"{reason} {self.run}",
                             "ttl_seconds": BLACKLIST_TTL})


def typical(rng: random.Random, asset: str) -> float:
    median, sigma, _ = ASSETS[asset]
    return median * rng.lognormvariate(0.0, sigma)


def amount(rng: random.Random, asset: str, base: float, low: float, high: float) -> float:
    decimals = ASSETS[asset][2]
    return max(round(base * rng.uniform(low, high), decimals), 10.0**-decimals)


def _platform(ctx: TxContext) -> dict[str, Any]:
    rng = ctx.rng
    return {"ip": catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS), "device_id": ctx.new_id("dev"),
            "platform_user": ctx.new_id("u")}


def _chain(address: str) -> dict[str, Any]:
    return {"chain": "tron" if address.startswith("T") else "ethereum"}


def transfer(population: str, role: str, at: float, sender: str, recipient: str, value: float, asset: str,
             **fields: Any) -> PlannedTx:
    return PlannedTx(population, role, at, sender, recipient, value, asset, extra=_chain(sender), **fields)


def _gaps(rng: random.Random, count: int, low: float, high: float) -> list[float]:
    return [rng.uniform(low, high) for _ in range(count)]


def ordinary(ctx: TxContext, n: int) -> list[PlannedTx]:
    """People paying a few friends, shops or exchanges: 1-5 transfers, human pace, amounts
    around their own typical one. Some on Tron; some addresses written EIP-55 (copied from
    a wallet app); a few one-off senders keyed otherwise (re-keyed by the worker)."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    while len(out) < n:
        tron = rng.random() < 0.1
        user = ctx.tron("user") if tron else ctx.wallet("user")
        asset = "USDT" if tron else rng.choice(("ETH", "ETH", "USDT", "USDC"))
        base = typical(rng, asset)
        payees = [ctx.tron("payee") if tron else ctx.wallet("payee") for _ in range(rng.randint(1, 3))]
        k = rng.choices((1, 2, 3, 4, 5), weights=(30, 25, 20, 15, 10))[0]
        t, gaps = ctx.spread(_gaps(rng, k - 1, 20.0, 600.0), ctx.calm)
        platform = _platform(ctx) if rng.random() < PLATFORM_SHARE else {}
        for j in range(k):
            to = rng.choice(payees)
            tx = transfer("ordinary", "payment", t, user, to, amount(rng, asset, base, 0.3, 3.0), asset)
            tx.extra.update(platform)
            if rng.random() < 0.3:
                tx.extra["fee"] = round(rng.uniform(0.0001, 0.004), 6)
            if not tron and rng.random() < 0.05:
                tx.wire_from, tx.role = checksummed(user), "checksummed_from"
            elif not tron and rng.random() < 0.05:
                tx.wire_to, tx.role = checksummed(to), "checksummed_to"
            if k == 1 and not tron and rng.random() < 0.1:
                # Keyed otherwise: the worker re-keys it to the sender's partition first. A
                # wallet's only transfer, so the hop cannot reorder the wallet's transfers.
                tx.wire_from = checksummed(user)
                tx.key, tx.role = rng.choice((tx.wire_from, "")), "keyed_otherwise"
            out.append(tx)
            if j < k - 1:
                t += gaps[j]
    return out


def scam_victims(ctx: TxContext, n: int) -> list[PlannedTx]:
    """A blacklisted scam wallet and its victims paying it: each payment is scam_wallet.
    Some victims paid someone else before (clean), some copy the scam address in EIP-55 form."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    while len(out) < n:
        scam = ctx.wallet("scam")
        ctx.blacklist(scam, "simulated phishing")
        t0 = ctx.start(300.0)
        for _ in range(rng.randint(3, 12)):
            victim = ctx.wallet("victim")
            asset = rng.choice(("ETH", "USDT", "USDC"))
            base = typical(rng, asset)
            at = t0 + rng.uniform(0.0, min(300.0, ctx.span))
            if rng.random() < 0.4:
                earlier = max(0.0, at - rng.uniform(20.0, 200.0))
                out.append(transfer("scam_victims", "victim_before", earlier, victim, ctx.wallet("payee"),
                                    amount(rng, asset, base, 0.3, 3.0), asset))
            tx = transfer("scam_victims", "victim", at, victim, scam, amount(rng, asset, base, 0.5, 2.0), asset)
            if rng.random() < 0.2:
                tx.wire_to = checksummed(scam)
            out.append(tx)
    return out


def drainers(ctx: TxContext, n: int) -> list[PlannedTx]:
    """A drained wallet (stolen key, malicious approval) emptied to many fresh addresses, one
    every 13-40 s: the 10th distinct recipient within 10 minutes is fan_out."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    while len(out) < n:
        drainer = ctx.wallet("drainer")
        asset = rng.choice(("ETH", "USDT", "USDC"))
        base = typical(rng, asset)
        k = rng.randint(10, 18)
        t, gaps = ctx.spread(_gaps(rng, k - 1, 13.0, 40.0), ctx.calm)
        for j in range(k):
            out.append(transfer("drainers", "drain", t, drainer, ctx.wallet("sink"),
                                amount(rng, asset, base, 0.8, 1.25), asset))
            if j < k - 1:
                t += gaps[j]
    return out


def velocity_bots(ctx: TxContext, n: int) -> list[PlannedTx]:
    """Bots cycling funds between a few of their own wallets every 1-8 s: from the 6th
    transfer within a minute on, wallet_velocity. A fifth are sent up to 4 s late, so a
    bot's transfers are not all in event-time order (counted by event time, in Kafka order)."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    while len(out) < n:
        bot = ctx.wallet("bot")
        own = [ctx.wallet("bot_own") for _ in range(rng.randint(1, 3))]
        asset = rng.choice(("ETH", "USDT"))
        base = typical(rng, asset)
        k = rng.randint(8, 40)
        t, gaps = ctx.spread(_gaps(rng, k - 1, 1.0, 8.0))
        for j in range(k):
            tx = transfer("velocity_bots", "bot", t, bot, rng.choice(own), amount(rng, asset, base, 0.9, 1.1), asset)
            if rng.random() < 0.2:
                tx.delay = rng.uniform(0.0, 4.0)
            out.append(tx)
            if j < k - 1:
                t += gaps[j]
    return out


def whales(ctx: TxContext, n: int) -> list[PlannedTx]:
    """Funds and traders moving large sums every time (hundreds of ETH, millions of USDT):
    large but normal for them, so clean."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    while len(out) < n:
        whale = ctx.wallet("whale")
        asset = rng.choice(("ETH", "USDT"))
        base = rng.uniform(300.0, 3000.0) if asset == "ETH" else rng.uniform(5e5, 5e6)
        desks = [ctx.wallet("desk") for _ in range(rng.randint(2, 4))]
        k = rng.randint(6, 12)
        t, gaps = ctx.spread(_gaps(rng, k - 1, 20.0, 120.0), ctx.calm)
        for j in range(k):
            out.append(transfer("whales", "whale", t, whale, rng.choice(desks), amount(rng, asset, base, 0.5, 2.0),
                                asset))
            if j < k - 1:
                t += gaps[j]
    return out


def large_one_off(ctx: TxContext, n: int) -> list[PlannedTx]:
    """A normal history then one transfer far above it (an account takeover emptying the
    wallet): large_amount. Two look-alikes that must stay clean: a young wallet (fewer than
    LARGE_AMOUNT_MIN_KNOWN amounts) and a first transfer in another asset."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    known = ctx.rules.large_min_known
    while len(out) < n:
        user = ctx.wallet("holder")
        variant = rng.choice(("history", "history", "history", "young", "new_asset"))
        asset = "USDT" if variant == "new_asset" else rng.choice(("ETH", "USDT", "USDC"))
        base = typical(rng, asset)
        before = rng.randint(0, max(0, known - 1)) if variant == "young" else rng.randint(known, known + 7)
        after = rng.randint(0, 2) if variant == "history" else 0
        t, gaps = ctx.spread(_gaps(rng, before + after, 15.0, 60.0), ctx.calm)
        payees = [ctx.wallet("payee") for _ in range(rng.randint(1, 3))]
        plan = ["normal"] * before + ["one_off" if variant == "history" else variant] + ["after"] * after
        for j, role in enumerate(plan):
            if role == "new_asset":
                tx = transfer("large_one_off", role, t, user, ctx.wallet("exchange"),
                              amount(rng, "ETH", typical(rng, "ETH") * 40, 2.0, 10.0), "ETH")
            elif role in ("one_off", "young"):
                tx = transfer("large_one_off", role, t, user, ctx.wallet("exchange"),
                              amount(rng, asset, base, 60.0, 400.0), asset)
            else:
                tx = transfer("large_one_off", role, t, user, rng.choice(payees), amount(rng, asset, base, 0.5, 2.0),
                              asset)
            out.append(tx)
            if j < len(gaps):
                t += gaps[j]
    return out


# kind -> the error code CONTRACT §6 / validate.py gives it
MALFORMED_TX_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "missing_field": "missing_field",
    "negative_amount": "invalid_value",
    "bad_checksum": "invalid_value",
    "empty": "empty",
    "not_object": "not_object",
    "wrong_type": "wrong_type",
    "invalid_time": "invalid_time",
    "invalid_utf8": "invalid_utf8",
    "oversize": "oversize",
    "invalid_ip": "invalid_ip",
}


def malformed_transfer(ctx: TxContext, kind: str, max_bytes: int = 65536) -> tuple[bytes, str, str | None]:
    """(bytes, key, tx_id) of an input that CONTRACT §2b rejects as MALFORMED_TX_KINDS[kind];
    keyed by its sender's compared form, as a producer would."""
    sender = ctx.wallet("bad")
    base: dict[str, Any] = {"tx_id": ctx.new_id("bad"), "ts": 1_767_225_600.0, "from": sender,
                            "to": ctx.wallet("bad_to"), "amount": 1.5, "asset": "ETH"}
    if kind == "not_json":
        raw = f"tx_id={base['tx_id']}&from={sender}&amount=1.5".encode()
    elif kind == "missing_field":
        raw = orjson.dumps({k: v for k, v in base.items() if k != "amount"})
    elif kind == "negative_amount":
        raw = orjson.dumps({**base, "amount": -1.5})
    elif kind == "bad_checksum":
        raw = orjson.dumps({**base, "from": bad_checksum(sender)})
    elif kind == "empty":
        raw = b""
    elif kind == "not_object":
        raw = orjson.dumps([base])
    elif kind == "wrong_type":
        raw = orjson.dumps({**base, "amount": "1.5"})
    elif kind == "invalid_time":
        raw = orjson.dumps({**base, "ts": base["ts"] * 1000})  # milliseconds
    elif kind == "invalid_utf8":
        raw = b'{"tx_id": "\xff\xfe broken", "from": "' + sender.encode() + b'"}'
    elif kind == "oversize":
        raw = orjson.dumps({**base, "memo": "x" * max_bytes})
    elif kind == "invalid_ip":
        raw = orjson.dumps({**base, "ip": "999.12.0.1"})
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    tx_id = base["tx_id"] if kind not in ("not_json", "empty", "invalid_utf8", "not_object") else None
    return raw, sender, tx_id


def malformed(ctx: TxContext, n: int) -> list[PlannedTx]:
    """Every kind of bad input in turn (two of them rejected as invalid_value)."""
    kinds = list(MALFORMED_TX_KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        raw, key, tx_id = malformed_transfer(ctx, kind, ctx.max_bytes)
        out.append(PlannedTx("malformed", kind, ctx.start(0.0), raw=raw, key=key, error=MALFORMED_TX_KINDS[kind],
                             tx_id=tx_id))
    return out


def laundering(ctx: TxContext, n: int) -> list[PlannedTx]:
    """Victims pay a scam wallet, which cashes out through a chain of mules:

        scam -> mule1 -> mule2 -> mule3 -> exchange

    The scam wallet's transfers are scam_wallet; mule1 (1 hop) and mule2 (2 hops) send
    tainted funds; mule3 (3 hops) is beyond TAINT_HOPS + 1 and clean. Most chains send
    each hop after 1.25 x taint_gap records of the other populations have been sent since
    the receipt that taints it (the truth can be sure the detector saw the receipt); a
    quarter forward within seconds (`quick_` roles), as launderers racing a freeze do, and
    their tainted_funds depends on which partition the detector reaches first (`either`
    in the truth). Beside the chain: a zero-amount "dust" transfer from the scam wallet
    (taints nothing), and receipts from other scam wallets back-dated to just past and
    just within TAINT_SECONDS (the taint has expired / is still in force when the wallet
    sends on)."""
    rng = ctx.rng
    out: list[PlannedTx] = []
    seconds = ctx.rules.taint_seconds
    records = math.ceil(1.25 * ctx.taint_gap)
    sent = sorted(p.at + p.delay for p in ctx.planned)  # the other populations, planned before

    def after(t: float) -> float:
        """The event time by which `records` more of the others' inputs are sent after `t`
        (beyond them, or with none planned: at the run's mean density)."""
        k = bisect.bisect_right(sent, t) + records
        return sent[k] + 0.001 if k < len(sent) else t + records / ctx.event_rate

    while len(out) < n:
        quick = rng.random() < 0.25
        hop = rng.uniform(2.0, 20.0) if quick else records / ctx.event_rate  # the second: an estimate
        duration = 2 * hop + 60.0
        squeeze = ctx.fit(duration)
        t0 = ctx.start(duration * squeeze)
        prefix = "quick_" if quick else ""
        scam = ctx.wallet("scam")
        ctx.blacklist(scam, "simulated scam cash-out")
        total = 0.0
        for _ in range(rng.randint(1, 3)):
            value = amount(rng, "ETH", typical(rng, "ETH"), 0.5, 2.0)
            total += value
            out.append(transfer("laundering", "victim", t0 + rng.uniform(0.0, 5.0) * squeeze, ctx.wallet("victim"),
                                scam, value, "ETH"))
        cash_out = t0 + 10.0 * squeeze
        first = cash_out + hop * squeeze if quick else after(cash_out)  # mule1 sends on from here
        second = first + (10.0 + hop) * squeeze if quick else after(first + 10.0 * squeeze)  # mule2
        mule1 = ctx.wallet("mule1")
        out.append(transfer("laundering", "cash_out", cash_out, scam, mule1, round(total * 0.97, 6), "ETH"))
        if rng.random() < 0.5:
            dusted = ctx.wallet("dusted")
            out.append(transfer("laundering", "dust", cash_out + 1.0 * squeeze, scam, dusted, 0.0, "ETH"))
            out.append(transfer("laundering", "dusted", first + 5.0 * squeeze, dusted, ctx.wallet("payee"),
                                amount(rng, "ETH", typical(rng, "ETH"), 0.5, 2.0), "ETH"))
        mules2 = [ctx.wallet("mule2") for _ in range(rng.randint(1, 2))]
        for mule2 in mules2:
            out.append(transfer("laundering", prefix + "mule1", first + rng.uniform(0.0, 10.0) * squeeze, mule1, mule2,
                                round(total * 0.9 / len(mules2), 6), "ETH"))
        for mule2 in mules2:
            at = second + rng.uniform(0.0, 10.0) * squeeze  # after every mule1 transfer above
            mule3 = ctx.wallet("mule3")
            out.append(transfer("laundering", prefix + "mule2", at, mule2, mule3,
                                round(total * 0.8 / len(mules2), 6), "ETH"))
            out.append(transfer("laundering", prefix + "mule3", at + rng.uniform(5.0, 30.0) * squeeze, mule3,
                                ctx.wallet("exchange"), round(total * 0.75 / len(mules2), 6), "ETH"))
        if not quick and rng.random() < 0.5:
            # Old receipts, produced with the chain's cash-out, stamped a week back: one just
            # past TAINT_SECONDS when its wallet sends on, one just within it. Both margins
            # (>= 10 min) stay clear of the detector's lateness (60 s) around expiry.
            onward = first + rng.uniform(0.0, 10.0) * squeeze
            for role, back in (("expired", seconds + rng.uniform(600.0, 3600.0)),
                               ("old_taint", seconds - rng.uniform(600.0, 3600.0))):
                old_scam, wallet = ctx.wallet("scam_old"), ctx.wallet(role)
                ctx.blacklist(old_scam, "simulated scam (last week)")
                receipt = transfer("laundering", role + "_receipt", onward - back, old_scam, wallet,
                                   amount(rng, "ETH", typical(rng, "ETH"), 0.5, 2.0), "ETH")
                receipt.delay = cash_out - receipt.at  # sent with the cash-out, stamped in the past
                out.append(receipt)
                out.append(transfer("laundering", role, onward, wallet, ctx.wallet("exchange"),
                                    amount(rng, "ETH", typical(rng, "ETH"), 0.3, 1.0), "ETH"))
    return out


TX_POPULATIONS: dict[str, Callable[[TxContext, int], list[PlannedTx]]] = {
    "ordinary": ordinary,
    "scam_victims": scam_victims,
    "drainers": drainers,
    "velocity_bots": velocity_bots,
    "whales": whales,
    "large_one_off": large_one_off,
    "malformed": malformed,
    "laundering": laundering,  # last: it spaces its hops by the records the others send in between
}
