"""The transaction simulator (`--stream transactions`): a deterministic generator with every
population, a brute-force truth of CONTRACT §4b checked rule by rule on small tables
(taint hops and expiry, the order-dependent `either` marking included) and against the
worker's own pure logic run in production order, and the accuracy report. No broker."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from eth_utils import is_checksum_address

from fraudapp.models import TX_FRAUD_TYPES, BlacklistEntry, TxFeatures
from fraudapp.settings import Settings
from fraudapp.tooling.evaluation import index_outputs
from fraudapp.tooling.simulation.mix import MixError, allocate
from fraudapp.tooling.simulation.transactions.evaluation import evaluate_transactions, largest_inversion
from fraudapp.tooling.simulation.transactions.generator import (
    DEFAULT_TX_MIX,
    MIN_TAINT_GAP,
    TxConfig,
    auto_taint_gap,
    generate_transactions,
    parse_tx_mix,
)
from fraudapp.tooling.simulation.transactions.populations import MALFORMED_TX_KINDS, TX_POPULATIONS
from fraudapp.tooling.simulation.transactions.truth import (
    TX_TYPES,
    Transfer,
    TxRules,
    blacklisted_wallets,
    compared,
    reference_labels,
)
from fraudapp.tooling.simulation.transactions.wallets import bad_checksum, checksummed, evm_address
from fraudapp.validate import Rejection, parse_transaction

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CFG = TxConfig(count=4000, seed=5, start_ts=1_767_225_600.0)


@pytest.fixture(scope="module")
def traffic():
    return generate_transactions(CFG)


# -- the generator -------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_traffic_and_truth(traffic) -> None:
    again = generate_transactions(CFG)
    assert again.input_lines() == traffic.input_lines()
    assert again.truth_lines() == traffic.truth_lines()
    assert orjson.dumps(again.entries) == orjson.dumps(traffic.entries)
    assert [(i.key, i.emit) for i in again.inputs] == [(i.key, i.emit) for i in traffic.inputs]


def test_another_seed_or_start_gives_other_traffic(traffic) -> None:
    assert generate_transactions(TxConfig(count=4000, seed=6, start_ts=CFG.start_ts)).input_lines() != \
        traffic.input_lines()
    other = generate_transactions(TxConfig(count=4000, seed=5, start_ts=CFG.start_ts + 1))
    # another run tag: no wallet in common, so runs against one detector never share state
    wallets = {t["from"] for t in traffic.truth if t["from"]}
    assert not wallets & {t["from"] for t in other.truth if t["from"]}


def test_every_population_rule_and_malformed_kind_is_present(traffic) -> None:
    assert Counter(t["population"] for t in traffic.truth) == Counter(allocate(CFG.count, DEFAULT_TX_MIX))
    assert set(TX_POPULATIONS) == {t["population"] for t in traffic.truth}
    assert {ft for t in traffic.truth for ft in t["hard"]} == set(TX_TYPES)
    assert {ft for t in traffic.truth for ft in t["either"]} == {"tainted_funds"}
    assert {t["role"] for t in traffic.truth if t["population"] == "malformed"} == set(MALFORMED_TX_KINDS)


def test_populations_get_the_labels_they_are_about(traffic) -> None:
    by_role: dict[tuple[str, str], Counter[tuple[tuple[str, ...], tuple[str, ...]]]] = defaultdict(Counter)
    for t in traffic.truth:
        by_role[(t["population"], t["role"])][(tuple(t["hard"]), tuple(t["either"]))] += 1

    def labels(population: str, *roles: str) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
        return {k for (p, r), c in by_role.items() if p == population and (not roles or r in roles) for k in c}

    clean = ((), ())
    assert labels("ordinary") == {clean}
    assert labels("whales") == {clean}
    assert labels("scam_victims", "victim") == {(("scam_wallet",), ())}
    assert labels("scam_victims", "victim_before") == {clean}
    assert (("fan_out",), ()) in labels("drainers")
    assert all("wallet_velocity" not in hard for hard, _ in labels("drainers"))
    assert (("wallet_velocity",), ()) in labels("velocity_bots")
    assert labels("large_one_off", "one_off") == {(("large_amount",), ())}
    assert labels("large_one_off", "normal", "after", "young", "new_asset") == {clean}
    tainted = (("tainted_funds",), ())
    assert labels("laundering", "mule1", "mule2", "old_taint") == {tainted}
    assert labels("laundering", "quick_mule1", "quick_mule2") == {((), ("tainted_funds",))}
    assert labels("laundering", "mule3", "quick_mule3", "expired", "dusted") == {clean}
    assert labels("laundering", "cash_out", "dust", "victim", "expired_receipt", "old_taint_receipt") == {
        (("scam_wallet",), ())}


def test_inputs_validate_as_the_truth_says(traffic) -> None:
    seen = Counter()
    for inp, t in zip(traffic.inputs, traffic.truth, strict=True):
        parsed = parse_transaction(inp.value)
        if t["expected"] == "rejected":
            assert isinstance(parsed, Rejection) and parsed.error == t["error"], (t, parsed)
            continue
        assert not isinstance(parsed, Rejection), (t, parsed)
        assert parsed.tx_id == t["tx_id"] and parsed.sender == t["from"]
        assert not {"population", "role", "expected", "hard"} & set(orjson.loads(inp.value))  # labels stay out
        body = orjson.loads(inp.value)
        seen["checksummed"] += body["from"] != parsed.sender or body["to"] != parsed.recipient
        seen["tron"] += body["from"].startswith("T")
        if t["rekeyed"]:
            seen["rekeyed"] += 1
            assert inp.key != parsed.sender.encode()
        else:
            assert inp.key == parsed.sender.encode()  # keyed by the sender's compared form
    assert seen["checksummed"] > 0 and seen["tron"] > 0 and seen["rekeyed"] > 0, seen


def test_the_blacklist_names_wallets_in_both_forms_and_the_probe_last(traffic) -> None:
    assert {e["kind"] for e in traffic.entries} == {"wallet"}
    values = [e["value"] for e in traffic.entries]
    assert any(is_checksum_address(v) and v != v.lower() for v in values)
    assert any(v == v.lower() for v in values)
    assert compared(values[-1]) == traffic.probe_wallet
    assert blacklisted_wallets(traffic.entries) == {compared(v) for v in values}


def test_each_population_alone() -> None:
    for population in TX_POPULATIONS:
        t = generate_transactions(TxConfig(count=150, seed=2, mix={population: 1.0}))
        assert len(t.inputs) == 150 and {r["population"] for r in t.truth} == {population}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ordinary=3,drainers=1", {"ordinary": 0.75, "drainers": 0.25}), ("", DEFAULT_TX_MIX),
     ("laundering=1,malformed=0", {"laundering": 1.0})],
)
def test_parse_tx_mix(text: str, expected: dict[str, float]) -> None:
    assert parse_tx_mix(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["humans=1", "ordinary", "ordinary=x", "ordinary=-1", "ordinary=0"])
def test_parse_tx_mix_rejects(text: str) -> None:
    with pytest.raises(MixError):
        parse_tx_mix(text)


def test_the_taint_gap_grows_with_a_run_sent_at_full_speed() -> None:
    assert auto_taint_gap(3000, paced=False) == MIN_TAINT_GAP
    assert auto_taint_gap(30000, paced=False) == 10000
    assert auto_taint_gap(30000, paced=True) == MIN_TAINT_GAP


def test_addresses() -> None:
    a = evm_address("run", "user", 1)
    assert a == a.lower() and len(a) == 42 and a != evm_address("run", "user", 2)
    assert is_checksum_address(checksummed(a)) and checksummed(a) != a
    bad = bad_checksum(a)
    assert bad.lower() == a and not is_checksum_address(bad) and bad != bad.lower() and bad != "0x" + bad[2:].upper()
    assert parse_transaction(orjson.dumps({"tx_id": "t", "ts": 1.8e9, "from": bad, "to": a, "amount": 1,
                                           "asset": "ETH"})).error == "invalid_value"  # type: ignore[union-attr]


def test_the_simulator_never_imports_the_detector() -> None:
    """An independent reference: nothing of the worker's rules, state or stage."""
    code = ("import sys, fraudapp.tooling.simulation.transactions.runner, fraudapp.tooling.simulation.transactions."
            "evaluation, fraudapp.commands.simulate, fraudapp.commands.evaluate\n"
            "print([m for m in sys.modules if m.startswith(('fraudapp.rules', 'fraudapp.state', "
            "'fraudapp.transaction_stage', 'fraudapp.validate', 'fraudapp.addresses'))])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "[]"
    assert TX_TYPES == TX_FRAUD_TYPES  # written from the contract; the same order as the worker's


# -- the truth, rule by rule ---------------------------------------------------------------

RULES = TxRules(taint_seconds=100.0)
CLEAN: tuple[list[str], list[str]] = ([], [])
SCAM, TAINT, FAST, FAN, LARGE = ["scam_wallet"], ["tainted_funds"], ["wallet_velocity"], ["fan_out"], ["large_amount"]


def run(rows: list[tuple], *, gap: int = 1, rules: TxRules = RULES, blacklisted: tuple[str, ...] = ("S",),
        rekeyed: tuple[int, ...] = ()) -> list[tuple[list[str], list[str]]]:
    """rows: (ts, from, to[, amount[, asset]]) or None (a rejected input), in production order."""
    transfers = [None if r is None else Transfer(r[0], r[1], r[2], r[3] if len(r) > 3 else 1.0,
                                                 r[4] if len(r) > 4 else "ETH") for r in rows]
    return [(e.hard, e.either) for e in reference_labels(transfers, set(blacklisted), rules, gap, rekeyed)]


def fillers(n: int, ts: float = 0.0) -> list[tuple]:
    return [(ts, f"F{k}", f"G{k}") for k in range(n)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([(0, "V", "S"), (1, "S", "V")], [(SCAM, []), (SCAM, [])]),  # to and from a scam wallet
        ([(0, "S", "A"), (10, "A", "B")], [(SCAM, []), (TAINT, [])]),  # 1 hop
        # the chain: mule1 (1 hop) and mule2 (2 hops) tainted, mule3 (3 hops) not
        ([(0, "S", "A"), (10, "A", "B"), (20, "B", "C"), (30, "C", "D")],
         [(SCAM, []), (TAINT, []), (TAINT, []), CLEAN]),
        ([(0, "S", "A"), (100, "A", "B"), (100.001, "A", "C")], [(SCAM, []), (TAINT, []), CLEAN]),  # expiry, inclusive
        ([(10, "S", "A"), (9.999, "A", "B")], [(SCAM, []), CLEAN]),  # before the receipt's event time
        ([(0, "S", "A", 0.0), (10, "A", "B")], [(SCAM, []), CLEAN]),  # a zero amount taints nothing
        # the distance in force at the receipt's time: A's taint expired when it paid B
        ([(0, "S", "A"), (150, "A", "B"), (160, "B", "C")], [(SCAM, []), CLEAN, CLEAN]),
        # B's distance 2 lasts its own 100 s from its receipt, past A's expiry
        ([(0, "S", "A"), (90, "A", "B"), (150, "A", "X"), (180, "B", "C")], [(SCAM, []), (TAINT, []), CLEAN, (TAINT, [])]),
        # the lowest distance wins: C is 3 hops via B but 1 hop via S -> tainted
        ([(0, "S", "A"), (1, "A", "B"), (2, "B", "C"), (3, "S", "C"), (4, "C", "D")],
         [(SCAM, []), (TAINT, []), (TAINT, []), (SCAM, []), (TAINT, [])]),
        ([None, (0, "S", "A"), None, (1, "A", "B")], [CLEAN, (SCAM, []), CLEAN, (TAINT, [])]),
    ],
)
def test_scam_and_taint(rows: list[tuple], expected: list[tuple[list[str], list[str]]]) -> None:
    assert run(rows) == expected


