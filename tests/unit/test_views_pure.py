"""Pure pieces behind the HTTP routes: stats aggregation, auth decision, body parsing."""

from __future__ import annotations

import orjson
import pytest

from fraudapp.stats import TRANSFERS, BoundedCounter, VerdictStats, alert_stats
from fraudapp.web.auth import check_bearer
from fraudapp.web.requests import infer_kind, parse_blacklist_entries, parse_clicks, removal

T = 1_700_000_000.0


def verdict(cls: str, types: tuple[str, ...] = (), **extra: object) -> dict:
    body = {"verdict": cls, "fraud_types": list(types), "device_id": "d1", "ip": "198.51.100.1",
            "campaign_id": "c1", "publisher_id": "p1"}
    body.update(extra)
    return body


# -- stats -----------------------------------------------------------------------------
def test_stats_count_since_start_and_in_last_window() -> None:
    stats = VerdictStats(window_seconds=60, clock=lambda: T)
    stats.add_verdict(verdict("clean"), now=T - 100)  # before the window
    stats.add_verdict(verdict("fraud", ("click_spam",)), now=T - 30)
    stats.add_verdict(verdict("fraud", ("ip_blacklist", "click_spam")), now=T - 1)
    stats.add_verdict(verdict("suspicious"), now=T)
    summary = stats.summary(now=T)
    assert summary["since_start"]["clicks"] == 4
    assert summary["since_start"]["verdicts"] == {"clean": 1, "suspicious": 1, "fraud": 2}
    assert summary["since_start"]["fraud_types"]["click_spam"] == 2
    assert summary["since_start"]["fraud_types"]["ip_blacklist"] == 1
    assert summary["since_start"]["fraud_types"]["duplicate_click"] == 0  # every known type listed
    assert summary["last_window"]["clicks"] == 3
    assert summary["last_window"]["verdicts"] == {"clean": 0, "suspicious": 1, "fraud": 2}
    assert summary["last_window"]["fraud_ratio"] == pytest.approx(2 / 3, abs=1e-4)


def test_click_stats_split_fraud_by_ivt_class_since_start_and_in_the_window() -> None:
    stats = VerdictStats(window_seconds=60, clock=lambda: T)
    stats.add_verdict(verdict("fraud", ("click_spam",), ivt="givt"), now=T - 100)
    stats.add_verdict(verdict("fraud", ("low_human_score",), ivt="sivt"), now=T - 5)
    stats.add_verdict(verdict("fraud", ("bot_user_agent",), ivt="givt"), now=T - 1)
    stats.add_verdict(verdict("clean", ivt=None), now=T)
    stats.add_verdict(verdict("fraud", ("click_spam",), ivt="bogus"), now=T)  # counted, but no class
    summary = stats.summary(now=T)
    assert summary["since_start"]["ivt"] == {"givt": 2, "sivt": 1}
    assert summary["last_window"]["ivt"] == {"givt": 1, "sivt": 1}
    transfers = VerdictStats(window_seconds=60, clock=lambda: T, kind=TRANSFERS)
    transfers.add_verdict({"verdict": "fraud", "fraud_types": ["fan_out"], "from": "w", "ivt": "givt"}, now=T)
    assert "ivt" not in transfers.summary(now=T)["since_start"]  # transfers have no IVT class


def test_stats_window_edges_are_whole_seconds() -> None:
    stats = VerdictStats(window_seconds=10, clock=lambda: T)
    stats.add_verdict(verdict("clean"), now=T - 10)  # 10 s ago: outside a 10 s window
    stats.add_verdict(verdict("clean"), now=T - 9)
    assert stats.window(now=T).total == 1


def test_stats_ignore_foreign_records_and_bound_history() -> None:
    stats = VerdictStats(window_seconds=5, history_seconds=10, clock=lambda: T)
    stats.add_verdict({"hello": "world"}, now=T)
    assert stats.totals.total == 0
    for i in range(1000):
        stats.add_verdict(verdict("clean"), now=T + i)
    assert len(stats._buckets) <= 10
    assert stats.totals.total == 1000


