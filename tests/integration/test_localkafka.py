"""fraudapp.tooling.localkafka against a real broker, the `fraudapp kafka` CLI, and its errors."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from fraudapp.tooling import localkafka


def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


async def _round_trip(bootstrap: str, topic: str, n: int = 20, expect: int | None = None) -> list[bytes]:
    """Produce n records (acks=all), read ``expect`` (default n) back from the start."""
    expect = n if expect is None else expect
    async with asyncio.timeout(60):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(n):
                await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"g-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            while len(got) < expect:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [r.value for records in batch.values() for r in records if r.value]
            return got
        finally:
            await consumer.stop()


async def test_round_trip(kafka_broker: localkafka.Cluster) -> None:
    assert kafka_broker.url == f"kafka://{kafka_broker.bootstrap}"
    topic = f"t-{uuid.uuid4().hex}"
    got = await _round_trip(kafka_broker.bootstrap, topic)
    # One key -> one partition -> order preserved.
    assert got == [f"m{i}".encode() for i in range(20)]


def _fraudapp(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "fraudapp"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "fraudapp"]
    return subprocess.run([*cmd, "kafka", *args], capture_output=True, text=True, timeout=150, check=False)


def _kafka_pids_in(data_dir: Path) -> list[int]:
    return [s.pid for s in localkafka.status() if s.data_dir == data_dir.resolve()]


def test_cli_start_status_stop(tmp_path: Path) -> None:
    port = localkafka.free_port(2)  # broker port and the default controller port (port+1)
    data_dir = tmp_path / "kafka"
    try:
        started = _fraudapp("start", "--port", str(port), "--data-dir", str(data_dir))
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"kafka://127.0.0.1:{port}"
        # start returned, the broker keeps running in the background
        pids = _kafka_pids_in(data_dir)
        assert len(pids) == 1

        shown = _fraudapp("status")
        assert shown.returncode == 0, shown.stderr
        line = next(ln for ln in shown.stdout.splitlines() if str(data_dir.resolve()) in ln)
        assert line.split()[:2] == [str(port), str(pids[0])]

        again = _fraudapp("start", "--port", str(port), "--data-dir", str(data_dir))
        assert again.returncode == 1
        assert again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1

        stopped = _fraudapp("stop", "--port", str(port))
        assert stopped.returncode == 0, stopped.stderr
        assert str(pids[0]) in stopped.stdout
        _wait_for(lambda: not _kafka_pids_in(data_dir), 30, "the broker to exit")
        assert not (data_dir / "node-1" / "kafka.pid").exists()
    finally:
        localkafka.stop(data_dir)


# ----------------------------------------------------------------- errors (no broker needed)


@pytest.mark.unit
def test_port_in_use_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(localkafka.KafkaError, match=rf"port {port} is already in use"):
            localkafka.start(port, tmp_path / "k", controller_port=localkafka.free_port())
    assert not (tmp_path / "k").exists()


@pytest.mark.unit
def test_java_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    real_which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: None if name == "java" else real_which(name, *a, **k),
    )
    with pytest.raises(localkafka.KafkaError, match=r"^java not found"):
        localkafka.start(localkafka.free_port(2), tmp_path / "k")
    assert not (tmp_path / "k").exists()


@pytest.mark.unit
def test_mvn_missing_only_matters_without_cached_jars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDAPP_KAFKA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(localkafka.KafkaError, match=r"^mvn not found.*Kafka 3\.9\.1"):
        localkafka.ensure_jars("3.9.1")


@pytest.mark.unit
def test_refuses_to_wipe_foreign_dir(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(localkafka.KafkaError, match="refusing to wipe"):
        localkafka.start(localkafka.free_port(2), tmp_path)
    assert (tmp_path / "precious.txt").exists()


# ----------------------------------------------------------------- slow: cold paths, 3 nodes


@pytest.mark.slow
def test_resolve_jars_into_fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDAPP_KAFKA_CACHE", str(tmp_path))
    lib = localkafka.ensure_jars("3.9.1")
    assert lib == tmp_path / "kafka-3.9.1" / "lib"
    assert (lib / "kafka_2.13-3.9.1.jar").is_file()
    assert (lib / "slf4j-reload4j-1.7.36.jar").is_file()
    # Cached now: a second call must not need Maven (nor the network).
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert localkafka.ensure_jars("3.9.1") == lib


@pytest.mark.slow
async def test_three_nodes_replication_3(tmp_path: Path) -> None:
    port = localkafka.free_port(6)  # brokers port..port+2, controllers port+3..port+5
    cluster = await asyncio.to_thread(localkafka.start, port, tmp_path, 3)
    try:
        assert cluster.bootstrap == ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        topic = f"rf3-{uuid.uuid4().hex}"
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
            (desc,) = await admin.describe_topics([topic])
            assert all(len(p["replicas"]) == 3 for p in desc["partitions"])
        finally:
            await admin.close()
        assert len(await _round_trip(cluster.bootstrap, topic)) == 20

        # One node down: min.insync.replicas=2 still accepts acks=all writes.
        await asyncio.to_thread(cluster.kill_node, 2)
        assert cluster.nodes[2].pid is None
        alive = ",".join(n.bootstrap for n in cluster.nodes[:2])
        assert len(await _round_trip(alive, topic, expect=40)) == 40

        await asyncio.to_thread(cluster.start_node, 2)
        assert cluster.nodes[2].pid is not None
    finally:
        await asyncio.to_thread(cluster.stop)
    assert not cluster.pids
    assert not [s for s in localkafka.status() if s.data_dir == tmp_path.resolve()]