def test_taint_hops_setting_reaches_further() -> None:
    rows = [(0, "S", "A"), (10, "A", "B"), (20, "B", "C"), (30, "C", "D"), (40, "D", "E")]
    assert run(rows, rules=TxRules(taint_hops=2)) == [(SCAM, []), (TAINT, []), (TAINT, []), (TAINT, []), CLEAN]


def test_either_marks_taint_that_depends_on_cross_partition_order() -> None:
    gap = 3
    # the receipt 2 records before: may not have reached the recipient's partition yet
    assert run([(0, "S", "A"), *fillers(1), (10, "A", "B")], gap=gap)[-1] == ([], TAINT)
    # 3 records before: certainly seen
    assert run([(0, "S", "A"), *fillers(2), (10, "A", "B")], gap=gap)[-1] == (TAINT, [])
    # a chain is as certain as its weakest hop: A -> B close to S -> A, B -> C far after both
    rows = [(0, "S", "A"), (1, "A", "B"), *fillers(4), (5, "B", "C")]
    assert run(rows, gap=gap)[1] == ([], TAINT) and run(rows, gap=gap)[-1] == ([], TAINT)
    assert run(rows, gap=1)[-1] == (TAINT, [])
    # a receipt produced shortly *after* (earlier event time) may still come first ...
    assert run([(10, "A", "B"), (0, "S", "A")], gap=gap)[0] == ([], TAINT)
    # ... one produced gap records after cannot
    assert run([(10, "A", "B"), *fillers(2), (0, "S", "A")], gap=gap)[0] == CLEAN
    # a re-keyed receipt takes an extra hop: never certain
    assert run([(0, "S", "A"), *fillers(5), (10, "A", "B")], gap=gap, rekeyed=(0,))[-1] == ([], TAINT)
    # only taint is order-dependent: a sender's own transfers are in its partition's order
    assert all(not either or either == TAINT for _, either in run([(0, "S", "A"), (1, "A", "B")], gap=5))


