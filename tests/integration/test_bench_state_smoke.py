"""`fraudapp bench --state` in miniature: 2,000 devices put straight into the device-clicks
changelog are recovered by a fresh worker (GET /devices/{id} answers their click times),
expire once clicks stamped now reach every partition, and two workers recover them too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))
KEYS = 2000


def test_bench_state_smoke(kafka_broker, tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    started = time.monotonic()
    proc = subprocess.run(
        [FRAUDAPP, "bench", "--state", "--state-keys", str(KEYS), "--broker", kafka_broker.bootstrap,
         "--json", str(out), "--results-dir", str(tmp_path / "results")],
        check=False, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    # Three worker starts and stops: ~55 s on the idle 2-core VM, 110 s at load average 10.
    assert elapsed < 150, f"state smoke bench took {elapsed:.0f} s"
    doc = json.loads(out.read_text())
    assert doc["errors"] == {}
    state = doc["state"]
    for key in ("keys", "rss_mb_full", "rss_mb_after_expiry", "disk_mb_full", "disk_mb_after_expiry",
                "recovery_keys_per_s", "expiry_s"):  # fmt: skip
        assert state[key] is not None and state[key] > 0, key
    assert state["keys"] == KEYS
    # RSS is split into RocksDB's share (the worker's /metrics), by kind
    for key in ("rocksdb_mb_full", "rocksdb_mb_after_expiry"):
        assert set(state[key]) == {"memtables", "block_cache", "table_readers"}, key
        assert state[key]["memtables"] > 0, key
    assert set(state["recovery_s"]) == {"1_workers", "2_workers"}
    assert all(v and v > 0 for v in state["recovery_s"].values())

    # Recovered: the owner answers GET /devices/{id} with the times that were produced.
    assert state["devices_checked"] >= 3
    assert state["devices_recovered"] == state["devices_checked"]
    assert state["devices_recovered_2_workers"] == state["devices_checked"]
    # Expired: a tombstone for every device, and the same lookups now find nothing.
    assert state["expired_keys"] == KEYS
    assert state["devices_empty_after_expiry"] == state["devices_checked"]

    tables = list((tmp_path / "results").glob("*.md"))
    assert len(tables) == 1 and "state size, expiry and recovery" in tables[0].read_text()
