"""The JSON Schemas against what a real worker writes: every verdict, dead letter, alert
and blacklist update of a small mixed run validates, and the worker serves the schemas."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from fraudapp import schemas
from fraudapp.tooling.benchmark.kafkaio import produce
from tests.integration.conftest import Cluster, Worker, consume_json, produce_clicks, wait_for

pytestmark = pytest.mark.integration

ADMIN = "admin-" + uuid.uuid4().hex
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
BLOCKED_IP = "93.184.217.66"  # global unicast, so that its /24 neighbours only lose the "near" points
MOUSE = {"moves": 30, "duration_ms": 1500, "straightness": 0.5}


def http(worker: Worker, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of one request; never raises on HTTP errors."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(worker.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def alert_clicks(start: float) -> list[dict[str, Any]]:
    """30 clicks of one campaign and publisher in one window, 10 of them click_spam: two alerts."""
    return [
        {"click_id": f"a{i}", "ts": start + 1 + i, "device_id": "hammer" if i < 12 else f"human{i}",
         "ip": "93.184.216.34", "user_agent": UA, "fingerprint": f"fp{i}", "mouse": MOUSE,
         "campaign_id": "summer", "publisher_id": "pub-9"}
        for i in range(30)
    ]


def varied_clicks(now: float) -> list[dict[str, Any]]:
    """One of each verdict shape, outside any alert scope."""
    return [
        {"click_id": "clean", "ts": now, "device_id": "v1", "ip": "93.184.216.35", "user_agent": UA,
         "fingerprint": "fp", "mouse": MOUSE, "country": "de", "extra": {"kept": True}},
        # near the blacklisted IP, no fingerprint, no mouse: (60 + 60) / 2 = suspicious
        {"click_id": "suspicious", "ts": now, "device_id": "v2", "ip": "93.184.217.7", "user_agent": UA},
        {"click_id": "low-score", "ts": now, "device_id": "v3", "ip": "10.0.0.1"},
        {"click_id": "blacklisted", "ts": now, "device_id": "v4", "ip": BLOCKED_IP, "user_agent": UA},
        {"click_id": "bot", "ts": now, "device_id": "v5", "ip": "2001:4860::8888",
         "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
        {"transaction_id": "alias", "ts": "2026-01-01T00:00:00+02:00", "device_id": "v6", "ip": "93.184.216.36",
         "user_agent": UA, "session_id": "s1", "url": "https://ad.example/1"},
        {"click_id": "clean", "ts": now + 1, "device_id": "v1", "ip": "93.184.216.35", "user_agent": UA},  # duplicate
    ]


BAD_CLICKS: list[bytes] = [
    b"{not json",
    b"\xff\xfe\x00binary",
    b"",
    orjson.dumps({"click_id": "x", "ts": time.time(), "device_id": "d"}),  # no ip
    orjson.dumps({"click_id": "x", "ts": "yesterday", "device_id": "d", "ip": "1.2.3.4"}),
    orjson.dumps([1, 2]),
]


def check_all(name: str, records: list[dict[str, Any]]) -> None:
    validator = Draft202012Validator(schemas.load(name), format_checker=FormatChecker())
    for record in records:
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(record)]
        assert not problems, (name, record, problems)


def test_real_records_match_the_schemas_and_the_worker_serves_them(fraud_cluster: Cluster) -> None:
    worker = fraud_cluster.start_worker("w1", FRAUDAPP_ALERT_GRACE_SECONDS="1", FRAUDAPP_ADMIN_TOKEN=ADMIN)

    # The schemas, over HTTP: as shipped, with the media type, and a JSON 404.
    status, ctype, body = http(worker, "GET", "/schemas/verdict")
    assert status == 200 and ctype.startswith("application/schema+json")
    assert body == schemas.raw("verdict")
    status, _, body = http(worker, "GET", "/schemas")
    listed = {e["name"]: e["topic"] for e in orjson.loads(body)["schemas"]}
    assert status == 200 and listed["verdict"] == fraud_cluster.topic("verdicts")
    assert listed["transaction-verdict"] == fraud_cluster.topic("transaction-verdicts")
    status, ctype, body = http(worker, "GET", "/schemas/transactions")  # the topic's name, not a schema's
    assert status == 404 and ctype.startswith("application/json") and orjson.loads(body)["error"]

    # A blacklist update through the admin route (the publisher may need a moment), and a bad one.
    entry = {"kind": "ip", "value": BLOCKED_IP, "reason": "live schema test", "ttl_seconds": 3600}
    wait_for(lambda: http(worker, "POST", "/blacklist", entry)[0] == 202, 30, "POST /blacklist to publish")
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("blacklist-updates"),
                        [(b"x", b'{"op": "add", "kind": "host", "value": "x"}')]))
    wait_for(lambda: http(worker, "GET", f"/blacklist/{BLOCKED_IP}")[0] == 200, 30, "the entry to be applied")

    now = time.time() - 30
    good = alert_clicks((time.time() // 60 - 5) * 60) + varied_clicks(now)
    produce_clicks(fraud_cluster, [*good, *BAD_CLICKS])
    produce_clicks(fraud_cluster, [dict(good[-2], click_id="unkeyed", device_id="v7")], keyed=False)

    verdicts = consume_json(fraud_cluster, "verdicts", len(good) + 1, timeout=90)
    dead = consume_json(fraud_cluster, "clicks-dlq", len(BAD_CLICKS) + 1, timeout=60)
    alerts = consume_json(fraud_cluster, "fraud-alerts", 2, timeout=60)
    updates = consume_json(fraud_cluster, "blacklist-updates", 1, timeout=10)[:1]  # the route's, not ours

    assert len(verdicts) == len(good) + 1 and len(dead) == len(BAD_CLICKS) + 1 and len(alerts) == 2
    assert {v["verdict"] for v in verdicts} == {"clean", "suspicious", "fraud"}
    assert {"ip_blacklist", "bot_user_agent", "duplicate_click", "low_human_score", "click_spam"} <= {
        t for v in verdicts for t in v["fraud_types"]}
    assert {d["topic"] for d in dead} == {fraud_cluster.topic("clicks"), fraud_cluster.topic("blacklist-updates")}
    assert "base64" in {d["value_encoding"] for d in dead}
    assert updates[0]["value"] == BLOCKED_IP

    check_all("verdict", verdicts)
    check_all("dead-letter", dead)
    check_all("alert", alerts)
    check_all("blacklist-update", updates)
    check_all("click", good)  # what we sent, too
    assert worker.healthy()
    log = worker.log.read_text(errors="replace")
    assert "Crashed reason" not in log and "Traceback" not in log, worker.tail(80)