def test_a_rekeyed_sender_must_send_once() -> None:
    with pytest.raises(ValueError, match="only one"):
        run([(0, "A", "B"), (1, "A", "C")], rekeyed=(0,))


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 1, 2, 3, 4, 5], [CLEAN] * 5 + [(FAST, [])]),  # the 6th with 5 earlier in 60 s
        ([0, 0, 0, 0, 0, 60], [CLEAN] * 5 + [(FAST, [])]),  # window [ts - 60, ts], inclusive
        ([0, 0, 0, 0, 0, 60.001], [CLEAN] * 6),
        # out of order, counted by event time in production order: the late one at 5 has no
        # earlier-produced transfer in [-55, 5]; the next one counts all six
        ([10, 11, 12, 13, 14, 5, 15], [CLEAN] * 6 + [(FAST, [])]),
    ],
)
def test_wallet_velocity(times: list[float], expected: list[tuple[list[str], list[str]]]) -> None:
    assert run([(t, "W", "B") for t in times]) == expected


def test_wallet_velocity_counts_the_sender_only() -> None:
    rows = [(k, f"W{k}", "B") for k in range(5)] + [(5, "W0", "B")]
    assert run(rows) == [CLEAN] * 6


def test_fan_out() -> None:
    spread = [(60 * k, "W", f"R{k}") for k in range(10)]  # 10 distinct in 540 s
    assert run(spread) == [CLEAN] * 9 + [(FAN, [])]
    calm = TxRules(velocity_threshold=100)
    assert run([(0, "W", "R0"), *((600, "W", f"R{k}") for k in range(1, 10))], rules=calm)[-1] == (FAN, [])  # inclusive
    assert run([(0, "W", "R0"), *((600.5, "W", f"R{k}") for k in range(1, 10))], rules=calm)[-1] == CLEAN
    repeats = [(60 * k, "W", f"R{k % 9}") for k in range(12)]  # 9 distinct only
    assert run(repeats) == [CLEAN] * 12
    # this transfer's recipient counts once even when it was paid before
    assert run([*spread[:9], (541, "W", "R0")])[-1] == CLEAN


