"""Transaction state and rules against brute force (hypothesis) and by example.

The reference recomputes every count from the whole history, in processing order: what
CONTRACT §4b says, with none of the state's pruning, sorting or JSON round trips."""

from __future__ import annotations

from statistics import median
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fraudapp.models import BlacklistEntry, Taint, Transaction, TxFeatures
from fraudapp.rules.wallet.engine import judge_transaction
from fraudapp.settings import Settings
from fraudapp.state.taint import TaintIndex, in_force, merged, passed_on, table_key
from fraudapp.state.wallets import WalletActivity, Windows

W = Windows(velocity=60, fan_out=600, history=50, min_known=5, alert=60, lateness=30, idle=86400)

# (sender, seconds after the previous transfer (negative: late, within lateness), recipient, asset, amount)
TRANSFERS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from([-29.0, -5.0, 0.0, 1.0, 7.5, 30.0, 60.0, 200.0, 600.0, 700.0]),
              st.integers(0, 12), st.sampled_from(["ETH", "USDT"]), st.sampled_from([0.0, 1.0, 2.5, 10.0, 400.0])),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(TRANSFERS)
def test_wallet_counts_equal_the_brute_force_reference(transfers: list[tuple[int, float, int, str, float]]) -> None:
    states: dict[int, Any] = {}
    newest: dict[int, float] = {}
    history: list[tuple[int, float, str, str, float]] = []
    clock = 1_800_000_000.0
    for sender, step, to, asset, amount in transfers:
        clock = max(clock + step, newest.get(sender, clock) - W.lateness) if step < 0 else clock + step
        ts = clock
        state = WalletActivity.from_json(states.get(sender))
        counts = state.aggregate(ts, f"w{to}", asset, amount, W)
        states[sender] = state.to_json()
        newest[sender] = max(newest.get(sender, ts), ts)

        mine = [h for h in history if h[0] == sender]
        assert counts.prior_in_velocity_window == sum(1 for h in mine if ts - W.velocity <= h[1] <= ts)
        assert counts.distinct_recipients == len({h[2] for h in mine if ts - W.fan_out <= h[1] <= ts} | {f"w{to}"})
        amounts = [h[4] for h in mine if h[3] == asset][-W.history:]
        assert counts.known_amounts == len(amounts)
        assert counts.median_amount == (median(amounts) if len(amounts) >= W.min_known else None)
        history.append((sender, ts, f"w{to}", asset, amount))


# (sender, recipient, seconds after the previous transfer, amount) over wallets 0..5; wallet 0 is blacklisted
CHAINS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from([0.0, 1.0, 50.0, 400.0]),
                            st.sampled_from([0.0, 1.0])), max_size=30)


@settings(max_examples=300, deadline=None)
@given(CHAINS, st.integers(0, 3))
@example([(0, 1, 0.0, 1.0), (1, 2, 1.0, 1.0), (2, 3, 1.0, 1.0), (3, 4, 1.0, 1.0)], 1)  # a laundering chain
@example([(0, 1, 0.0, 1.0), (1, 2, 50.0, 1.0), (2, 3, 50.0, 1.0), (2, 4, 1.0, 1.0)], 2)  # one receipt expires
def test_taint_equals_the_brute_force_distance(chain: list[tuple[int, int, float, float]], hops: int) -> None:
    """Processed in one order (one partition, no lag): a transfer is tainted iff its sender
    is within hops + 1 of the blacklisted wallet through earlier receipts in force."""
    seconds, blacklisted = 100.0, {"w0"}
    index, stored = TaintIndex(), {}
    done: list[tuple[str, str, float, float]] = []
    ts = 1_800_000_000.0
    for sender_n, recipient_n, step, amount in chain:
        ts += step
        sender, recipient = f"w{sender_n}", f"w{recipient_n}"
        taint = in_force(index.of(sender), ts, seconds)
        got = taint is not None and taint.hops <= hops + 1
        assert got == (_distance(done, sender, ts, seconds, blacklisted, hops) is not None), (sender, ts, done)
        given_on = passed_on(sender, sender in blacklisted, taint, amount, ts, f"t{len(done)}", hops)
        if given_on is not None:
            key = table_key(recipient, 0)
            stored[key] = merged(stored.get(key), given_on, seconds, 0.0)
            index.apply(key, stored[key])
        done.append((sender, recipient, ts, amount))


def _distance(done: list[tuple[str, str, float, float]], wallet: str, ts: float, seconds: float,
              blacklisted: set[str], hops: int) -> int | None:  # fmt: skip
    """The lowest taint distance of `wallet` in force at `ts`, by brute force over receipts."""
    best = None
    for i, (sender, recipient, t, amount) in enumerate(done):
        if recipient != wallet or amount <= 0 or not t <= ts <= t + seconds:
            continue
        if sender in blacklisted:
            d = 1
        else:
            upstream = _distance(done[:i], sender, t, seconds, blacklisted, hops)
            d = upstream + 1 if upstream is not None else None
        if d is not None and d <= hops + 1 and (best is None or d < best):
            best = d
    return best


