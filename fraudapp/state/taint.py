"""Tainted funds (CONTRACT §4b): which wallets received from a blacklisted or tainted one.

A wallet's *taint distance* is 1 when it received funds from a blacklisted wallet, and
d + 1 when it received from a wallet at distance d, by event time: a receipt at `t` from a
wallet whose taint was in force at `t` (its receipt at t' with t' <= t <= t' +
TAINT_SECONDS). `tainted_funds` fires on a transfer *from* a wallet with a taint in force at
the transfer's time and a distance of at most TAINT_HOPS + 1 (with TAINT_HOPS 1: received
from a scam wallet, or from a wallet that did). A zero amount moves no funds and taints
nothing (address-poisoning dust is not laundering).

The transfer A -> B is judged on A's partition; B's transfers on B's. So taint is the one
cross-partition rule: it travels through the `wallet-taint` global table, which every
worker reads, keyed `<wallet>@<partition>` so that each key has one writer (the owner of
the partition that judged the receipt). This module is the pure part: the entries and
the index every worker keeps of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fraudapp.models import Taint


def _until(entry: Taint, seconds: float) -> float:
    return entry.until if entry.until is not None else entry.ts + seconds


def in_force(entries: Iterable[Taint], ts: float, seconds: float) -> Taint | None:
    """The taint in force at event time `ts`: the lowest distance, then the latest run."""
    best: Taint | None = None
    for entry in entries:
        if entry.ts <= ts <= _until(entry, seconds) and (
            best is None or (entry.hops, -entry.ts) < (best.hops, -best.ts)
        ):
            best = entry
    return best


def runs(entries: Iterable[Taint], seconds: float) -> list[Taint]:
    """Receipts as continuous runs per distance: two whose in-force spans overlap or touch
    become one, from the first receipt (its source and transfer name the run) to the last
    one's end. Exact for `in_force`, and small: a key holds one run per distance and gap."""
    out: list[Taint] = []
    for entry in sorted(entries, key=lambda e: (e.hops, e.ts)):
        end = _until(entry, seconds)
        last = out[-1] if out else None
        if last is not None and last.hops == entry.hops and entry.ts <= (last.until or 0.0):
            out[-1] = Taint(last.ts, last.hops, last.source, last.tx_id, max(last.until or 0.0, end))
        else:
            out.append(Taint(entry.ts, entry.hops, entry.source, entry.tx_id, end))
    return out


def passed_on(sender: str, sender_blacklisted: bool, sender_taint: Taint | None, amount: float, ts: float,
              tx_id: str, hops: int) -> Taint | None:  # fmt: skip
    """The taint the recipient of a transfer gets from it (None: none within `hops` + 1)."""
    if amount <= 0:
        return None
    distance = 1 if sender_blacklisted else (sender_taint.hops + 1 if sender_taint is not None else None)
    if distance is None or distance > hops + 1:
        return None
    return Taint(ts=ts, hops=distance, source=sender, tx_id=tx_id)


def merged(rows: list[list[Any]] | None, new: Taint, seconds: float, lateness: float) -> list[list[Any]]:
    """A key's stored runs with the receipt `new` added: runs that ended more than
    `lateness` before the newest receipt are dropped (no transfer within lateness can
    still see them)."""
    entries = runs([*decode(rows), new], seconds)
    newest = max(e.ts for e in [*entries, new])
    return [encode(e) for e in entries if (e.until or 0.0) + lateness >= newest]


def expired(rows: list[list[Any]] | None, watermark: float, seconds: float, lateness: float) -> bool:
    """No run can be in force for a transfer at or after `watermark` - lateness."""
    return all(_until(e, seconds) + lateness < watermark for e in decode(rows))


def encode(entry: Taint) -> list[Any]:
    return [entry.ts, entry.hops, entry.source, entry.tx_id, entry.until]


def decode(rows: list[list[Any]] | None) -> list[Taint]:
    return [Taint(float(row[0]), int(row[1]), str(row[2]), str(row[3]), float(row[4]) if row[4] is not None else None)
            for row in rows or ()]


def table_key(wallet: str, partition: int) -> str:
    return f"{wallet}@{partition}"


def wallet_of(key: str) -> str:
    return key.rpartition("@")[0]


class TaintIndex:
    """Every tainted wallet's entries, from all partitions' keys, in memory."""

    def __init__(self) -> None:
        self._by_key: dict[str, list[Taint]] = {}
        self._keys_of: dict[str, set[str]] = {}

    def apply(self, key: str, rows: list[list[Any]] | None) -> None:
        """A key's value written (None: deleted). Values of one key only grow between
        deletions, so a value is merged with the one held, not put over it: the writer's own
        newer value survives its older changelog records arriving after it."""
        wallet = wallet_of(key)
        if rows:
            held = self._by_key.get(key, [])
            self._by_key[key] = runs([*held, *decode(rows)], 0.0) if held else decode(rows)
            self._keys_of.setdefault(wallet, set()).add(key)
            return
        self._by_key.pop(key, None)
        keys = self._keys_of.get(wallet)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_of[wallet]

    def of(self, wallet: str) -> list[Taint]:
        return [entry for key in self._keys_of.get(wallet, ()) for entry in self._by_key[key]]

    def table_keys(self) -> list[str]:
        return list(self._by_key)

    def __len__(self) -> int:
        return len(self._keys_of)