@pytest.mark.parametrize(
    ("amounts", "last", "rules", "expected"),
    [
        ([1, 1, 1, 1], 100, RULES, CLEAN),  # fewer than LARGE_AMOUNT_MIN_KNOWN
        ([1, 1, 1, 1, 1], 21, RULES, (LARGE, [])),  # above 20 x the median
        ([1, 1, 1, 1, 1], 20, RULES, CLEAN),  # not above
        # an even count: the median is the mean of the middle two, (3 + 100) / 2 = 51.5
        ([1, 2, 3, 100, 100, 100], 1030, RULES, CLEAN),
        ([1, 2, 3, 100, 100, 100], 1030.5, RULES, (LARGE, [])),
        ([100, 100, 100, 1, 1, 1], 25, TxRules(large_history=3, large_min_known=3), (LARGE, [])),  # the last 3
        ([], 10, TxRules(large_limits=(("ETH", 10.0),)), CLEAN),  # the asset's limit
        ([], 10.5, TxRules(large_limits=(("ETH", 10.0),)), (LARGE, [])),
        ([], 10.5, TxRules(large_limits=(("USDT", 10.0),)), CLEAN),
    ],
)
def test_large_amount(amounts: list[float], last: float, rules: TxRules, expected) -> None:
    rows = [(60 * k, "W", "B", a) for k, a in enumerate(amounts)] + [(60 * len(amounts), "W", "B", last)]
    assert run(rows, rules=rules)[-1] == expected


