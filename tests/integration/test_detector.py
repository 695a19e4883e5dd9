"""The detector on the real broker with RocksDB state: contract §2-§6 end to end."""

from __future__ import annotations

import asyncio
import time

import orjson

from tests.integration.conftest import Cluster, consume_json, produce, produce_clicks

T0 = time.time() - 30  # event times near now, so nothing is expired on arrival
HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
HUMAN_MOUSE = {"moves": 25, "duration_ms": 1800, "straightness": 0.6}


def click(cid: str, device: str, dt: float, **extra: object) -> dict:
    body = {
        "click_id": cid,
        "ts": round(T0 + dt, 3),
        "device_id": device,
        "ip": "93.184.216.34",
        "user_agent": HUMAN_UA,
        "fingerprint": "fp-" + device,
        "mouse": HUMAN_MOUSE,
        "campaign_id": "camp1",
        "publisher_id": "pub1",
    }
    body.update(extra)
    return body


def by_click(verdicts: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for v in verdicts:
        assert v["click_id"] not in out or v["click_id"].startswith("dup"), f"two verdicts for {v['click_id']}"
        out.setdefault(v["click_id"], v)
    return out


def test_scripted_sequence_covers_every_rule(fraud_cluster: Cluster) -> None:
    fraud_cluster.start_worker("w1")
    blacklist = [
        {"op": "add", "kind": "ip", "value": "203.0.113.9", "reason": "test"},
        {"op": "add", "kind": "cidr", "value": "192.0.2.0/24", "reason": "range"},
        {"op": "add", "kind": "device", "value": "bad-device", "reason": "known"},
    ]
    asyncio.run(
        produce(
            fraud_cluster.bootstrap,
            fraud_cluster.topic("blacklist-updates"),
            [(e["value"].encode(), orjson.dumps(e)) for e in blacklist],
        )
    )
    # The blacklist reaches the judge through the global table: wait for it by probing.
    probe_deadline = time.monotonic() + 30
    n = 0
    while True:
        n += 1
        produce_clicks(fraud_cluster, [click(f"probe{n}", f"probe-dev{n}", 0, ip="203.0.113.9")])
        verdicts = consume_json(fraud_cluster, "verdicts", n, timeout=10)
        if any(v["click_id"] == f"probe{n}" and "ip_blacklist" in v["fraud_types"] for v in verdicts):
            break
        assert time.monotonic() < probe_deadline, "blacklist never applied"
    probes = n
    # session_url_repeat across devices: 3rd click on one URL in one session. The devices
    # sit on different partitions, so "earlier" is the order the session stage accepts
    # them in: feed them one at a time to make that order the scripted one.
    session_clicks = [
        click("sess1", "devA", 5, session_id="S1", url="https://ad/x"),
        click("sess2", "devB", 6, session_id="S1", url="https://ad/x"),
        click("sess3", "devC", 7, session_id="S1", url="https://ad/x"),
        click("sess4", "devD", 7.5, session_id="S1", url="https://ad/other"),
    ]
    for i, c in enumerate(session_clicks, start=1):
        produce_clicks(fraud_cluster, [c])
        assert len(consume_json(fraud_cluster, "verdicts", probes + i, timeout=30)) == probes + i
    probes += len(session_clicks)

    clicks = [
        click("clean1", "human1", 0),
        # click_spam: 3rd click of one device within 10 s
        click("spam1", "spammer", 1),
        click("spam2", "spammer", 2),
        click("spam3", "spammer", 3),
        # window [1.5, 11.5] holds spam2 and spam3 (spam1 left it): 2 earlier -> still spam
        click("spam4", "spammer", 11.5),
        # outside any window again
        click("spam5", "spammer", 40),
        # blacklists
        click("bl-ip", "devE", 8, ip="203.0.113.9"),
        click("bl-cidr", "devF", 9, ip="192.0.2.77"),
        click("bl-dev", "bad-device", 10),
        # duplicate: same click id replayed
        click("dup1", "devG", 11),
        click("dup1", "devG", 11),
        # declared crawler
        click("bot1", "devH", 12, user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)"),
        # behaviour says robot: straight, instantaneous, no fingerprint
        click("robot1", "devI", 13, mouse={"moves": 0, "duration_ms": 5, "straightness": 1.0},
              user_agent=None, fingerprint=None),
        # unkeyed click: must be re-keyed to its device, still judged once
    ]
    produce_clicks(fraud_cluster, clicks)
    produce_clicks(fraud_cluster, [click("unkeyed1", "devJ", 14)], keyed=False)
    bad = [
        b"not json",
        b"[1,2,3]",
        orjson.dumps({"click_id": "x", "ts": T0, "device_id": "d"}),  # no ip
        orjson.dumps({"click_id": "x", "ts": T0, "device_id": "d", "ip": "300.1.1.1"}),
        orjson.dumps({"click_id": "x", "ts": "whenever", "device_id": "d", "ip": "1.2.3.4"}),
        b"\xff\xfe\xfd",
        b"{" + b" " * 70000 + b"}",
    ]
    produce_clicks(fraud_cluster, bad)
    total_verdicts = probes + len(clicks) + 1
    verdicts = consume_json(fraud_cluster, "verdicts", total_verdicts, timeout=90)
    dead = consume_json(fraud_cluster, "clicks-dlq", len(bad), timeout=30)

    assert len(verdicts) == total_verdicts
    v = by_click(verdicts)
    assert v["clean1"]["verdict"] == "clean" and v["clean1"]["fraud_types"] == []
    assert v["clean1"]["fraud_type"] is None
    assert [v[f"spam{i}"]["verdict"] for i in range(1, 6)] == ["clean", "clean", "fraud", "fraud", "clean"]
    assert v["spam3"]["fraud_types"] == ["click_spam"]
    assert "3rd click" in v["spam3"]["reasons"][0]["detail"]
    assert [("session_url_repeat" in v[f"sess{i}"]["fraud_types"]) for i in range(1, 5)] == [False, False, True, False]
    assert v["bl-ip"]["fraud_types"] == ["ip_blacklist"]
    assert v["bl-cidr"]["fraud_types"] == ["ip_blacklist"]
    assert v["bl-dev"]["fraud_types"] == ["device_blacklist"]
    dups = [x for x in verdicts if x["click_id"] == "dup1"]
    assert sorted("duplicate_click" in x["fraud_types"] for x in dups) == [False, True]
    assert v["bot1"]["fraud_types"] == ["bot_user_agent"]
    assert v["robot1"]["verdict"] in ("fraud", "suspicious")
    assert v["unkeyed1"]["verdict"] == "clean"
    assert v["unkeyed1"]["source"][0] == fraud_cluster.topic("clicks")
    for verdict in verdicts:
        assert 0 <= verdict["score"] <= 100
        assert verdict["fraud_type"] == (verdict["fraud_types"][0] if verdict["fraud_types"] else None)

    assert sorted(d["error"] for d in dead) == sorted(
        ["not_json", "not_object", "missing_field", "invalid_ip", "invalid_time", "invalid_utf8", "oversize"]
    )
    for d in dead:
        assert d["topic"] == fraud_cluster.topic("clicks") and d["offset"] is not None and d["detail"]
