"""Scale-out and restarts: two workers judge like one; window state survives a restart."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import Cluster, consume_json, produce_clicks
from tests.reliability.harness import verdicts_judged

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def traffic(t0: float, devices: int = 40, per_device: int = 6) -> list[dict]:
    """Each device clicks every 2 s: from its 3rd click on, every click is click_spam."""
    clicks = []
    for d in range(devices):
        for i in range(per_device):
            clicks.append(
                {
                    "click_id": f"c{d}-{i}",
                    "ts": t0 + 2 * i,
                    "device_id": f"dev{d}",
                    "ip": "93.184.216.34",
                    "user_agent": UA,
                    "fingerprint": f"fp{d}",
                    "mouse": {"moves": 20, "duration_ms": 900, "straightness": 0.5},
                }
            )
    return clicks


def expected(clicks: list[dict]) -> dict[str, list[str]]:
    return {c["click_id"]: (["click_spam"] if int(c["click_id"].split("-")[1]) >= 2 else []) for c in clicks}


def test_two_workers_give_the_same_verdicts_as_one(fraud_cluster: Cluster) -> None:
    w1 = fraud_cluster.start_worker("w1")
    # healthy: past the rebalance that gave it partitions (each worker owns some from here)
    w2 = fraud_cluster.start_worker("w2")
    clicks = traffic(time.time() - 60)
    produce_clicks(fraud_cluster, clicks)
    verdicts = consume_json(fraud_cluster, "verdicts", len(clicks), timeout=120)
    assert len(verdicts) == len(clicks)
    got = {v["click_id"]: v["fraud_types"] for v in verdicts}
    assert got == expected(clicks)
    # every partition answered, and both workers took part
    assert len({tuple(v["source"][:2]) for v in verdicts}) == fraud_cluster.partitions
    judged = {name: verdicts_judged(worker) for name, worker in (("w1", w1), ("w2", w2))}
    assert all(judged.values()), judged


@pytest.mark.parametrize(
    "second_node",
    [
        pytest.param("w1", id="restart: same RocksDB files, changelog from the committed offset"),
        pytest.param("fresh-node", id="local state lost: a new node rebuilds from the changelog alone"),
    ],
)
def test_window_state_survives(fraud_cluster: Cluster, second_node: str) -> None:
    worker = fraud_cluster.start_worker("w1")
    t0 = time.time() - 60
    first = traffic(t0, devices=10, per_device=2)
    produce_clicks(fraud_cluster, first)
    assert len(consume_json(fraud_cluster, "verdicts", len(first), timeout=60)) == len(first)
    worker.stop()
    fraud_cluster.start_worker(second_node)
    third = [c for c in traffic(t0, devices=10, per_device=3) if c["click_id"].endswith("-2")]
    produce_clicks(fraud_cluster, third)
    verdicts = consume_json(fraud_cluster, "verdicts", len(first) + len(third), timeout=60)
    after = {v["click_id"]: v["fraud_types"] for v in verdicts if v["click_id"].endswith("-2")}
    assert after == {c["click_id"]: ["click_spam"] for c in third}
