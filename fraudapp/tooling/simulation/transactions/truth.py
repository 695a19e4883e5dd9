"""Exact expected transaction labels: a brute-force reference of CONTRACT §4b.

Written from the contract, not from the detector's code (nothing here imports
fraudapp.rules, fraudapp.state or the transaction stage): plain loops over the inputs in
production order, no windows kept, no pruning.

Order. Every rule but one reads the sender's own earlier transfers, "earlier" meaning
earlier in Kafka order of the sender's partition; a sender's transfers are keyed by its
wallet, so that is their production order. Those labels are exact.

`tainted_funds` is the exception. The receipt A -> B is judged on A's partition and B's
transfers on B's; the taint reaches B's partition through a global table, with a lag that
is small on an idle machine and unknown under load (and with a backlog the worker may
reach B's partition before A's). So whether B's transfer sees a receipt depends on how far
apart the two were produced. The reference takes a margin, `gap` records of production
order (`--taint-gap`):

* a receipt produced at least `gap` records *before* a transfer is seen by it;
* a receipt produced at least `gap` records *after* it is not;
* one closer than that may or may not be, and so may every receipt whose own taint came
  through such a close receipt (a chain link is only as certain as its weakest hop);
* a receipt keyed otherwise than by its sender (`rekeyed`) takes the worker's re-keying
  hop first, an unknown delay: it is never certain to be seen.

A transfer's `tainted_funds` is `hard` when it fires with only the certain receipts,
`either` when it fires only if some uncertain ones count (accepted both ways, like the
click truth's `either`, and reported apart), and absent otherwise. Seeing more receipts
can only lower a wallet's distance, so the detector's answer lies between the two as long
as its lag stays under `gap` records. `gap` = 1 means pure production order.

Taint distance (§4b): a wallet that received funds (amount > 0) at event time t from a
blacklisted wallet has distance 1 from t until t + TAINT_SECONDS; one that received at t
from a wallet whose distance d was in force at t has d + 1 over the same span. Only
distances up to TAINT_HOPS + 1 matter (and fire).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from fraudapp.settings import Settings
from fraudapp.tooling.simulation.truth import Expected, LatenessError

# CONTRACT §4b, in its order (verdicts list fraud types so).
TX_TYPES: tuple[str, ...] = ("scam_wallet", "tainted_funds", "wallet_velocity", "fan_out", "large_amount")
_EVM = re.compile(r"0[xX][0-9a-fA-F]{40}")


@dataclass(frozen=True)
class TxRules:
    taint_hops: int = 1
    taint_seconds: float = 604800.0
    velocity_threshold: int = 5
    velocity_seconds: float = 60.0
    fan_out_threshold: int = 10
    fan_out_seconds: float = 600.0
    large_factor: float = 20.0
    large_history: int = 50
    large_min_known: int = 5
    large_limits: tuple[tuple[str, float], ...] = ()  # (asset, absolute limit)
    lateness: float = 60.0

    @classmethod
    def from_settings(cls, s: Settings) -> TxRules:
        return cls(s.taint_hops, s.taint_seconds, s.wallet_velocity_threshold, s.wallet_velocity_seconds,
                   s.fan_out_threshold, s.fan_out_seconds, s.large_amount_factor, s.large_amount_history,
                   s.large_amount_min_known, tuple(sorted(s.large_amount_limit_of.items())), s.lateness_seconds)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A valid input, addresses in their compared form."""

    ts: float
    sender: str
    recipient: str
    amount: float
    asset: str


def compared(address: str) -> str:
    """§2b: EVM addresses compare case-insensitively (lower case), others exactly."""
    return address.lower() if _EVM.fullmatch(address) else address


def blacklisted_wallets(entries: Iterable[dict[str, Any]]) -> set[str]:
    """The wallets the run's blacklist updates add (and do not remove again), compared form."""
    wallets: set[str] = set()
    for e in entries:
        if e.get("kind") != "wallet":
            continue
        if e.get("op", "add") == "add":
            wallets.add(compared(e["value"]))
        else:
            wallets.discard(compared(e["value"]))
    return wallets


def _in_window(t: float, ts: float, window: float) -> bool:
    return ts - window <= t <= ts  # event time in [ts - W, ts], both ends


