"""The JSON Schemas of fraudapp/schemas/: valid documents, in step with the code's constants,
and agreeing with the validators (inputs) and the record builders (outputs)."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from fraudapp import alerts, schemas
from fraudapp.blacklist_updates import KINDS, update_from_obj
from fraudapp.deadletters import dead_letter
from fraudapp.models import FRAUD_TYPES, TX_FRAUD_TYPES, VERDICT_CLASSES, BlacklistEntry, Features
from fraudapp.rules.engine import judge
from fraudapp.settings import Settings
from fraudapp.validate import REJECTION_CODES, Rejection, click_from_obj, parse_click
from fraudapp.web.requests import parse_blacklist_entries, removal

ROOT = Path(__file__).resolve().parents[2]
T = 1_732_350_000.5
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
GOOD: dict[str, Any] = {"click_id": "c1", "ts": T, "device_id": "d1", "ip": "203.0.113.7"}


def validator(name: str) -> Draft202012Validator:
    # Format assertion on: the schemas use ipv4 / ipv6 for what validate.py checks.
    return Draft202012Validator(schemas.load(name), format_checker=FormatChecker())


def errors(name: str, instance: Any) -> list[str]:
    return [e.message for e in validator(name).iter_errors(instance)]


def with_(**changes: Any) -> dict[str, Any]:
    body = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            body.pop(k)
        else:
            body[k] = v
    return body


# -- the documents ------------------------------------------------------------------------
@pytest.mark.parametrize("name", schemas.names())
def test_schema_is_a_valid_draft_2020_12_document(name: str) -> None:
    document = schemas.load(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"urn:fraudapp:schema:{name}"
    assert document["title"] and document["description"]
    assert "additionalProperties" in document  # open or closed, said explicitly
    undocumented = [field for field, spec in document["properties"].items() if not spec.get("description")]
    assert not undocumented


def test_every_shipped_file_is_named_and_every_name_has_a_file() -> None:
    files = {p.stem for p in (ROOT / "fraudapp" / "schemas").glob("*.json")}
    assert files == set(schemas.names())
    assert schemas.raw("click") == (ROOT / "fraudapp" / "schemas" / "click.json").read_bytes()


def test_setup_cfg_ships_the_schemas() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options.package_data"]["fraudapp.schemas"].strip() == "*.json"
    # the rule set's checks use it at run time (fraudapp/ruleset.py)
    assert any(line.startswith("jsonschema") for line in cfg["options"]["install_requires"].split())


@pytest.mark.parametrize("name", ["nope", "../settings", "click.json", "", "CLICK"])
def test_unknown_names_are_refused_before_any_file_is_read(name: str) -> None:
    with pytest.raises(schemas.UnknownSchema):
        schemas.raw(name)


def test_load_hands_out_a_copy() -> None:
    schemas.load("click")["title"] = "changed"
    assert schemas.load("click")["title"] == "Click event"


def test_index_names_each_schema_with_its_topic_on_this_deployment() -> None:
    settings = Settings.from_env(topic_verdicts="acme.verdicts")
    index = {entry["name"]: entry for entry in schemas.index(settings)}
    assert list(index) == sorted(index) == sorted(schemas.TOPIC_SETTING)
    assert index["verdict"]["topic"] == "acme.verdicts"
    assert index["dead-letter"] == {"name": "dead-letter", "title": "Dead letter (rejected input)",
                                    "$id": "urn:fraudapp:schema:dead-letter", "topic": settings.topic_dlq,
                                    "href": "/schemas/dead-letter"}


# -- in step with the code's constants ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "path", "expected"),
    [
        ("verdict", ["properties", "verdict", "enum"], list(VERDICT_CLASSES)),
        ("verdict", ["properties", "fraud_types", "items", "enum"], list(FRAUD_TYPES)),
        ("verdict", ["properties", "fraud_type", "enum"], [*FRAUD_TYPES, None]),
        ("verdict", ["properties", "reasons", "items", "properties", "rule", "enum"], [*FRAUD_TYPES, "score"]),
        ("alert", ["properties", "top_fraud_types", "propertyNames", "enum"], list(FRAUD_TYPES + TX_FRAUD_TYPES)),
        ("transaction-verdict", ["properties", "fraud_types", "items", "enum"], list(TX_FRAUD_TYPES)),
        ("dead-letter", ["properties", "error", "enum"], list(REJECTION_CODES)),
        ("blacklist-update", ["properties", "kind", "enum"], list(KINDS)),
    ],
)
def test_enums_follow_the_code(name: str, path: list[str], expected: list[Any]) -> None:
    node: Any = schemas.load(name)
    for step in path:
        node = node[step]
    assert node == expected


# -- clicks: the schema agrees with validate.py ------------------------------------------------
ACCEPTED_CLICKS = [
    GOOD,
    with_(ts=1732350000),
    with_(ts="2024-11-23T08:20:00+00:00"),
    with_(ts="2024-11-23T08:20:00Z"),
    with_(ts="2024-11-23T08:20:00.123456-05:30"),
    with_(ts="20241123T082000+0100"),
    with_(ts=946684800),
    with_(ip="2001:DB8:0:0::1"),
    with_(ip="::ffff:192.0.2.1"),
    with_(click_id=..., transaction_id="t9"),
    with_(click_id=None, transaction_id="t9"),
    with_(transaction_id=17),  # ignored: click_id is there
    with_(country="de"),
    with_(country=None, url=None, session_id=None),
    with_(mouse={"moves": 0, "duration_ms": 0, "straightness": 1}),
    with_(mouse={"moves": 30, "duration_ms": 1500, "straightness": 0.5, "extra": True}),
    with_(unknown_field={"nested": [1, None]}),
    with_(click_id="c" * 128, device_id="gerät-🙂", user_agent=UA, fingerprint="fp", campaign_id="c", ad_id="a"),
]

REFUSED_CLICKS = [
    with_(click_id=...),
    with_(click_id=None),
    with_(click_id=..., transaction_id=""),
    with_(click_id=..., transaction_id=5),
    with_(device_id=...),
    with_(ip=...),
    with_(ts=...),
    with_(click_id=5),
    with_(click_id=""),
    with_(click_id="c" * 129),
    with_(device_id=""),
    with_(device_id=12345),
    with_(ip="999.1.1.1"),
    with_(ip="localhost"),
    with_(ip=17),
    with_(ip="1.2.3.4/32"),
    with_(ts="yesterday"),
    with_(ts="2024-11-23T10:00:00"),  # no offset
    with_(ts="2024-11-23"),
    with_(ts="1999-12-31T00:00:00Z"),
    with_(ts=1732350000500),  # milliseconds
    with_(ts=946684799),
    with_(ts=True),
    with_(ts=[T]),
    with_(url=3),
    with_(session_id=["s"]),
    with_(mouse={"moves": -1, "duration_ms": 5, "straightness": 0.5}),
    with_(mouse={"moves": 3, "duration_ms": 5, "straightness": 1.5}),
    with_(mouse={"moves": 3, "duration_ms": 5}),
    with_(mouse={"moves": 3, "duration_ms": 5, "straightness": True}),
    with_(mouse={"moves": 2**53, "duration_ms": 5, "straightness": 0.5}),
    with_(mouse=[1]),
    with_(country="USA"),
    with_(country="D1"),
    with_(country=49),
    [GOOD],
    "a click",
    None,
]

# Edges where the two differ, each said in click.json's description: pinned here so that a
# change on either side is noticed. (instance, validate.py accepts, schema accepts)
CLICK_DIFFERENCES = [
    (with_(mouse={"moves": 5.0, "duration_ms": 100, "straightness": 0.5}), False, True),
    (with_(ts="2024-02-30T10:00Z"), False, True),
    (with_(ip="fe80::1%eth0"), True, False),
]


@pytest.mark.parametrize("click", ACCEPTED_CLICKS, ids=lambda c: orjson.dumps(c).decode()[:60])
def test_clicks_the_validator_accepts_match_the_schema(click: dict[str, Any]) -> None:
    assert not isinstance(click_from_obj(click), Rejection)
    assert errors("click", click) == []


@pytest.mark.parametrize("click", REFUSED_CLICKS, ids=lambda c: orjson.dumps(c).decode()[:60])
def test_clicks_the_validator_refuses_the_schema_refuses(click: Any) -> None:
    assert isinstance(click_from_obj(click), Rejection)
    assert errors("click", click)


@pytest.mark.parametrize(("click", "by_validator", "by_schema"), CLICK_DIFFERENCES)
def test_known_click_differences(click: dict[str, Any], by_validator: bool, by_schema: bool) -> None:
    assert (not isinstance(click_from_obj(click), Rejection)) is by_validator
    assert (not errors("click", click)) is by_schema


def test_a_validated_click_written_back_is_still_a_click() -> None:
    click = click_from_obj(with_(ts="2024-11-23T08:20:00Z", country="de", ip="2001:DB8::1"))
    assert not isinstance(click, Rejection)
    assert errors("click", click.to_dict()) == []


# -- verdicts: what the engine writes -------------------------------------------------------
SETTINGS = Settings.from_env()
HUMAN = {"user_agent": UA, "fingerprint": "fp", "mouse": {"moves": 30, "duration_ms": 1500, "straightness": 0.5},
         "ip": "93.184.216.34", "campaign_id": "camp", "publisher_id": "pub"}
BLOCKED = BlacklistEntry(kind="ip", value="93.184.216.34", reason="known bot")
VERDICT_CASES: dict[str, tuple[dict[str, Any], Features, str]] = {
    "clean": (HUMAN, Features(), "clean"),
    "suspicious": ({**HUMAN, "fingerprint": None, "mouse": None}, Features(ip_near_blacklisted=True), "suspicious"),
    "low_human_score": ({"ip": "10.0.0.1"}, Features(), "fraud"),
    "click_spam": ({**HUMAN, "campaign_id": None}, Features(device_prior_in_window=5), "fraud"),
    "every_hard_rule": (
        {**HUMAN, "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)", "session_id": "s", "url": "u"},
        Features(device_prior_in_window=2, session_url_prior_in_window=2, duplicate_of_ts=T - 1,
                 ip_entry=BLOCKED, device_entry=BlacklistEntry(kind="device", value="d1")),
        "fraud",
    ),
}


@pytest.mark.parametrize("case", VERDICT_CASES)
def test_engine_verdicts_match_the_schema(case: str) -> None:
    fields, features, expected = VERDICT_CASES[case]
    click = click_from_obj({**GOOD, **fields})
    assert not isinstance(click, Rejection)
    body = judge(click, features, SETTINGS, T + 0.2).to_dict()
    body["source"] = ("clicks", 3, 1234)  # added by the judge stage (agents.judge_click)
    assert body["verdict"] == expected
    assert errors("verdict", orjson.loads(orjson.dumps(body))) == []


@pytest.mark.parametrize(
    "change",
    [
        {"verdict": "maybe"},
        {"fraud_types": ["click_spam"]},  # on a clean verdict
        {"fraud_type": "click_spam"},
        {"score": 101},
        {"layers": {"ip": 50, "fingerprint": 50}},
        {"source": ["clicks", 0]},
        {"source": ["clicks", 0, 1, 2]},
        {"rules_version": -1},
        {"rules_version": "3"},
        {"ivt": "givt"},  # on a clean verdict
        {"ivt": "other"},
    ],
)
def test_verdict_schema_refuses_what_the_engine_never_writes(change: dict[str, Any]) -> None:
    click = click_from_obj({**GOOD, **HUMAN})
    assert not isinstance(click, Rejection)
    body = {**judge(click, Features(), SETTINGS, T).to_dict(), "source": ["clicks", 0, 1], **change}
    assert errors("verdict", orjson.loads(orjson.dumps(body)))


# -- dead letters: what deadletters.py writes -------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"d1", b"{not json"),
        (None, None),
        (b"\xff\x00\xfe", b"\xff\xfe{"),
        (b"k", b""),
        (b"k", b"x" * 600_000),  # oversize: kept in part
        (b"k", orjson.dumps(with_(ip="localhost"))),
    ],
)
def test_dead_letters_match_the_schema(key: bytes | None, value: bytes | None) -> None:
    rejection = parse_click(value, 65536)
    assert isinstance(rejection, Rejection)
    record = dead_letter(rejection, topic="clicks", partition=2, offset=99, key=key, value=value)
    assert errors("dead-letter", orjson.loads(orjson.dumps(record))) == []


@pytest.mark.parametrize("code", REJECTION_CODES)
def test_every_rejection_code_is_a_valid_dead_letter(code: str) -> None:
    record = dead_letter(Rejection(code, "why"), topic="clicks", partition=0, offset=0, key=b"k", value=b"v")
    assert errors("dead-letter", record) == []


def test_dead_letter_schema_refuses_an_unknown_code() -> None:
    record = dead_letter(Rejection("exploded", "why"), topic="clicks", partition=0, offset=0, key=b"k", value=b"v")
    assert errors("dead-letter", record)


# -- alerts: what alerts.py writes ----------------------------------------------------------
def test_alerts_match_the_schema() -> None:
    policy = alerts.AlertPolicy(window_seconds=60, min_clicks=3, fraud_ratio=0.3, grace_seconds=1)
    state = alerts.initialize()
    for i in range(10):
        types = list(FRAUD_TYPES[: i % 7]) if i % 2 else []
        alerts.aggregate(state, 1200 + i, "fraud" if types else "clean", types, policy)
    raised = alerts.close(state, "campaign:summer", 1300, policy)
    assert len(raised) == 1
    assert errors("alert", orjson.loads(orjson.dumps(raised[0]))) == []
    assert errors("alert", {**raised[0], "scope": "region"})


# -- blacklist updates: the schema agrees with blacklist_updates.py -----------------------------
ACCEPTED_UPDATES = [
    {"kind": "ip", "value": "203.0.113.9"},
    {"op": "add", "kind": "ip", "value": "2001:db8::1", "reason": "bot", "ttl_seconds": 3600},
    {"op": "add", "kind": "cidr", "value": "10.1.2.3/8", "reason": None, "ttl_seconds": None},
    {"op": "add", "kind": "cidr", "value": "2001:db8::/32", "ttl_seconds": 0.5},
    {"op": "add", "kind": "device", "value": "dev-🙂", "reason": "", "extra": [1]},
    {"op": "add", "kind": "wallet", "value": "0x" + "ab" * 20},
    {"op": "remove", "kind": "ip", "value": "203.0.113.9", "ttl_seconds": -1, "reason": 5},  # ignored on remove
    {"op": "add", "kind": "device", "value": "x" * 256},
]
REFUSED_UPDATES = [
    {"op": "upsert", "kind": "ip", "value": "203.0.113.9"},
    {"op": None, "kind": "ip", "value": "203.0.113.9"},
    {"kind": "host", "value": "example.com"},
    {"value": "203.0.113.9"},
    {"kind": "ip"},
    {"kind": "device", "value": ""},
    {"kind": "device", "value": 5},
    {"kind": "device", "value": "x" * 257},
    {"kind": "ip", "value": "not-an-ip"},
    {"kind": "ip", "value": "10.0.0.0/8"},
    {"kind": "cidr", "value": "example.com/8"},
    {"kind": "ip", "value": "203.0.113.9", "ttl_seconds": 0},
    {"kind": "ip", "value": "203.0.113.9", "ttl_seconds": -5},
    {"kind": "ip", "value": "203.0.113.9", "ttl_seconds": "1h"},
    {"kind": "ip", "value": "203.0.113.9", "ttl_seconds": True},
    {"kind": "ip", "value": "203.0.113.9", "reason": 7},
]
UPDATE_DIFFERENCES = [
    ({"kind": "ip", "value": "203.0.113.9", "reason": False}, True, False),
    ({"kind": "ip", "value": " 203.0.113.9 "}, True, False),
    ({"kind": "cidr", "value": "10.0.0.0/33"}, False, True),
]


@pytest.mark.parametrize("update", ACCEPTED_UPDATES, ids=lambda u: orjson.dumps(u).decode()[:60])
def test_updates_the_parser_accepts_match_the_schema(update: dict[str, Any]) -> None:
    assert not isinstance(update_from_obj(update, T), Rejection)
    assert errors("blacklist-update", update) == []


@pytest.mark.parametrize("update", REFUSED_UPDATES, ids=lambda u: orjson.dumps(u).decode()[:60])
def test_updates_the_parser_refuses_the_schema_refuses(update: dict[str, Any]) -> None:
    assert isinstance(update_from_obj(update, T), Rejection)
    assert errors("blacklist-update", update)


@pytest.mark.parametrize(("update", "by_parser", "by_schema"), UPDATE_DIFFERENCES)
def test_known_update_differences(update: dict[str, Any], by_parser: bool, by_schema: bool) -> None:
    assert (not isinstance(update_from_obj(update, T), Rejection)) is by_parser
    assert (not errors("blacklist-update", update)) is by_schema


def test_updates_published_by_the_http_routes_match_the_schema() -> None:
    parsed = parse_blacklist_entries({"entries": [{"kind": "cidr", "value": "10.1.2.3/8", "ttl_seconds": 60},
                                                  {"value": "203.0.113.9", "kind": "ip", "reason": "bot"}]}, T)
    removed = removal("203.0.113.9", None)
    assert not parsed.errors and not isinstance(removed, Rejection)
    for value in [v for _, v in parsed.records] + [removed[2]]:
        assert errors("blacklist-update", orjson.loads(value)) == []


# -- the routes -----------------------------------------------------------------------------
async def test_schema_route_serves_the_document_as_schema_json() -> None:
    from fraudapp import views
    from fraudapp.app import app

    response = await views.SchemaDocument(app, app.web).get(None, "verdict")  # type: ignore[arg-type]
    assert response.status == 200
    assert response.content_type == "application/schema+json"
    assert orjson.loads(response.body) == schemas.load("verdict")


async def test_schema_route_answers_404_with_a_json_error_for_unknown_names() -> None:
    from fraudapp import views
    from fraudapp.app import app

    response = await views.SchemaDocument(app, app.web).get(None, "transactions")  # type: ignore[arg-type]
    assert response.status == 404
    body = orjson.loads(response.body)
    assert "transactions" in body["error"] and body["schemas"] == list(schemas.names())


async def test_schema_index_route_lists_every_schema() -> None:
    from fraudapp import views
    from fraudapp.app import app

    response = await views.SchemaIndex(app, app.web).get(None)  # type: ignore[arg-type]
    assert response.status == 200
    assert [entry["name"] for entry in orjson.loads(response.body)["schemas"]] == list(schemas.names())


def test_transaction_verdicts_and_wallet_alerts_match_their_schemas() -> None:
    """What the transaction stage writes, built by its own functions."""
    from fraudapp.models import Taint, Transaction, TxFeatures
    from fraudapp.rules.wallet.engine import judge_transaction
    from fraudapp.settings import Settings
    from fraudapp.state.wallets import AlertWindow
    from fraudapp.transaction_stage import blacklisted_alert, window_alert

    tx = Transaction("t1", 1_800_000_000.0, "0x" + "ab" * 20, "bc1qxyz", 3.0, "ETH", ip="192.0.2.1")
    for features in (TxFeatures(), TxFeatures(taint=Taint(1_799_999_999.0, 1, "0xdead", "t0"), distinct_recipients=12,
                                              prior_in_velocity_window=9, median_amount=0.1, known_amounts=6)):
        verdict = judge_transaction(tx, features, Settings(), 1_800_000_001.0).to_dict()
        verdict["source"] = ["transactions", 0, 7]
        assert not errors("transaction-verdict", verdict)
    entry = BlacklistEntry("wallet", "bc1qxyz", reason="sanctioned")
    assert not errors("alert", blacklisted_alert(tx, entry))
    assert not errors("alert", window_alert(tx.sender, AlertWindow(1_800_000_000.0, 5, 3, {"fan_out": 3}, True)))
    assert not errors("transaction", {"tx_id": "t1", "ts": "2027-01-01T00:00:00+00:00", "from": tx.sender,
                                      "to": "x", "amount": 0, "asset": "ETH", "ip": "2001:db8::1"})
