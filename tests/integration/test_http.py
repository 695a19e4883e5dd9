"""The HTTP API (CONTRACT §7) against real workers on the real broker.

Two workers of one deployment: `admin` has the admin and ingest tokens, `plain` has none
(so its write routes answer 403). Routes that read state are asked of both: each worker
must answer for all partitions (forwarding / the tap), not just its own.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fraudapp.pipeline import partition_of
from tests.integration.conftest import Cluster, Worker, consume_json, create_topics, wait_for

ADMIN = "admin-" + uuid.uuid4().hex
INGEST = "ingest-" + uuid.uuid4().hex
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@dataclass
class Api:
    cluster: Cluster
    admin: Worker
    plain: Worker


def call(
    worker: Worker, method: str, path: str, body: Any = None, token: str | None = None,
    raw: bytes | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request; never raises on HTTP errors."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(worker.url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            status, payload, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, payload, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    if "json" in ctype:
        return status, json.loads(payload)
    return status, payload.decode(errors="replace")


def click(cid: str, device: str, **extra: Any) -> dict[str, Any]:
    body = {
        "click_id": cid, "ts": round(time.time(), 3), "device_id": device, "ip": "198.51.100.20",
        "user_agent": HUMAN_UA, "fingerprint": "fp-" + device,
        "mouse": {"moves": 30, "duration_ms": 2000, "straightness": 0.5},
        "campaign_id": "camp-http", "publisher_id": "pub-http",
    }
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def api(kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    import asyncio

    cluster = Cluster(
        broker_url=kafka_broker.url, bootstrap=kafka_broker.bootstrap,
        app_id="h" + uuid.uuid4().hex[:10], tmp=tmp_path_factory.mktemp("http"), partitions=4,
    )
    asyncio.run(create_topics(cluster))
    try:
        admin = cluster.start_worker(
            "admin", wait=False, FRAUDAPP_ADMIN_TOKEN=ADMIN, FRAUDAPP_INGEST_TOKEN=INGEST, FRAUDAPP_LOG_LEVEL="WARNING"
        )
        plain = cluster.start_worker("plain", wait=False, FRAUDAPP_LOG_LEVEL="WARNING")
        for w in (admin, plain):
            wait_for(w.healthy, 120, f"worker healthy:\n{w.tail()}", interval=0.25)
        # Both taps assigned (they read from the end: only then do counts start).
        for w in (admin, plain):
            wait_for(lambda w=w: call(w, "GET", "/stats")[1]["tap"]["ready"], 60, "stats tap ready")
        yield Api(cluster, admin, plain)
    finally:
        cluster.stop_all()


# -- public pages ----------------------------------------------------------------------
def test_health_and_faust_table_pages_are_off(api: Api) -> None:
    for w in (api.admin, api.plain):
        assert call(w, "GET", "/health") == (200, {"status": "ok"})
        # Faust's own table/router pages would show any table's contents to anyone.
        for path in ("/table/", "/table/device-clicks/", "/table/device-clicks/d1/", "/router/"):
            assert call(w, "GET", path)[0] == 404, path


def test_dashboard_page_static_chart_and_event_stream(api: Api) -> None:
    status, html = call(api.plain, "GET", "/dashboard")
    assert status == 200 and "<canvas" in html and "/static/chart.umd.min.js" in html
    status, js = call(api.plain, "GET", "/static/chart.umd.min.js")
    assert status == 200 and "Chart.js v4" in js[:200]
    with urllib.request.urlopen(api.plain.url + "/dashboard/events", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        line = resp.readline()
    assert line.startswith(b"data: ")
    snapshot = json.loads(line[6:])
    assert {"since_start", "last_window", "series", "top", "campaigns", "recent_alerts"} <= snapshot.keys()


# -- auth ------------------------------------------------------------------------------
WRITE_ROUTES = [
    ("POST", "/clicks", "FRAUDAPP_INGEST_TOKEN", INGEST, lambda: click("auth-" + uuid.uuid4().hex, "auth-dev")),
    ("POST", "/blacklist", "FRAUDAPP_ADMIN_TOKEN", ADMIN, lambda: {"kind": "device", "value": "auth-dev-bl"}),
    ("DELETE", "/blacklist/auth-dev-bl", "FRAUDAPP_ADMIN_TOKEN", ADMIN, lambda: None),
]


@pytest.mark.parametrize(("method", "path", "setting", "token", "body"), WRITE_ROUTES, ids=lambda x: str(x)[:20])
def test_write_route_auth(api: Api, method: str, path: str, setting: str, token: str, body: Any) -> None:
    # Not configured: 403 saying which setting turns the route on (even with a token).
    status, answer = call(api.plain, method, path, body(), token=token)
    assert status == 403 and setting in answer["error"]
    # Missing or wrong: 401, and the answer does not echo the real token.
    for presented in (None, "wrong", token + "x"):
        status, answer = call(api.admin, method, path, body(), token=presented)
        assert status == 401, presented
        assert token not in json.dumps(answer)
    status, answer = call(api.admin, method, path, body(), headers={"Authorization": f"Basic {token}"})
    assert status == 401
    # Right token: accepted.
    status, answer = call(api.admin, method, path, body(), token=token)
    assert status == 202, answer


# -- bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "token"), [("/clicks", INGEST), ("/blacklist", ADMIN)])
def test_oversize_body_is_413_and_malformed_is_400(api: Api, path: str, token: str) -> None:
    big = b"[" + b" " * (1024 * 1024) + b"]"
    status, answer = call(api.admin, "POST", path, raw=big, token=token)
    assert status == 413 and "exceeds" in answer["error"]
    for raw in (b"{nope", b"", b"\xff\xfe"):
        status, answer = call(api.admin, "POST", path, raw=raw, token=token)
        assert status == 400 and answer["error"], raw


def test_post_clicks_rejects_invalid_ones_by_index(api: Api) -> None:
    status, answer = call(api.admin, "POST", "/clicks", [{"click_id": "x"}, "nope"], token=INGEST)
    assert status == 400
    assert [(r["index"], r["error"]) for r in answer["rejected"]] == [(0, "missing_field"), (1, "not_object")]
    status, answer = call(api.admin, "POST", "/clicks", [], token=INGEST)
    assert status == 400


# -- clicks -> verdicts -> stats and devices -------------------------------------------
def two_devices_per_partition(run: str, partitions: int) -> list[str]:
    """Device ids, two on each partition (Kafka's murmur2 of the raw id), not left to chance."""
    by_partition: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(ids) < 2 for ids in by_partition.values()):
        device = f"dev-{run}-{i}"
        ids = by_partition[partition_of(device.encode(), partitions)]
        if len(ids) < 2:
            ids.append(device)
        i += 1
    return [d for ids in by_partition.values() for d in ids]