def test_series_fills_gaps_with_zeros() -> None:
    stats = VerdictStats(clock=lambda: T)
    stats.add_verdict(verdict("fraud", ("bot_user_agent",)), now=T - 2)
    stats.add_verdict(verdict("clean"), now=T)
    series = stats.series(now=T, seconds=4)
    assert [r["t"] for r in series] == [int(T) - 3, int(T) - 2, int(T) - 1, int(T)]
    assert [r["clicks"] for r in series] == [0, 1, 0, 1]
    assert series[1]["fraud"] == 1 and series[3]["clean"] == 1


def test_top_tables_campaign_ratio_and_alerts() -> None:
    stats = VerdictStats(clock=lambda: T)
    for _ in range(3):
        stats.add_verdict(verdict("fraud", ("click_spam",), device_id="bad", ip="203.0.113.9", campaign_id="cA"))
    stats.add_verdict(verdict("clean", device_id="good", campaign_id="cA"))
    stats.add_verdict(verdict("clean", device_id="good", campaign_id="cB"))
    stats.add_alert({"scope": "campaign", "id": "cA", "clicks": 4, "fraud": 3, "ratio": 0.75})
    snap = stats.snapshot()
    assert snap["top"]["devices"] == [["bad", 3]]  # clean clicks do not rank
    assert snap["top"]["ips"] == [["203.0.113.9", 3]]
    assert snap["campaigns"][0] == {"id": "cA", "clicks": 4, "fraud": 3, "ratio": 0.75}
    assert snap["campaigns"][1]["id"] == "cB"
    assert snap["recent_alerts"][0]["id"] == "cA" and snap["alerts"] == 1
    orjson.dumps(snap)  # JSON-able as sent to the dashboard


def transfer(cls: str, types: tuple[str, ...] = (), sender: str = "0xaa", **extra: object) -> dict:
    return {"tx_id": "t", "from": sender, "to": "0xbb", "amount": 1.0, "asset": "ETH", "verdict": cls,
            "fraud_types": list(types), **extra}


def test_transfer_stats_count_transfers_by_their_own_classes_types_and_senders() -> None:
    stats = VerdictStats(clock=lambda: T, kind=TRANSFERS)
    for _ in range(3):
        stats.add_verdict(transfer("fraud", ("wallet_velocity",), sender="0xbot"), now=T - 1)
    stats.add_verdict(transfer("fraud", ("scam_wallet", "tainted_funds"), sender="0xvictim"), now=T)
    stats.add_verdict(transfer("clean", sender="0xhuman"), now=T)
    stats.add_verdict(verdict("suspicious"), now=T)  # not a transfer's class: not counted
    snap = stats.snapshot(now=T, series_seconds=3)
    assert snap["since_start"]["transfers"] == 5 and "clicks" not in snap["since_start"]
    assert snap["since_start"]["verdicts"] == {"clean": 1, "fraud": 4}
    assert snap["since_start"]["fraud_types"] == {"scam_wallet": 1, "tainted_funds": 1, "wallet_velocity": 3,
                                                  "fan_out": 0, "large_amount": 0}
    assert snap["last_window"]["fraud_ratio"] == 0.8
    assert [(r["transfers"], r["clean"], r["fraud"]) for r in snap["series"]] == [(0, 0, 0), (3, 0, 3), (2, 1, 1)]
    assert snap["top"] == {"wallets": [["0xbot", 3], ["0xvictim", 1]]}  # senders of fraud only
    assert "campaigns" not in snap
    orjson.dumps(snap)


def test_wallet_alerts_go_to_the_transfers_the_others_to_the_clicks() -> None:
    clicks, transfers = VerdictStats(clock=lambda: T), VerdictStats(clock=lambda: T, kind=TRANSFERS)
    for alert in ({"scope": "campaign", "id": "cA"}, {"scope": "wallet", "id": "0xbot", "kind": "flagged_transfers"},
                  {"scope": "publisher", "id": "p1"}, {"hello": "world"}):
        alert_stats(alert, clicks, transfers).add_alert(alert)
    assert [a["id"] for a in transfers.snapshot()["recent_alerts"]] == ["0xbot"] and transfers.alerts_total == 1
    assert [a.get("id") for a in clicks.snapshot()["recent_alerts"]] == [None, "p1", "cA"]


