"""`fraudapp blacklist add|load|remove` change a running worker's verdicts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.integration.conftest import Cluster, consume_json, produce_clicks, wait_for

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FRAUDAPP, "blacklist", *args], env=cluster.env(), capture_output=True, text=True, check=False,
                          timeout=60)


def verdict_for(cluster: Cluster, ip: str, n: list[int]) -> list[str]:
    n[0] += 1
    click = {"click_id": f"probe{n[0]}", "ts": time.time(), "device_id": f"d{n[0]}", "ip": ip, "user_agent": UA,
             "fingerprint": "fp", "mouse": {"moves": 9, "duration_ms": 700, "straightness": 0.5}}
    produce_clicks(cluster, [click])
    verdicts = consume_json(cluster, "verdicts", n[0], timeout=30)
    return next(v["fraud_types"] for v in verdicts if v["click_id"] == f"probe{n[0]}")


def test_add_load_remove(fraud_cluster: Cluster, tmp_path: Path) -> None:
    fraud_cluster.start_worker("w1")
    n = [0]
    assert verdict_for(fraud_cluster, "93.184.216.34", n) == []

    done = cli(fraud_cluster, "add", "93.184.216.34", "--reason", "test")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: verdict_for(fraud_cluster, "93.184.216.34", n) == ["ip_blacklist"], 30, "ip entry applied")

    listing = tmp_path / "ranges.txt"
    listing.write_text("# bad ranges\n100.64.7.0/24 hosting abuse\n")
    done = cli(fraud_cluster, "load", str(listing))
    assert done.returncode == 0, done.stderr
    wait_for(lambda: verdict_for(fraud_cluster, "100.64.7.200", n) == ["ip_blacklist"], 30, "cidr entry applied")

    done = cli(fraud_cluster, "remove", "93.184.216.34")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: verdict_for(fraud_cluster, "93.184.216.34", n) == [], 30, "removal applied")


def test_invalid_value_is_refused_with_one_line(fraud_cluster: Cluster) -> None:
    done = cli(fraud_cluster, "add", "10.0.0.0/33", "--kind", "cidr")
    assert done.returncode != 0
    assert "10.0.0.0/33" in done.stderr and "Traceback" not in done.stderr
