"""Rule sets on running workers (CONTRACT §4c): a per-campaign click_spam threshold published
with `fraudapp rules set` changes that campaign's verdicts, and only its, on both workers; every
verdict says which version judged it and agrees with the reference under that version; a
restarted worker still judges under the latest version; bad rule sets change nothing; a
candidate in shadow changes no verdict and reports what an offline replay reports;
promote and rollback are one command each, and every change is audited."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from fraudapp import schemas
from fraudapp.tooling.benchmark.kafkaio import produce
from tests.integration.conftest import Cluster, Worker, consume_json, create_topics, produce_clicks, wait_for

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))

ADMIN = "admin-" + uuid.uuid4().hex
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
PER_DEVICE = 6  # clicks 1 s apart: from the 3rd on, click_spam under the default threshold 2
QUIET = 100  # campaign "quiet"'s threshold in version 1: never reached
RULES_V1 = {"version": 1, "description": "campaign quiet: click_spam off in effect",
            "overrides": {"campaign": {"quiet": {"rules": {"click_spam": {"threshold": QUIET}}}}}}


def http(worker: Worker, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(worker.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def version_on(worker: Worker) -> int | None:
    try:
        return http(worker, "GET", "/rules")[1]["version"]
    except (OSError, KeyError, ValueError):
        return None


def clicks(batch: str, start: float) -> list[dict[str, Any]]:
    """Per campaign one device clicking PER_DEVICE times, 1 s apart (interleaved)."""
    out = []
    for i in range(PER_DEVICE):
        for campaign in ("quiet", "loud"):
            out.append({"click_id": f"{batch}-{campaign}-{i}", "ts": start + i, "device_id": f"{batch}-{campaign}",
                        "ip": "93.184.216.34", "user_agent": UA, "fingerprint": f"fp-{batch}-{campaign}",
                        "campaign_id": campaign, "publisher_id": "pub"})
    return out


def threshold(version: int, campaign: str) -> int:
    return QUIET if version >= 1 and campaign == "quiet" else 2


def check_against_reference(verdicts: list[dict[str, Any]]) -> None:
    """Each click's earlier clicks in its 10 s window are its index on its device (1 s apart)."""
    for v in verdicts:
        index = int(v["click_id"].rsplit("-", 1)[1])
        expected = index >= threshold(v["rules_version"], v["campaign_id"])
        assert ("click_spam" in v["fraud_types"]) == expected, v


def test_a_campaigns_threshold_changes_only_its_verdicts_on_every_worker(fraud_cluster: Cluster, tmp_path: Path) -> None:
    workers = [fraud_cluster.start_worker(name, FRAUDAPP_ADMIN_TOKEN=ADMIN) for name in ("w1", "w2")]
    assert [version_on(w) for w in workers] == [0, 0]
    start = time.time() - 600

    before = clicks("b1", start)
    produce_clicks(fraud_cluster, before)  # at full speed, before the change: judged under 0 or 1

    # Bad rule sets are refused whole, by field path, and change nothing.
    status, body = http(workers[0], "PUT", "/rules", {"version": 1, "rules": {"click_spam": {"threshold": 0}}})
    assert status == 400 and [e["path"] for e in body["errors"]] == ["rules.click_spam.threshold"]
    status, body = http(workers[0], "PUT", "/rules", {"version": 1, "rules": {"click_spam": {"window_seconds": 60}}})
    assert status == 400 and "state horizon" in body["errors"][0]["error"]

    rules_file = tmp_path / "v1.json"
    rules_file.write_bytes(orjson.dumps(RULES_V1))
    rules_cli(fraud_cluster, "set", str(rules_file), "--no-wait")
    published = time.monotonic()
    wait_for(lambda: [version_on(w) for w in workers] == [1, 1], 30, "both workers to apply version 1")
    applied = time.monotonic() - published
    print(f"\nversion 1 applied on both workers {applied:.2f} s after `fraudapp rules set` returned")
    assert http(workers[1], "PUT", "/rules", RULES_V1)[0] == 409  # versions only go up

    after = clicks("b2", start + 100)
    produce_clicks(fraud_cluster, after)
    # A record written straight to the topic is checked too: dead-lettered with its reason.
    bad = [(b"default", orjson.dumps({"version": 2, "score": {"clean_above": 10}}))]
    asyncio.run(produce(fraud_cluster.bootstrap, fraud_cluster.topic("rules"), bad))

    verdicts = consume_json(fraud_cluster, "verdicts", len(before) + len(after), timeout=120)
    assert len(verdicts) == len(before) + len(after)
    check_against_reference(verdicts)
    late = [v for v in verdicts if v["click_id"].startswith("b2-")]
    assert {v["rules_version"] for v in late} == {1}
    assert not [v for v in late if v["campaign_id"] == "quiet" and "click_spam" in v["fraud_types"]]
    assert len([v for v in late if v["campaign_id"] == "loud" and "click_spam" in v["fraud_types"]]) == PER_DEVICE - 2

    dead = consume_json(fraud_cluster, "clicks-dlq", 1, timeout=60)
    assert [d["error"] for d in dead] == ["invalid_value"] and "suspicious_above" in dead[0]["detail"]
    assert [version_on(w) for w in workers] == [1, 1]  # the bad version 2 changed nothing

    # A restarted worker still judges under the latest version.
    workers[1].stop()
    workers[1] = fraud_cluster.start_worker("w2", FRAUDAPP_ADMIN_TOKEN=ADMIN)
    wait_for(lambda: version_on(workers[1]) == 1, 60, "the restarted worker to judge under version 1")
    again = clicks("b3", start + 200)
    produce_clicks(fraud_cluster, again)
    total = len(before) + len(after) + len(again)
    verdicts = consume_json(fraud_cluster, "verdicts", total, timeout=120)
    restarted = [v for v in verdicts if v["click_id"].startswith("b3-")]
    assert len(restarted) == len(again) and {v["rules_version"] for v in restarted} == {1}
    check_against_reference(restarted)
    for worker in workers:
        log = worker.log.read_text(errors="replace")
        assert "Traceback" not in log, worker.tail(80)