def test_an_early_receipt_stays_in_force_whatever_came_after_it() -> None:
    """Nine receipts from a scam wallet, then a transfer between the first two: the first
    receipt is still in force (a capped list of the newest entries had dropped it)."""
    rows: list[list[Any]] | None = None
    index = TaintIndex()
    for i in range(9):
        given = passed_on("scam", True, None, 1.0, 1000.0 + i, f"t{i}", hops=1)
        assert given is not None
        rows = merged(rows, given, 3600.0, 60.0)
        index.apply(table_key("w", 0), rows)
    taint = in_force(index.of("w"), 1000.5, 3600.0)
    assert taint is not None and (taint.ts, taint.tx_id, taint.until) == (1000.0, "t0", 1008.0 + 3600.0)
    assert in_force(index.of("w"), 999.0, 3600.0) is None
    assert rows is not None and len(rows) == 1  # one run


def test_an_older_changelog_value_does_not_shrink_the_index() -> None:
    index = TaintIndex()
    older = merged(None, Taint(100.0, 1, "s", "t0"), 10.0, 0.0)
    newer = merged(older, Taint(200.0, 1, "s", "t1"), 10.0, 0.0)
    index.apply("w@0", newer)  # written locally first
    index.apply("w@0", older)  # then its own older changelog record arrives
    assert in_force(index.of("w"), 205.0, 10.0) is not None
    index.apply("w@0", None)
    assert index.of("w") == []


SETTINGS = Settings(large_amount_limits="ETH=1000")
TX = Transaction("t1", 1_800_000_000.0, "0xaa", "0xbb", 50.0, "USDT")
BAD = BlacklistEntry("wallet", "0xbb", reason="drainer")


@pytest.mark.parametrize(
    ("features", "tx", "fraud_types", "detail"),
    [
        (TxFeatures(), TX, [], None),
        (TxFeatures(recipient_entry=BAD), TX, ["scam_wallet"], "recipient 0xbb is blacklisted (drainer)"),
        (TxFeatures(taint=Taint(1_799_999_000.0, 2, "0xcc", "t0")), TX, ["tainted_funds"],
         "sender received from a wallet 1 hop(s) from a blacklisted one (0xcc, transfer t0 at 1799999000"),
        (TxFeatures(taint=Taint(1_799_999_000.0, 3, "0xcc", "t0")), TX, [], None),
        (TxFeatures(prior_in_velocity_window=5), TX, ["wallet_velocity"], "6th transfer from the sender in 60 s"),
        (TxFeatures(prior_in_velocity_window=4), TX, [], None),
        (TxFeatures(distinct_recipients=10), TX, ["fan_out"], "10 distinct recipients in 600 s (limit 10)"),
        (TxFeatures(median_amount=2.0, known_amounts=7), TX, ["large_amount"], "50 USDT is above 20 x the median 2"),
        (TxFeatures(median_amount=2.5, known_amounts=7), TX, [], None),  # 50 is not above 20 x 2.5
        (TxFeatures(), Transaction("t2", 1_800_000_000.0, "0xaa", "0xbb", 1000.5, "ETH"), ["large_amount"],
         "1000.5 ETH is above the limit of 1000"),
    ],
)
def test_each_rule_fires_with_its_reason(features: TxFeatures, tx: Transaction, fraud_types: list[str],
                                         detail: str | None) -> None:  # fmt: skip
    verdict = judge_transaction(tx, features, SETTINGS, now=1_800_000_001.0).to_dict()
    assert verdict["fraud_types"] == fraud_types
    assert verdict["verdict"] == ("fraud" if fraud_types else "clean")
    assert verdict["score"] == (0.0 if fraud_types else 100.0)
    assert (verdict["from"], verdict["to"]) == (tx.sender, tx.recipient)
    if detail is not None:
        assert detail in verdict["reasons"][0]["detail"]


def test_a_wallet_alerts_once_per_window_when_its_flagged_transfers_exceed_the_threshold() -> None:
    state = WalletActivity()
    t0 = 1_800_000_020.0
    results = []
    for i in range(6):
        state = WalletActivity.from_json(state.to_json())
        results.append(state.count_alert(t0 + i, [] if i == 1 else ["fan_out"], threshold=2, w=W))
    # flagged: 0, 2, 3 -> the 3rd flagged (4th transfer) exceeds 2; once per window
    assert [r and (r.start, r.transfers, r.flagged, r.fraud_types) for r in results] == [
        None, None, None, (1_800_000_000.0, 4, 3, {"fan_out": 3}), None, None]
    later = state.count_alert(t0 + 60, ["scam_wallet"], 0, W)
    assert later is not None and (later.start, later.transfers, later.flagged) == (1_800_000_060.0, 1, 1)


def test_state_expires_idle_seconds_after_the_newest_transfer() -> None:
    state = WalletActivity()
    state.aggregate(100.0, "x", "ETH", 1.0, W)
    state.aggregate(90.0, "y", "ETH", 1.0, W)
    assert state.expires_at(W) == 100.0 + W.idle == WalletActivity.json_expires_at(state.to_json(), W.idle)
    assert WalletActivity.json_expires_at(None, W.idle) == float("-inf")
