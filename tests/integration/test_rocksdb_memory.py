"""Table stores open with bounded RocksDB memory, and /metrics shows what they use."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Cluster, consume_json, produce_clicks, wait_for

HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def rocksdb_memory(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.labels["table"], s.labels["kind"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fraudapp_rocksdb_memory_bytes"
    }


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_table_stores_use_the_configured_rocksdb_memory(fraud_cluster: Cluster) -> None:
    worker = fraud_cluster.start_worker("w1", FRAUDAPP_ROCKSDB_WRITE_BUFFER_MB="2", FRAUDAPP_ROCKSDB_BLOCK_CACHE_MB="3")
    clicks = [
        {"click_id": f"m{i}", "ts": 1.7e9 + i, "device_id": f"mdev{i % 7}", "ip": "93.184.216.34", "user_agent": HUMAN_UA}
        for i in range(40)
    ]
    produce_clicks(fraud_cluster, clicks)
    assert len(consume_json(fraud_cluster, "verdicts", len(clicks), timeout=90)) == len(clicks)

    # every partition store RocksDB opened wrote its options file
    tabledir = Path(worker.env["FRAUDAPP_TABLEDIR"])
    options = sorted(tabledir.glob("device-clicks-*.db/OPTIONS-*"))
    assert options, sorted(p.name for p in tabledir.iterdir())
    for path in options:
        text = path.read_text()
        assert re.search(r"^\s*write_buffer_size=2097152$", text, re.MULTILINE), path
        assert re.search(r"^\s*max_write_buffer_number=2$", text, re.MULTILINE), path

    memory = wait_for(
        lambda: (m := rocksdb_memory(worker.url)).get(("device-clicks", "memtables"), 0) > 0 and m,
        30,
        "fraudapp_rocksdb_memory_bytes for device-clicks",
        interval=1,
    )
    assert {kind for table, kind in memory if table == "device-clicks"} == {"memtables", "block_cache", "table_readers"}
    assert memory[("device-clicks", "block_cache")] <= 4 * 3 * 2**20  # at most 3 MiB per partition