def test_large_amount_is_per_asset() -> None:
    rows = [(60 * k, "W", "B", 1.0, "USDT") for k in range(5)] + [(300, "W", "B", 100.0, "ETH")]
    assert run(rows)[-1] == CLEAN
    rows[-1] = (300, "W", "B", 100.0, "USDT")
    assert run(rows)[-1] == (LARGE, [])


def test_fraud_types_come_in_contract_order() -> None:
    rows = [(k, "S", f"R{k}", 1.0) for k in range(9)] + [(0, "X", "S"), (9, "S", "R9", 1000.0)]
    assert run(rows)[-1] == (["scam_wallet", "wallet_velocity", "fan_out", "large_amount"], [])


def test_truth_agrees_with_the_workers_pure_logic_in_production_order() -> None:
    """The worker's rules and state (fraudapp.rules, fraudapp.state), run on the generated
    traffic one transfer at a time in production order (one partition: every receipt seen
    before the next transfer), against the truth with a gap of 1 (the same order)."""
    from fraudapp.rules.wallet.engine import judge_transaction
    from fraudapp.state.taint import TaintIndex, in_force, merged, passed_on, table_key
    from fraudapp.state.wallets import WalletActivity, Windows

    s = Settings()
    traffic = generate_transactions(TxConfig(count=3000, seed=9, taint_gap=1, rules=TxRules.from_settings(s)))
    windows = Windows(velocity=s.wallet_velocity_seconds, fan_out=s.fan_out_seconds, history=s.large_amount_history,
                      min_known=s.large_amount_min_known, alert=s.wallet_alert_window_seconds,
                      lateness=s.lateness_seconds, idle=s.wallet_idle_seconds)
    black = {w: BlacklistEntry("wallet", w) for w in blacklisted_wallets(traffic.entries)}
    wallets: dict[str, WalletActivity] = defaultdict(WalletActivity)
    taint, rows = TaintIndex(), {}
    for inp, t in zip(traffic.inputs, traffic.truth, strict=True):
        tx = parse_transaction(inp.value)
        if isinstance(tx, Rejection):
            assert t["expected"] == "rejected"
            continue
        sender, recipient = black.get(tx.sender), black.get(tx.recipient)
        tainted = in_force(taint.of(tx.sender), tx.ts, s.taint_seconds)
        counts = wallets[tx.sender].aggregate(tx.ts, tx.recipient, tx.asset, tx.amount, windows)
        features = TxFeatures(sender, recipient, tainted, counts.prior_in_velocity_window, counts.distinct_recipients,
                              counts.median_amount, counts.known_amounts)
        assert judge_transaction(tx, features, s, 0.0).fraud_types == t["hard"], t
        assert t["either"] == []
        given = passed_on(tx.sender, sender is not None, tainted, tx.amount, tx.ts, tx.tx_id, s.taint_hops)
        if given is not None:
            key = table_key(tx.recipient, 0)
            rows[key] = merged(rows.get(key), given, s.taint_seconds, s.lateness_seconds)
            taint.apply(key, rows[key])


# -- the report ----------------------------------------------------------------------------


def _truth(i: int, expected: str, hard=(), either=(), error=None, rekeyed=False, population="p") -> dict:
    return {"i": i, "tx_id": f"t{i}", "from": "w", "population": population, "role": "r", "expected": expected,
            "hard": list(hard), "either": list(either), "error": error, "rekeyed": rekeyed, "taint_gap": 10,
            "topic": "tx", "partition": 0, "offset": i, "produced_at": 100.0}


def _verdict(i: int, *types: str, at: float = 100.5) -> dict:
    return {"tx_id": f"t{i}", "verdict": "fraud" if types else "clean", "fraud_types": list(types),
            "detected_at": at, "source": ["tx", 0, i]}


def _dead(i: int, error: str) -> dict:
    return {"topic": "tx", "partition": 0, "offset": i, "error": error}