def test_posted_clicks_are_judged_counted_everywhere_and_device_state_is_routed(api: Api) -> None:
    run = uuid.uuid4().hex[:8]
    before = {w.port: call(w, "GET", "/stats")[1]["since_start"] for w in (api.admin, api.plain)}
    devices = two_devices_per_partition(run, 4)  # every partition, so both workers own some
    batch = [click(f"{d}-c{n}", d) for d in devices for n in range(3)] + [{"click_id": "bad"}]
    status, answer = call(api.admin, "POST", "/clicks", batch, token=INGEST)
    assert status == 202, answer
    assert answer["accepted"] == 24 and [r["index"] for r in answer["rejected"]] == [24]

    # Each device's 3rd click within 10 s is click_spam (contract §4): 8 fraud, 16 not.
    # "At least": a click posted by an earlier test may be judged in between, so 24 more
    # clicks counted does not mean all of these were; wait for both counts.
    def counted(w: Worker) -> dict[str, Any] | None:
        now = call(w, "GET", "/stats")[1]["since_start"]
        more = now["clicks"] - before[w.port]["clicks"]
        spam = now["fraud_types"].get("click_spam", 0) - before[w.port]["fraud_types"].get("click_spam", 0)
        return now if more >= 24 and spam >= 8 else None

    for w in (api.admin, api.plain):
        wait_for(lambda w=w: counted(w), 60, f"the clicks and their 8 click_spam verdicts counted by {w.port}")
    verdicts = [v for v in consume_json(api.cluster, "verdicts", 10_000, timeout=5) if run in v["click_id"]]
    assert len(verdicts) == 24
    assert sorted(v["click_id"] for v in verdicts if "click_spam" in v["fraud_types"]) == sorted(
        f"{d}-c2" for d in devices
    )

    owners = set()
    for device in devices:
        answers = [call(w, "GET", f"/devices/{device}") for w in (api.admin, api.plain)]
        assert answers[0][0] == answers[1][0] == 200
        assert answers[0][1] == answers[1][1], "both workers answer from the owner's state"
        body = answers[0][1]
        assert len(body["recent_click_times"]) == 3
        assert body["click_spam_window"]["clicks"] == 3
        assert body["last_minute"]["clicks"] == 3 and body["last_minute"]["exact"]
        owners.add(body["served_by"])
    assert len(owners) == 2, "devices on all 4 partitions and 2 workers: both own some"
    status, body = call(api.plain, "GET", "/devices/never-seen-device")
    assert status == 200 and body["recent_click_times"] == [] and body["click_spam_window"]["clicks"] == 0