class _Taint:
    """Taint distances as seen by the transfer at production index x (brute force)."""

    def __init__(self, transfers: Sequence[Transfer | None], blacklisted: set[str], rules: TxRules, gap: int,
                 rekeyed: frozenset[int]) -> None:  # fmt: skip
        self.transfers, self.blacklisted, self.rules, self.gap = transfers, blacklisted, rules, gap
        self.rekeyed = rekeyed
        self.receipts: dict[str, list[int]] = defaultdict(list)  # wallet -> inputs moving funds to it
        for r, t in enumerate(transfers):
            if t is not None and t.amount > 0:
                self.receipts[t.recipient].append(r)
        self._memo: dict[tuple[str, float, int, int, bool], int | None] = {}

    def seen(self, r: int, x: int, certain: bool) -> bool:
        if r == x:
            return False
        if certain:
            return r <= x - self.gap and r not in self.rekeyed
        return r < x + self.gap  # a re-keyed one only comes later than produced, never sooner

    def distance(self, wallet: str, ts: float, x: int, budget: int, certain: bool) -> int | None:
        """The lowest distance <= `budget` of `wallet` in force at event time `ts`, from the
        receipts input `x` sees (certainly, or possibly); None when there is none."""
        key = (wallet, ts, x, budget, certain)
        if key in self._memo:
            return self._memo[key]
        best: int | None = None
        for r in self.receipts.get(wallet, ()):
            receipt = self.transfers[r]
            assert receipt is not None
            if not self.seen(r, x, certain) or not receipt.ts <= ts <= receipt.ts + self.rules.taint_seconds:
                continue
            if receipt.sender in self.blacklisted:
                d: int | None = 1
            elif budget >= 2:
                # the sender's distance as the receipt's own judge saw it, at the receipt's time
                up = self.distance(receipt.sender, receipt.ts, r, budget - 1, certain)
                d = None if up is None else up + 1
            else:
                d = None
            if d is not None and (best is None or d < best):
                best = d
        self._memo[key] = best
        return best


def reference_labels(transfers: Sequence[Transfer | None], blacklisted: set[str], rules: TxRules, gap: int,
                     rekeyed: Iterable[int] = ()) -> list[Expected]:  # fmt: skip
    """Expected fraud types of each input (None: a rejected input, no labels), §4b order.
    `rekeyed`: the inputs keyed otherwise than by their sender's compared form; each must
    be its sender's only transfer (the hop would reorder its sender's transfers)."""
    if gap < 1:
        raise ValueError("gap must be at least 1 record")
    rekeyed = frozenset(rekeyed)
    senders = {transfers[i].sender for i in rekeyed if transfers[i] is not None}  # type: ignore[union-attr]
    if sum(t is not None and t.sender in senders for t in transfers) > len(senders):
        raise ValueError("a transfer keyed otherwise must be its sender's only one")
    taint = _Taint(transfers, blacklisted, rules, gap, rekeyed)
    limits = dict(rules.large_limits)
    earlier: dict[str, list[Transfer]] = defaultdict(list)  # sender -> its transfers so far, production order
    out: list[Expected] = []
    for x, t in enumerate(transfers):
        if t is None:
            out.append(Expected([], []))
            continue
        hits: set[str] = set()
        maybe: set[str] = set()
        if t.sender in blacklisted or t.recipient in blacklisted:
            hits.add("scam_wallet")
        reach = rules.taint_hops + 1
        if taint.distance(t.sender, t.ts, x, reach, certain=True) is not None:
            hits.add("tainted_funds")
        elif taint.distance(t.sender, t.ts, x, reach, certain=False) is not None:
            maybe.add("tainted_funds")
        prior = earlier[t.sender]
        if sum(_in_window(p.ts, t.ts, rules.velocity_seconds) for p in prior) >= rules.velocity_threshold:
            hits.add("wallet_velocity")
        recipients = {p.recipient for p in prior if _in_window(p.ts, t.ts, rules.fan_out_seconds)} | {t.recipient}
        if len(recipients) >= rules.fan_out_threshold:
            hits.add("fan_out")
        amounts = [p.amount for p in prior if p.asset == t.asset][-rules.large_history :]
        limit = limits.get(t.asset)
        if (limit is not None and t.amount > limit) or (
            len(amounts) >= rules.large_min_known and t.amount > rules.large_factor * median(amounts)
        ):
            hits.add("large_amount")
        prior.append(t)
        out.append(Expected([ft for ft in TX_TYPES if ft in hits], [ft for ft in TX_TYPES if ft in maybe]))
    return out


def check_lateness(transfers: Sequence[Transfer | None], rules: TxRules) -> None:
    """Raise unless every transfer is within `lateness` of its sender's newest earlier one:
    beyond that the contract no longer promises exact counts (a generator bug)."""
    newest: dict[str, float] = {}
    for i, t in enumerate(transfers):
        if t is None:
            continue
        top = newest.get(t.sender, t.ts)
        if top - t.ts > rules.lateness:
            raise LatenessError(f"input {i}: wallet {t.sender} sends {top - t.ts:.1f} s behind its newest transfer")
        newest[t.sender] = max(top, t.ts)
