"""A few thousand simulated clicks through a real worker on the real broker, evaluated:
hard rules exact (precision = recall = 1) and every input answered exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from fraudapp.models import HARD_FRAUD_TYPES

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))


def run_cli(cluster, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([FRAUDAPP, *args], env=cluster.env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.timeout(420)
def test_simulated_traffic_is_judged_exactly(fraud_cluster, tmp_path: Path) -> None:
    fraud_cluster.start_worker()
    truth, report_path = tmp_path / "truth.jsonl", tmp_path / "report.json"
    sim = run_cli(fraud_cluster, "simulate", "--count", "2500", "--seed", "5", "--rate", "0", "--truth", str(truth),
                  "--quiet", "--wait-timeout", "90", timeout=240)
    assert sim.returncode == 0, sim.stderr + "\n" + fraud_cluster.workers[0].tail()
    ev = run_cli(fraud_cluster, "evaluate", "--truth", str(truth), "--json", str(report_path), "--timeout", "90",
                 "--quiet", timeout=150)
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
