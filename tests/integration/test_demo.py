"""`fraudapp demo --stream both` end to end (short): worker up, dashboard address, clicks and
crypto transfers at once, an accuracy table for each, and nothing left running afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))


def processes_with(app_id: str) -> list[int]:
    """Pids whose environment names this app id (the demo's worker would)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"FRAUDAPP_APP_ID={app_id}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(300)
def test_demo_runs_and_cleans_up(fraud_cluster, tmp_path: Path) -> None:
    from tests.integration.conftest import free_port

    env = fraud_cluster.env()
    proc = subprocess.run(
        [FRAUDAPP, "demo", "--duration", "8", "--rate", "100", "--stream", "both", "--tx-rate", "50",
         "--broker", fraud_cluster.broker_url, "--web-port", str(free_port()), "--quiet"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "dashboard: http://127.0.0.1:" in out
    assert "Per fraud type" in out
    assert "hard rules exact: yes" in out
    assert "Per transaction fraud type" in out  # both streams, judged by the one worker
    assert out.count("rules exact: yes") == 2, out  # the click report's and the transactions'
    assert "stopped the worker" in out
    assert processes_with(fraud_cluster.app_id) == []