def test_report_scores_exact_labels_and_counts_either_apart() -> None:
    truth = [_truth(0, "fraud", SCAM), _truth(1, "clean"), _truth(2, "clean_or_fraud", either=TAINT),
             _truth(3, "clean_or_fraud", either=TAINT), _truth(4, "fraud", TAINT)]
    verdicts = [_verdict(0, "scam_wallet"), _verdict(1), _verdict(2, "tainted_funds"), _verdict(3),
                _verdict(4, "tainted_funds")]
    report = evaluate_transactions(truth, index_outputs(verdicts, []))
    assert report["exact"] and report["accounted_share"] == 1.0
    assert report["per_type"]["tainted_funds"]["support"] == 1  # the either ones are not scored
    assert report["either_order"] == {"tainted_funds": {"fired": 1, "not fired": 1}}
    assert report["verdict_confusion"]["clean_or_fraud"] == {"clean": 1, "fraud": 1, "rejected": 0, "missing": 0,
                                                             "multiple": 0}


def test_report_finds_misses_and_false_alarms() -> None:
    truth = [_truth(0, "fraud", FAN), _truth(1, "clean")]
    report = evaluate_transactions(truth, index_outputs([_verdict(0), _verdict(1, "fan_out")], []))
    assert not report["exact"]
    assert (report["per_type"]["fan_out"]["fp"], report["per_type"]["fan_out"]["fn"]) == (1, 1)
    assert report["mismatches"]["fan_out"]["fn"][0]["tx_id"] == "t0"


def test_report_accounts_for_dead_letters() -> None:
    truth = [_truth(0, "rejected", error="not_json"), _truth(1, "rejected", error="invalid_value"),
             _truth(2, "rejected", error="empty"), _truth(3, "rejected", error="empty"),
             _truth(4, "rejected", error="empty"), _truth(5, "clean")]
    dead = [_dead(0, "not_json"), _dead(1, "wrong_type"), _dead(3, "empty"), _dead(3, "empty"), _dead(5, "oversize")]
    report = evaluate_transactions(truth, index_outputs([_verdict(4)], dead))
    assert report["dead_letters"] == {"malformed": 5, "dead_lettered": 2, "code_mismatches": 1, "judged_instead": 1,
                                      "missing": 1, "multiple": 1, "valid_dead_lettered": 1,
                                      "by_code": {"not_json": 1, "wrong_type": 1}}
    assert report["accounted_share"] == 4 / 6


@pytest.mark.parametrize(
    ("order", "expected"),
    [([0, 1, 2, 3], 0), ([0, 2, 1, 3], 1), ([3, 0, 1, 2], 3), ([1, 0, 5, 2, 3, 4], 3)],
)
def test_largest_inversion(order: list[int], expected: int) -> None:
    assert largest_inversion({index: float(k) for k, index in enumerate(order)}) == expected


def test_report_checks_the_processing_order_against_the_gap() -> None:
    truth = [_truth(i, "clean") for i in range(12)]
    late = [_verdict(i, at=100.0 + (i if i else 20)) for i in range(12)]  # input 0 judged after input 11
    order = evaluate_transactions(truth, index_outputs(late, []))["processing_order"]
    assert order == {"largest_inversion": 11, "taint_gap": 10, "within_gap": False}
    truth[0]["rekeyed"] = True  # a re-keyed input is late by design: left out
    assert evaluate_transactions(truth, index_outputs(late, []))["processing_order"]["within_gap"]


# -- the commands --------------------------------------------------------------------------


def test_simulate_dry_run_writes_transfers_and_truth(tmp_path: Path) -> None:
    from fraudapp.commands import simulate

    truth, out = tmp_path / "truth.jsonl", tmp_path / "in.jsonl"
    args = ["--stream", "transactions", "--count", "300", "--seed", "4", "--start-ts", "1767225600", "--dry-run",
            "--truth", str(truth), "--out", str(out)]
    result = CliRunner().invoke(simulate.command, args)
    assert result.exit_code == 0, result.output
    records = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
    assert len(records) == 300 and len(out.read_bytes().splitlines()) == 300
    assert {r["taint_gap"] for r in records} == {MIN_TAINT_GAP}
    again = tmp_path / "again.jsonl"
    assert CliRunner().invoke(simulate.command, [*args[:-4], "--truth", str(again)]).exit_code == 0
    assert again.read_bytes() == truth.read_bytes()


def test_evaluate_refuses_the_other_streams_truth(tmp_path: Path) -> None:
    from fraudapp.commands import evaluate

    path = tmp_path / "truth.jsonl"
    path.write_bytes(orjson.dumps(_truth(0, "clean")) + b"\n")
    result = CliRunner().invoke(evaluate.command, ["--truth", str(path)])
    assert result.exit_code == 2 and "--stream transactions" in result.output