def test_bounded_counter_keeps_the_leaders() -> None:
    counter = BoundedCounter(max_size=10)
    for _ in range(50):
        counter.add("leader")
    for i in range(100):
        counter.add(f"once-{i}")
    assert len(counter.counts) <= 10
    assert counter.top(1) == [["leader", 50]]


# -- auth ------------------------------------------------------------------------------
def test_unset_token_is_403_naming_the_setting() -> None:
    denied = check_bearer("Bearer anything", "", "FRAUDAPP_ADMIN_TOKEN")
    assert denied is not None and denied.status == 403 and "FRAUDAPP_ADMIN_TOKEN" in denied.reason


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret", "Bearer s3cret2"])
def test_missing_or_wrong_token_is_401(header: str | None) -> None:
    denied = check_bearer(header, "s3cret", "FRAUDAPP_INGEST_TOKEN")
    assert denied is not None and denied.status == 401
    assert "s3cret" not in denied.reason


@pytest.mark.parametrize("header", ["Bearer s3cret", "bearer s3cret", "  Bearer   s3cret "])
def test_right_token_passes(header: str) -> None:
    assert check_bearer(header, "s3cret", "FRAUDAPP_INGEST_TOKEN") is None


# -- request bodies --------------------------------------------------------------------
GOOD = {"click_id": "c1", "ts": T, "device_id": "d1", "ip": "198.51.100.1", "extra": "kept"}


def test_parse_clicks_reports_invalid_by_index_and_keeps_valid() -> None:
    parsed = parse_clicks([GOOD, {"click_id": "c2"}, "nope", {**GOOD, "ip": "999.1.1.1"}], 65536)
    assert [k for k, _ in parsed.records] == [b"d1"]
    assert orjson.loads(parsed.records[0][1])["extra"] == "kept"
    assert [(e["index"], e["error"]) for e in parsed.errors] == [(1, "missing_field"), (2, "not_object"), (3, "invalid_ip")]


def test_parse_clicks_single_object_and_oversize() -> None:
    assert len(parse_clicks(GOOD, 65536).records) == 1
    parsed = parse_clicks({**GOOD, "url": "x" * 1000}, 500)
    assert not parsed.records and parsed.errors[0]["error"] == "oversize"


@pytest.mark.parametrize(
    ("value", "kind"),
    [("203.0.113.9", "ip"), ("2001:db8::1", "ip"), ("10.0.0.0/8", "cidr"), ("2001:db8::/32", "cidr"),
     ("device-abc", "device"), ("a/b", "device")],
)
def test_infer_kind(value: str, kind: str) -> None:
    assert infer_kind(value) == kind


def test_blacklist_entries_one_or_many_all_or_nothing() -> None:
    one = parse_blacklist_entries({"kind": "ip", "value": " 203.0.113.9", "reason": "r"}, T)
    assert not one.errors and one.records[0][0] == b"203.0.113.9"
    assert orjson.loads(one.records[0][1]) == {"op": "add", "kind": "ip", "value": "203.0.113.9", "reason": "r",
                                               "ttl_seconds": None}
    many = parse_blacklist_entries({"entries": [{"kind": "device", "value": "d"}, {"kind": "ip", "value": "x"}]}, T)
    assert not many.records and [e["index"] for e in many.errors] == [1]
    assert parse_blacklist_entries({"entries": []}, T).errors


def test_removal_infers_kind_and_normalises() -> None:
    key, kafka_key, message = removal("10.1.2.3/8", None)
    assert key == "cidr:10.0.0.0/8" and kafka_key == b"10.0.0.0/8"
    assert orjson.loads(message) == {"op": "remove", "kind": "cidr", "value": "10.0.0.0/8"}
    assert removal("d-1", None)[0] == "device:d-1"
    assert removal("w-1", "wallet")[0] == "wallet:w-1"
