"""Simulated traffic, produced at full speed, judged exactly; and replayed, judged the same.

A `simulate` + `evaluate` run through a real worker: hard rules exact (precision = recall =
1), every input answered exactly once, every malformed input dead-lettered. Then issue 16's
"replay reproduces": the recorded run, replayed into a fresh deployment (new app id, new
topics, the same blacklist) with `replay --compare`, reports nothing changed and nothing
missing, the duplicated click_ids of the replay population included (each line is paired
with the answer to that line, not to its click_id)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fraudapp.models import HARD_FRAUD_TYPES
from tests.integration.conftest import Cluster, create_topics, produce, wait_for

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))


def run_cli(cluster: Cluster, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([FRAUDAPP, *args], env=cluster.env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of a one-partition topic, up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes | None, bytes]] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            out.extend((r.key, r.value) for r in batch.get(tp, []))
        return out
    finally:
        await consumer.stop()


def blacklist_total(url: str) -> int:
    with urllib.request.urlopen(url + "/blacklist?limit=1", timeout=5) as resp:
        return int(json.loads(resp.read())["total"])


@pytest.mark.timeout(600)
def test_simulated_run_is_exact_and_its_replay_reports_nothing_changed(fraud_cluster: Cluster, kafka_broker, tmp_path: Path) -> None:
    clicks, truth, verdicts = tmp_path / "clicks.jsonl", tmp_path / "truth.jsonl", tmp_path / "verdicts.jsonl"
    diff_path = tmp_path / "diff.json"

    # The recorded run.
    # with the reputation on, as users run it: its farm verdicts may differ in the replay
    # (they follow the clicks with a lag), the hard rules may not
    original = fraud_cluster.start_worker("orig", FRAUDAPP_REPUTATION="true")
    sim = run_cli(fraud_cluster, "simulate", "--count", "2000", "--seed", "16", "--rate", "0", "--truth", str(truth),
                  "--out", str(clicks), "--quiet", "--wait-timeout", "90", timeout=240)
    assert sim.returncode == 0, sim.stderr + "\n" + original.tail()
    report_path = tmp_path / "report.json"
    ev = run_cli(fraud_cluster, "evaluate", "--truth", str(truth), "--dump-verdicts", str(verdicts), "--timeout", "90",
                 "--json", str(report_path), "--quiet", timeout=150)
    assert ev.returncode == 0, ev.stderr
    report = orjson.loads(report_path.read_bytes())
    assert report["accounted_share"] == 1.0, report["verdict_confusion"]
    for fraud_type in HARD_FRAUD_TYPES:
        m = report["per_type"][fraud_type]
        assert m["support"] > 0, f"no {fraud_type} in the simulated traffic"
        assert (m["precision"], m["recall"]) == (1.0, 1.0), (fraud_type, m, report["mismatches"].get(fraud_type))
    rejected = report["verdict_confusion"]["rejected"]
    assert rejected["rejected"] == sum(rejected.values()) > 0, rejected  # every malformed input dead-lettered
    assert report["dead_letter_code_mismatches"] == 0
    assert report["latency_ms"]["p50"] is not None
    recorded = [orjson.loads(line) for line in verdicts.read_bytes().splitlines() if line.strip()]
    assert recorded and all(isinstance(v.get("line"), int) for v in recorded)
    ids = Counter(v["click_id"] for v in recorded)
    assert any(n > 1 for n in ids.values()), "no duplicated click_id in the recorded run: nothing to pair"
    entries = asyncio.run(_read_all(fraud_cluster.bootstrap, fraud_cluster.topic("blacklist-updates")))
    applied = blacklist_total(original.url)
    original.stop()

    # A fresh deployment with the same blacklist (applied before any click is replayed).
    (tmp_path / "fresh").mkdir()
    fresh = Cluster(broker_url=kafka_broker.url, bootstrap=kafka_broker.bootstrap,
                    app_id="t" + uuid.uuid4().hex[:10], tmp=tmp_path / "fresh")
    asyncio.run(create_topics(fresh))
    try:
        asyncio.run(produce(fresh.bootstrap, fresh.topic("blacklist-updates"), entries))
        worker = fresh.start_worker("fresh", FRAUDAPP_REPUTATION="true")
        wait_for(lambda: blacklist_total(worker.url) == applied, 60, f"the fresh worker to apply {applied} entries")
        rep = run_cli(fresh, "replay", str(clicks), "--speed", "0", "--compare", str(verdicts), "--diff-out",
                      str(diff_path), "--timeout", "90", "--quiet", timeout=240)
        assert rep.returncode == 0, rep.stderr + "\n" + worker.tail()
    finally:
        fresh.stop_all()

    diff = orjson.loads(diff_path.read_bytes())
    print(rep.stdout)
    changed_types = Counter(t for c in diff["changed"] for t in set(c["before"]["fraud_types"])
                            ^ set(c["after"]["fraud_types"]))
    assert diff["compared"] == len({v["line"] for v in recorded})
    assert diff["missing"] == [] and diff["unpaired"] == [] and diff["new_only"] == []
    assert diff["changed"] == [], (f"{len(diff['changed'])} changed, by fraud type {dict(changed_types)}: "
                                   f"{diff['changed'][:10]}")
    # what may differ is only what the contract leaves to other devices' order
    for change in diff["order_dependent"]:
        assert set(change["before"]["fraud_types"]) ^ set(change["after"]["fraud_types"]) <= {
            "session_url_repeat", "duplicate_click"}, change
