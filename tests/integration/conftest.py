"""Fixtures for tests against the real broker: fraudapp workers as real processes
(`faust -A fraudapp worker`, as users run it) and Kafka clients to feed and read them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from fraudapp.tooling.benchmark.kafkaio import produce
from fraudapp.tooling.processes import stop_process_group

FAUST = str(Path(sys.executable).with_name("faust"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Worker:
    proc: subprocess.Popen
    port: int
    env: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        stop_process_group(self.proc, sig, timeout)


@dataclass
class Cluster:
    """A fraudapp deployment under test: one app id, its topics, and its workers."""

    broker_url: str
    bootstrap: str
    app_id: str
    tmp: Path
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.app_id}.{name}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            FRAUDAPP_BROKER=self.broker_url,
            FRAUDAPP_APP_ID=self.app_id,
            FRAUDAPP_PARTITIONS=str(self.partitions),
            FRAUDAPP_TOPIC_CLICKS=self.topic("clicks"),
            FRAUDAPP_TOPIC_VERDICTS=self.topic("verdicts"),
            FRAUDAPP_TOPIC_ALERTS=self.topic("fraud-alerts"),
            FRAUDAPP_TOPIC_BLACKLIST=self.topic("blacklist-updates"),
            FRAUDAPP_TOPIC_DLQ=self.topic("clicks-dlq"),
            FRAUDAPP_TOPIC_RULES=self.topic("rules"),
            FRAUDAPP_TOPIC_TRANSACTIONS=self.topic("transactions"),
            FRAUDAPP_TOPIC_TRANSACTION_VERDICTS=self.topic("transaction-verdicts"),
            FRAUDAPP_TOPIC_TRANSACTIONS_DLQ=self.topic("transactions-dlq"),
            FRAUDAPP_TOPIC_RULES_SHADOW=self.topic("rules-shadow"),
            FRAUDAPP_TOPIC_RULES_AUDIT=self.topic("rules-audit"),
            FRAUDAPP_LOG_LEVEL="INFO",
            FRAUDAPP_STORE="rocksdb://",
            # Off unless a test turns it on: most tests send many devices from one address
            # for one publisher (a farm, to the reputation) and assert the hard rules'
            # verdicts exactly. test_reputation.py and the simulate tests run with it on.
            FRAUDAPP_REPUTATION="false",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def start_worker(
        self, name: str = "w1", wait: bool = True, port: int | None = None, **env_overrides: str
    ) -> Worker:
        port = port or free_port()
        env = self.env(
            FRAUDAPP_WEB_PORT=str(port),
            FRAUDAPP_DATADIR=str(self.tmp / name / "data"),
            FRAUDAPP_TABLEDIR=str(self.tmp / name / "tables"),
            **env_overrides,
        )
        log = self.tmp / f"{name}-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [FAUST, "-A", "fraudapp", "worker", "-l", "info"],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(proc, port, env, log)
        self.workers.append(worker)
        if wait:
            wait_for(worker.healthy, 120, f"worker {name} to be healthy:\n{worker.tail()}", interval=0.25)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def fraud_cluster(kafka_broker: Any, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(
        broker_url=kafka_broker.url,
        bootstrap=kafka_broker.bootstrap,
        app_id="t" + uuid.uuid4().hex[:10],
        tmp=tmp_path,
    )
    asyncio.run(create_topics(cluster))
    try:
        yield cluster
    finally:
        cluster.stop_all()


async def create_topics(cluster: Cluster) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        names = ["clicks", "verdicts", "fraud-alerts", "clicks-dlq", "transactions", "transaction-verdicts",
                 "transactions-dlq"]
        topics = [NewTopic(cluster.topic(n), cluster.partitions, 1) for n in names]
        topics.append(NewTopic(cluster.topic("blacklist-updates"), 1, 1))
        await admin.create_topics(topics)
    finally:
        await admin.close()


def produce_clicks(cluster: Cluster, clicks: list[dict[str, Any] | bytes], keyed: bool = True) -> None:
    records = []
    for click in clicks:
        if isinstance(click, bytes):
            records.append((b"raw", click))
        else:
            key = str(click.get("device_id", "")).encode() if keyed else None
            records.append((key, orjson.dumps(click)))
    asyncio.run(produce(cluster.bootstrap, cluster.topic("clicks"), records))


async def _consume(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(r for r in records)
    finally:
        await consumer.stop()
    return out


def consume(cluster: Cluster, name: str, expected: int, timeout: float = 60) -> list[Any]:
    """Records of `name` (a short topic name) once `expected` have arrived, or what came by `timeout`."""
    return asyncio.run(_consume(cluster.bootstrap, cluster.topic(name), expected, timeout))


def consume_json(cluster: Cluster, name: str, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in consume(cluster, name, expected, timeout)]