def test_replay_with_a_rule_set_reports_what_it_changes_per_fraud_type_and_campaign(
    fraud_cluster: Cluster, tmp_path: Path
) -> None:
    """`replay --rules` into a fresh deployment: the recorded run (here the reference's
    verdicts under version 0) against the same clicks judged under version 1."""
    worker = fraud_cluster.start_worker("w1")
    sent = clicks("r", time.time() - 600)
    clicks_file, recorded_file = tmp_path / "clicks.jsonl", tmp_path / "recorded.jsonl"
    rules_file, diff_file = tmp_path / "rules.json", tmp_path / "diff.json"
    clicks_file.write_bytes(b"\n".join(orjson.dumps(c) for c in sent) + b"\n")
    recorded = []
    for line, click in enumerate(sent):
        spam = int(click["click_id"].rsplit("-", 1)[1]) >= threshold(0, click["campaign_id"])
        recorded.append({"line": line, "click_id": click["click_id"], "campaign_id": click["campaign_id"],
                         "verdict": "fraud" if spam else "clean", "fraud_types": ["click_spam"] if spam else []})
    recorded_file.write_bytes(b"\n".join(orjson.dumps(v) for v in recorded) + b"\n")
    rules_file.write_bytes(orjson.dumps(RULES_V1))

    run = subprocess.run([FRAUDAPP, "replay", str(clicks_file), "--speed", "0", "--rules", str(rules_file),
                          "--compare", str(recorded_file), "--diff-out", str(diff_file), "--quiet"],
                         env=fraud_cluster.env(), capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stdout + run.stderr + worker.tail()
    print(run.stdout)
    diff = orjson.loads(diff_file.read_bytes())
    assert diff["missing"] == [] and diff["compared"] == len(sent)
    # the quiet campaign's spam clicks (all but its first two) are clean under version 1
    assert diff["by"] == {"fraud_types": {"click_spam": {"gained": 0, "lost": PER_DEVICE - 2}},
                          "campaigns": {"quiet": PER_DEVICE - 2}}
    assert "click_spam: +0 -4" in run.stdout


SESSION_THRESHOLD = 2  # the candidate's session_url_repeat threshold: the 2nd click on a URL (default 3rd)
CANDIDATE = {"version": 1, "description": "quieter spam for campaign quiet, stricter session repeats",
             "rules": {"session_url_repeat": {"threshold": SESSION_THRESHOLD}},
             "overrides": {"campaign": {"quiet": {"rules": {"click_spam": {"threshold": QUIET}}}}}}


def session_clicks(batch: str, start: float) -> list[dict[str, Any]]:
    """`clicks`, each device in one session on one URL."""
    return [{**c, "session_id": c["device_id"] + "-s", "url": "https://ad.example/x"} for c in clicks(batch, start)]


def rules_cli(cluster: Cluster, *args: str) -> str:
    run = subprocess.run([FRAUDAPP, "rules", *args], env=cluster.env(), capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def rules_on(worker: Worker) -> dict[str, Any] | None:
    try:
        status, body = http(worker, "GET", "/rules")
    except (OSError, ValueError):
        return None
    return body if status == 200 else None


def test_a_shadow_run_matches_an_offline_replay_then_promote_and_rollback_are_one_command_each(
    fraud_cluster: Cluster, kafka_broker: Any, tmp_path: Path
) -> None:
    workers = [fraud_cluster.start_worker(name, FRAUDAPP_ADMIN_TOKEN=ADMIN) for name in ("w1", "w2")]
    candidate_file = tmp_path / "candidate.json"
    candidate_file.write_bytes(orjson.dumps(CANDIDATE))

    rules_cli(fraud_cluster, "shadow", str(candidate_file))
    wait_for(lambda: all((r := rules_on(w)) and (r["shadow"] or {}).get("version") == 1 for w in workers), 30,
             "both workers to run version 1 in shadow")

    sent = session_clicks("s", time.time() - 600)
    produce_clicks(fraud_cluster, sent)  # at full speed
    verdicts = consume_json(fraud_cluster, "verdicts", len(sent), timeout=120)
    assert len(verdicts) == len(sent) and {v["rules_version"] for v in verdicts} == {0}  # no verdict changed

    def report(worker: Worker) -> dict[str, Any] | None:
        state = rules_on(worker)
        return ((state or {}).get("shadow") or {}).get("report")

    wait_for(lambda: all((r := report(w)) and r["clicks"] == len(sent) for w in workers), 60,
             "both workers' shadow reports to cover every click")
    got = report(workers[0])
    assert got is not None and got == report(workers[1])
    # the reference: quiet loses click_spam on its clicks 3..6; both devices' 2nd click gains the repeat
    expected_by = {"fraud_types": {"click_spam": {"gained": 0, "lost": PER_DEVICE - 2},
                                   "session_url_repeat": {"gained": 2, "lost": 0}},
                   "campaigns": {"loud": 1, "quiet": 1 + PER_DEVICE - 2}}
    assert got["by"] == expected_by
    assert got["transitions"] == {"clean>fraud": 2, "fraud>fraud": PER_DEVICE - 2}, got
    assert got["examples"]["session_url_repeat"]["gained"][0]["after"]["verdict"] == "fraud"
    shown = orjson.loads(rules_cli(fraud_cluster, "show"))
    assert shown["shadow"]["report"]["by"] == expected_by and shown["live"]["version"] == 0, shown
    stats = http(workers[1], "GET", "/stats")[1]
    assert stats["shadow"]["report"]["flipped"] == got["flipped"]
    def metric(worker: Worker, line_start: str) -> float:
        text = urllib.request.urlopen(worker.url + "/metrics", timeout=15).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))

    wait_for(lambda: all(metric(w, "fraudapp_shadow_version ") == 1 for w in workers), 30, "the shadow gauge")
    # each worker counts the clicks it judged: together, every click
    assert sum(metric(w, 'fraudapp_shadow_clicks_total{version="1"}') for w in workers) == len(sent)
    assert sum(metric(w, 'fraudapp_shadow_flips_total{direction="lost",fraud_type="click_spam"') for w in workers) \
        == PER_DEVICE - 2

    # promote: the candidate is live, the shadow run ends
    rules_cli(fraud_cluster, "promote")
    wait_for(lambda: all((r := rules_on(w)) and r["version"] == 1 and r["shadow"] is None for w in workers), 30,
             "both workers to judge under the promoted version 1")
    after = session_clicks("p", time.time() - 300)
    produce_clicks(fraud_cluster, after)
    promoted = [v for v in consume_json(fraud_cluster, "verdicts", len(sent) + len(after), timeout=120)
                if v["click_id"].startswith("p-")]
    assert len(promoted) == len(after) and {v["rules_version"] for v in promoted} == {1}
    assert not [v for v in promoted if v["campaign_id"] == "quiet" and "click_spam" in v["fraud_types"]]

    # rollback: version 0's content comes back as version 2
    rules_cli(fraud_cluster, "rollback")
    wait_for(lambda: all((r := rules_on(w)) and r["version"] == 2 for w in workers), 30, "the rollback to apply")
    state = rules_on(workers[1])
    assert state is not None and state["history"] == [1, 2]
    assert state["rule_set"]["description"] == "rollback of version 1 to version 0"
    assert state["rule_set"]["rules"]["click_spam"]["threshold"] == 2

    # over HTTP: a candidate not above the live version is refused, one above it runs, DELETE stops it
    status, body = http(workers[0], "POST", "/rules/shadow", {"version": 2})
    assert status == 409 and "above the version in force, 2" in body["error"]
    status, body = http(workers[0], "POST", "/rules/shadow", {"version": 3, "score": {"clean_above": 10}})
    assert status == 400 and body["errors"][0]["path"] == "score"
    assert http(workers[0], "POST", "/rules/shadow", {"version": 3})[0] == 202
    wait_for(lambda: all((r := rules_on(w)) and (r["shadow"] or {}).get("version") == 3 for w in workers), 30,
             "both workers to run version 3 in shadow")
    assert http(workers[1], "GET", "/rules/shadow")[1]["version"] == 3
    assert http(workers[1], "DELETE", "/rules/shadow")[0] == 202
    wait_for(lambda: all((r := rules_on(w)) and r["shadow"] is None for w in workers), 30, "the shadow run to stop")
    assert http(workers[0], "GET", "/rules/shadow")[0] == 404

    audit = consume_json(fraud_cluster, "rules-audit", 5, timeout=60)
    assert [(a["action"], a["version"], a["accepted"]) for a in audit] == [
        ("shadow", 1, True), ("promote", 1, True), ("rollback", 2, True), ("shadow", 3, True), ("stop-shadow", None, True)]
    assert all(a["by"].startswith("cli:") and a["published_at"] for a in audit[:3])
    assert all(a["by"].startswith("http:") for a in audit[3:])
    assert audit[1]["shadow_ended"] == 1
    # the records match their published schemas (GET /schemas/rules-audit, /schemas/rules-shadow)
    for name, records in (("rules-audit", audit), ("rules-shadow", consume_json(fraud_cluster, "rules-shadow", 1))):
        validator = Draft202012Validator(schemas.load(name))
        for record in records:
            assert not list(validator.iter_errors(record)), (name, record)
    for worker in workers:
        assert "Traceback" not in worker.log.read_text(errors="replace"), worker.tail(80)
    fraud_cluster.stop_all()

    # The offline replay: the same clicks into a fresh deployment under the candidate, against
    # the verdicts the shadow run's live set gave them.
    replica = Cluster(broker_url=kafka_broker.url, bootstrap=kafka_broker.bootstrap,
                      app_id="t" + uuid.uuid4().hex[:10], tmp=tmp_path / "replica")
    replica.tmp.mkdir()
    asyncio.run(create_topics(replica))
    try:
        replica.start_worker("r1")
        clicks_file, recorded_file, diff_file = tmp_path / "c.jsonl", tmp_path / "recorded.jsonl", tmp_path / "d.json"
        clicks_file.write_bytes(b"\n".join(orjson.dumps(c) for c in sent) + b"\n")
        line_of = {c["click_id"]: line for line, c in enumerate(sent)}
        recorded_file.write_bytes(b"\n".join(orjson.dumps({**v, "line": line_of[v["click_id"]]})
                                             for v in verdicts if v["click_id"] in line_of) + b"\n")
        run = subprocess.run([FRAUDAPP, "replay", str(clicks_file), "--speed", "0", "--rules", str(candidate_file),
                              "--compare", str(recorded_file), "--diff-out", str(diff_file), "--quiet"],
                             env=replica.env(), capture_output=True, text=True, timeout=240, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        diff = orjson.loads(diff_file.read_bytes())
        assert diff["missing"] == [] and diff["compared"] == len(sent)
        assert diff["by"] == got["by"]  # the shadow run's would-flip counts are the replay's
        assert len(diff["changed"]) == got["flipped"]
    finally:
        replica.stop_all()