# -- blacklist -------------------------------------------------------------------------
def test_blacklist_add_get_page_delete(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    entries = [{"kind": "device", "value": f"bl-{run}-{i}", "reason": "test"} for i in range(5)]
    entries.append({"kind": "cidr", "value": "10.99.0.0/16", "reason": "range", "ttl_seconds": 3600})
    status, answer = call(api.admin, "POST", "/blacklist", {"entries": entries}, token=ADMIN)
    assert status == 202 and answer["published"] == 6
    status, answer = call(api.admin, "POST", "/blacklist", {"entries": [{"kind": "ip", "value": "nope"}]}, token=ADMIN)
    assert status == 400 and answer["errors"][0]["index"] == 0

    for w in (api.admin, api.plain):
        # (the six may be applied in more than one batch: wait for each one asserted on)
        wait_for(lambda w=w: call(w, "GET", f"/blacklist/bl-{run}-4")[0] == 200, 10, "entry visible on every worker")
        status, entry = wait_for(lambda w=w: (r := call(w, "GET", "/blacklist/10.99.0.0/16"))[0] == 200 and r, 10,
                                 "the range visible on every worker")
        assert entry["kind"] == "cidr" and entry["expires_at"] is not None and entry["active"]
    status, page = call(api.plain, "GET", "/blacklist?kind=device&limit=2&offset=0")
    assert status == 200 and page["limit"] == 2 and len(page["entries"]) == 2 and page["total"] >= 5
    status, rest = call(api.plain, "GET", "/blacklist?kind=device&limit=1000&offset=2")
    assert {e["value"] for e in page["entries"]}.isdisjoint(e["value"] for e in rest["entries"])
    assert call(api.plain, "GET", "/blacklist?limit=0")[0] == 400

    status, answer = call(api.admin, "DELETE", f"/blacklist/bl-{run}-4", token=ADMIN)
    assert status == 202 and answer["key"] == f"device:bl-{run}-4" and answer["op"] == "remove"
    for w in (api.admin, api.plain):
        wait_for(lambda w=w: call(w, "GET", f"/blacklist/bl-{run}-4")[0] == 404, 10, "removal on every worker")
    assert call(api.plain, "GET", "/blacklist/203.0.113.254")[0] == 404
    assert call(api.plain, "GET", "/blacklist/x?kind=planet")[0] == 400


def test_blacklisted_ip_is_judged_ip_blacklist_within_a_second(api: Api) -> None:
    """POST an IP, then click from it every 100 ms: every click sent 1 s or more after the
    202 is judged ip_blacklist (contract §4: a change reaches every worker within 1 s)."""
    ip = f"203.0.113.{uuid.uuid4().int % 200 + 20}"
    run = uuid.uuid4().hex[:8]
    status, _ = call(api.admin, "POST", "/blacklist", {"kind": "ip", "value": ip, "reason": "http test"}, token=ADMIN)
    assert status == 202
    added = time.monotonic()
    sent: dict[str, float] = {}
    for i in range(20):  # 2 s of probes, each its own device (no click_spam)
        cid = f"bl-probe-{run}-{i}"
        status, _ = call(api.admin, "POST", "/clicks", click(cid, f"probe-{run}-{i}", ip=ip), token=INGEST)
        assert status == 202
        sent[cid] = time.monotonic() - added
        time.sleep(0.1)  # pacing of the probes, not an assertion
    verdicts = {v["click_id"]: v for v in consume_json(api.cluster, "verdicts", 10_000, timeout=8) if run in v["click_id"]}
    assert len(verdicts) == 20
    late = [cid for cid, dt in sent.items() if dt >= 1.0]
    assert all("ip_blacklist" in verdicts[cid]["fraud_types"] for cid in late), {
        cid: (round(sent[cid], 2), verdicts[cid]["fraud_types"]) for cid in sent
    }
    first = min(dt for cid, dt in sent.items() if "ip_blacklist" in verdicts[cid]["fraud_types"])
    print(f"first probe judged ip_blacklist was sent {first:.2f} s after the POST's 202")


# -- metrics ---------------------------------------------------------------------------
def test_metrics_expose_faust_and_fraudapp_series(api: Api) -> None:
    call(api.admin, "POST", "/clicks", click("metrics-" + uuid.uuid4().hex, "metrics-dev"), token=INGEST)
    for w in (api.admin, api.plain):
        def scraped(w: Worker = w) -> str | None:
            status, text = call(w, "GET", "/metrics")
            ready = status == 200 and 'fraudapp_window_state_keys{table="device-clicks"}' in text
            return text if ready else None

        text = wait_for(scraped, 30, "gauges refreshed")
        for series in (
            "fraudapp_blacklist_entries ",
            "fraudapp_tap_records_total",
            "faust_messages_received",  # one of Faust's sensors
        ):
            assert series in text, series
    # The worker that judged clicks has latency histograms and verdict counters.
    texts = [call(w, "GET", "/metrics")[1] for w in (api.admin, api.plain)]
    assert any("fraudapp_verdicts_total{verdict=" in t for t in texts)
    assert any("fraudapp_decision_latency_seconds_bucket" in t for t in texts)
    assert any('fraudapp_http_published_total{route="clicks"}' in t for t in texts)
