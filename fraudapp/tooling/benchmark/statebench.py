"""`fraudapp bench --state`: RSS and on-disk size of N devices in window state, its
recovery from the changelog on fresh workers (one, then two), and its expiry.

The state is not built by pushing N clicks through the pipeline (a few hundred clicks/s
here): N `device-clicks` changelog records are produced straight into
`<app>-device-clicks-changelog`, serialized as Faust's json serializer writes them
(key `b'"<device>"'`, value `b'[<ts>, ...]'`, orjson), each in the partition the clicks
topic gives the device (Kafka's default murmur2 partitioner on the raw device id), with
event times two minutes in the past. Fresh workers (empty table dirs) then rebuild it.

One worker recovers first (its RSS and disk are measured with N keys); then clicks stamped
now go to every partition of the clicks topic, so that each partition's sweeper runs, until
the changelog holds a tombstone for each of the N devices. Then two workers, started
together, recover the same N keys. Each run is its own deployment (app id, topics,
changelog produced afresh): expiry fills the first changelog with tombstones, and a new
worker in the group of stopped ones waits out their session timeout before it is assigned.

Recovery time: worker process start -> the worker logs Faust's "Worker ready" after its
last "Restoring state from changelog topics" and answers /health (every worker, for two);
it includes the worker's startup. Keys/s: N / (first "Restoring state" -> ready) of the
single worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from fraudapp.pipeline import partition_of
from fraudapp.tooling.benchmark.harness import FAUST, Progress, free_port
from fraudapp.tooling.benchmark.procs import Proc
from fraudapp.tooling.benchmark.traffic import _Gen

STATE_AGE_SECONDS = 120.0  # state event times: this far before the run starts (> W + lateness = 70 s)
CHECK_DEVICES = 5  # devices looked up with GET /devices/{id} after recovery and after expiry
RESTORING = re.compile(r"Restoring state from changelog topics|Restarting Recovery|Recovery rebalancing again")
READY = "Worker ready"
REMAINING = re.compile(r"total remaining=(\d+)")


@dataclass
class StateConfig:
    keys: int = 1_000_000
    partitions: int = 4
    workers: tuple[int, ...] = (1, 2)  # recovery runs; the 1-worker run also measures expiry
    recovery_timeout: float = 1200.0
    expiry_timeout: float = 1800.0
    trickle_interval: float = 0.25  # seconds between clicks to each partition during expiry


@dataclass
class StateResult:
    keys: int = 0
    produce_s: float | None = None
    recovery_s: dict[str, float | None] = field(default_factory=dict)
    restore_s: dict[str, float | None] = field(default_factory=dict)
    recovery_keys_per_s: float | None = None
    rss_mb_full: float | None = None
    rss_mb_after_expiry: float | None = None
    rocksdb_mb_full: dict[str, float] = field(default_factory=dict)  # kind -> MB (the worker's /metrics)
    rocksdb_mb_after_expiry: dict[str, float] = field(default_factory=dict)
    disk_mb_full: float | None = None
    disk_mb_after_expiry: float | None = None
    disk_mb_after_expiry_stopped: float | None = None
    expiry_s: float | None = None
    expired_keys: int = 0
    devices_checked: int = 0
    devices_recovered: int = 0
    devices_recovered_2_workers: int = 0
    devices_empty_after_expiry: int = 0


def device_times(i: int, base: float) -> list[float]:
    """One click per device; every third device has two, 2 s apart."""
    ts = round(base - (i % 1000) / 100, 3)
    return [round(ts - 2.0, 3), ts] if i % 3 == 0 else [ts]


def rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in family:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def rocksdb_mb(url: str) -> dict[str, float]:
    """RocksDB memory of every table, by kind (memtables, block cache, table readers), in MB,
    from the worker's /metrics ({} when it does not answer): the part of RSS RocksDB holds."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    sizes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "fraudapp_rocksdb_memory_bytes":
            continue
        for sample in family.samples:
            kind = sample.labels["kind"]
            sizes[kind] = sizes.get(kind, 0.0) + sample.value / 2**20
    return {kind: round(mb, 1) for kind, mb in sorted(sizes.items())}


def disk_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total / 2**20


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


class Worker:
    def __init__(self, name: str, env: dict[str, str], work: Path) -> None:
        self.port = int(env["FRAUDAPP_WEB_PORT"])
        self.log = work / f"{name}.log"
        self.started = time.time()
        self.proc = Proc(name, [FAUST, "-A", "fraudapp", "worker", "-l", "info"], self.log, env=env)
        self.restore_started: float | None = None
        self.remaining: int | None = None  # changelog records still to read, as Faust last logged it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """Recovered: "Worker ready" after the last (re)start of recovery, and /health says so."""
        if not self.proc.alive():
            raise RuntimeError(f"worker exited with {self.proc.proc.returncode}:\n{self.proc.tail()}")
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return False
        last_restore = max((m.end() for m in RESTORING.finditer(text)), default=-1)
        if last_restore >= 0 and self.restore_started is None:
            self.restore_started = time.time()
        remaining = REMAINING.findall(text, max(last_restore, 0))
        self.remaining = int(remaining[-1]) if remaining else None
        if text.rfind(READY) <= last_restore:
            return False
        return _get_json(self.url + "/health")[0] == 200

    def stop(self) -> None:
        self.proc.stop()


async def stop_all(workers: list[Worker]) -> None:
    """Stop workers in parallel (each waits for its graceful shutdown)."""
    await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))


class StateBench:
    def __init__(self, cfg: StateConfig, bootstrap: str, work: Path, progress: Progress) -> None:
        self.cfg, self.bootstrap, self.work, self.p = cfg, bootstrap, work, progress
        self.tag = uuid.uuid4().hex[:8]
        self.app_id = f"statebench-{self.tag}"
        self.base_ts = time.time() - STATE_AGE_SECONDS
        self.res = StateResult(keys=cfg.keys)
        self.end_offsets: dict[int, int] = {}

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-device-clicks-changelog"

    def topic(self, name: str) -> str:
        return f"{self.app_id}-{name}"

    def device(self, i: int) -> str:
        return f"st{self.tag}-d{i}"

    # ---------------------------------------------------------------- kafka
    async def create_topics(self) -> None:
        n = self.cfg.partitions
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(self.topic(t), n, 1) for t in ("clicks", "verdicts", "fraud-alerts", "clicks-dlq")]
                + [NewTopic(self.topic("blacklist-updates"), 1, 1),
                   NewTopic(self.changelog, n, 1, topic_configs={"cleanup.policy": "compact"})]
            )  # fmt: skip
        finally:
            await admin.close()

    async def produce_state(self) -> None:
        n, parts = self.cfg.keys, self.cfg.partitions
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=50, max_batch_size=1024 * 1024, acks=1)
        await producer.start()
        t0 = time.time()
        try:
            chunk = 20_000
            for start in range(0, n, chunk):
                futures = []
                for i in range(start, min(n, start + chunk)):
                    device = self.device(i)
                    futures.append(
                        await producer.send(
                            self.changelog,
                            key=orjson.dumps(device),
                            value=orjson.dumps(device_times(i, self.base_ts)),
                            partition=partition_of(device.encode(), parts),
                        )
                    )
                await asyncio.gather(*futures)
                done = min(n, start + chunk)
                self.p.status(
                    f"state: produced {done:,}/{n:,} changelog records ({done / max(time.time() - t0, 1e-3):,.0f}/s)"
                )
        finally:
            await producer.stop()
        self.res.produce_s = self.res.produce_s or round(time.time() - t0, 2)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(self.changelog, p) for p in range(parts)]
            self.end_offsets = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()
        self.p.line(f"state: {n:,} device-clicks records in {self.changelog} ({self.res.produce_s:.1f} s)")

    # ---------------------------------------------------------------- workers
    def worker_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            FRAUDAPP_BROKER="kafka://" + self.bootstrap.replace(",", ";kafka://"),
            FRAUDAPP_APP_ID=self.app_id,
            FRAUDAPP_PARTITIONS=str(self.cfg.partitions),
            FRAUDAPP_TOPIC_CLICKS=self.topic("clicks"),
            FRAUDAPP_TOPIC_VERDICTS=self.topic("verdicts"),
            FRAUDAPP_TOPIC_ALERTS=self.topic("fraud-alerts"),
            FRAUDAPP_TOPIC_BLACKLIST=self.topic("blacklist-updates"),
            FRAUDAPP_TOPIC_DLQ=self.topic("clicks-dlq"),
            FRAUDAPP_TOPIC_RULES=self.topic("rules"),
            FRAUDAPP_TOPIC_RULES_SHADOW=self.topic("rules-shadow"),
            FRAUDAPP_TOPIC_RULES_AUDIT=self.topic("rules-audit"),
            FRAUDAPP_DATADIR=str(self.work / name / "data"),
            FRAUDAPP_TABLEDIR=str(self.work / name / "tables"),
            FRAUDAPP_WEB_PORT=str(free_port()),
        )
        (self.work / name).mkdir(parents=True, exist_ok=True)
        return env

    async def recover(self, count: int) -> list[Worker]:
        label = f"{count}_workers"
        workers = [Worker(f"w{count}-{i}", self.worker_env(f"w{count}-{i}"), self.work) for i in range(count)]
        started = min(w.started for w in workers)
        deadline = started + self.cfg.recovery_timeout
        try:
            while not all(await asyncio.gather(*(asyncio.to_thread(w.ready) for w in workers))):
                if time.time() > deadline:
                    raise TimeoutError(f"{count} worker(s) not recovered after {self.cfg.recovery_timeout:.0f} s")
                left = [w.remaining for w in workers if w.remaining is not None]
                note = f", {sum(left):,} changelog records left as Faust last logged" if left else ""
                self.p.status(
                    f"state: {count} worker(s) recovering {self.cfg.keys:,} keys ({time.time() - started:.0f} s{note})"
                )
                await asyncio.sleep(0.2)
        except BaseException:
            await stop_all(workers)
            raise
        done = time.time()
        self.res.recovery_s[label] = round(done - started, 2)
        restore_starts = [w.restore_started for w in workers if w.restore_started is not None]
        restore = done - min(restore_starts) if restore_starts else None
        self.res.restore_s[label] = round(restore, 2) if restore is not None else None
        self.p.line(
            f"state: {count} worker(s) recovered {self.cfg.keys:,} keys in {done - started:.1f} s from start"
            + (f" ({restore:.1f} s from 'Restoring state')" if restore is not None else "")
        )
        return workers

    def lookup(self, worker: Worker, i: int) -> list[float] | None:
        status, body = _get_json(f"{worker.url}/devices/{self.device(i)}")
        return body.get("recent_click_times") if status == 200 and isinstance(body, dict) else None

    async def lookups(
        self, worker: Worker, ids: list[int], ok: Callable[[int, Any], bool], patience: float = 20.0
    ) -> list[list[float] | None]:
        """GET /devices/{id} of `ids`, again every second while some answer is not `ok` (a busy
        worker may time out or answer 503), for up to `patience` seconds."""
        deadline = time.time() + patience
        while True:
            got = await asyncio.gather(*(asyncio.to_thread(self.lookup, worker, i) for i in ids))
            if all(ok(i, g) for i, g in zip(ids, got, strict=True)) or time.time() > deadline:
                return got
            await asyncio.sleep(1.0)

    def sample(self) -> list[int]:
        n = self.cfg.keys
        return sorted({min(n - 1, k * n // CHECK_DEVICES) for k in range(CHECK_DEVICES)})

    async def check_recovered(self, worker: Worker, quiet: bool = False) -> int:
        """GET /devices/{id} of a few devices (answered by the owner): their times are back."""
        ids = self.sample()
        got = await self.lookups(worker, ids, lambda i, g: g == device_times(i, self.base_ts))
        recovered = sum(g == device_times(i, self.base_ts) for i, g in zip(ids, got, strict=True))
        if recovered != len(ids):
            self.p.line(f"state: GET /devices after recovery: {list(zip(ids, got, strict=True))}")
        if not quiet:
            self.res.devices_checked, self.res.devices_recovered = len(ids), recovered
        return recovered

    async def measure_full(self, worker: Worker) -> None:
        await asyncio.sleep(2.0)  # let the worker settle after recovery
        self.res.rss_mb_full = round(rss_mb(worker.proc.pid), 1)
        self.res.rocksdb_mb_full = await self.rocksdb_memory(worker)
        self.res.disk_mb_full = round(disk_mb(self.work / "w1-0" / "tables"), 1)
        self.p.line(
            f"state: 1 worker with {self.cfg.keys:,} devices: RSS {self.res.rss_mb_full:.0f} MB "
            f"(RocksDB {_kinds(self.res.rocksdb_mb_full)}), table dir {self.res.disk_mb_full:.1f} MB"
        )

    async def rocksdb_memory(self, worker: Worker) -> dict[str, float]:
        # the gauges are refreshed by a 1 s timer: wait for a fresh value (a busy worker
        # may not answer at once)
        await asyncio.sleep(1.5)
        for _ in range(10):
            if sizes := await asyncio.to_thread(rocksdb_mb, worker.url):
                return sizes
            await asyncio.sleep(1.0)
        return {}

    # ---------------------------------------------------------------- expiry
    def trickle_devices(self) -> list[str]:
        """One device per partition of the clicks topic."""
        devices: dict[int, str] = {}
        i = 0
        while len(devices) < self.cfg.partitions:
            d = f"st{self.tag}-now{i}"
            devices.setdefault(partition_of(d.encode(), self.cfg.partitions), d)
            i += 1
        return [devices[p] for p in sorted(devices)]

    async def count_tombstones(self, stop: asyncio.Event, counter: list[int]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(self.changelog, p) for p in range(self.cfg.partitions)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self.end_offsets.get(tp.partition, 0))
            seen: set[bytes] = set()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=20_000)
                for records in batches.values():
                    for rec in records:
                        if rec.value is None and rec.key is not None:
                            seen.add(rec.key)
                counter[0] = len(seen)
        finally:
            await consumer.stop()

    async def expire(self, worker: Worker) -> None:
        gen = _Gen(1, f"st{self.tag}x", time.time(), 1.0)
        devices = self.trickle_devices()
        stop = asyncio.Event()
        counter = [0]
        counting = asyncio.create_task(self.count_tombstones(stop, counter))
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0, acks=1)
        await producer.start()
        n = self.cfg.keys
        t0 = time.time()
        try:
            while counter[0] < n:
                if time.time() - t0 > self.cfg.expiry_timeout:
                    raise TimeoutError(f"{counter[0]:,}/{n:,} keys expired after {self.cfg.expiry_timeout:.0f} s")
                if not worker.proc.alive():
                    raise RuntimeError(f"worker exited during expiry:\n{worker.proc.tail()}")
                if counting.done():
                    counting.result()
                    raise RuntimeError("changelog reader stopped")
                for d in devices:
                    # Keyed by the device: read from clicks p. Keyed by its click id: re-keyed by
                    # the worker into clicks-by-device p. The device stage's stream time is the
                    # slower of the two topics (state/streamtime.py), so both must move.
                    click = gen.click(d, ts=time.time())
                    await producer.send(self.topic("clicks"), key=d.encode(), value=orjson.dumps(click))
                    click = gen.click(d, ts=time.time())
                    await producer.send(
                        self.topic("clicks"), key=click["click_id"].encode(), value=orjson.dumps(click)
                    )
                elapsed = time.time() - t0
                self.p.status(f"state: expiry {counter[0]:,}/{n:,} keys deleted ({elapsed:.0f} s, "
                              f"{counter[0] / max(elapsed, 1e-3):,.0f} keys/s)")  # fmt: skip
                await asyncio.sleep(self.cfg.trickle_interval)
        finally:
            await producer.stop()
            stop.set()
            with contextlib.suppress(Exception):
                await counting
        self.res.expiry_s = round(time.time() - t0, 2)
        self.res.expired_keys = counter[0]
        self.p.line(f"state: {counter[0]:,} keys expired (changelog tombstones) in {self.res.expiry_s:.1f} s")
        await asyncio.sleep(2.0)
        ids = self.sample()
        got = await self.lookups(worker, ids, lambda _i, g: g == [])
        self.res.devices_empty_after_expiry = sum(g == [] for g in got)
        if self.res.devices_empty_after_expiry != len(ids):
            raw = [_get_json(f"{worker.url}/devices/{self.device(i)}") for i in ids[:2]]
            self.p.line(f"state: GET /devices after expiry: {list(zip(ids, got, strict=True))} {raw}")
        self.res.rss_mb_after_expiry = round(rss_mb(worker.proc.pid), 1)
        self.res.rocksdb_mb_after_expiry = await self.rocksdb_memory(worker)
        self.res.disk_mb_after_expiry = round(disk_mb(self.work / "w1-0" / "tables"), 1)
        self.p.line(
            f"state: after expiry: RSS {self.res.rss_mb_after_expiry:.0f} MB "
            f"(RocksDB {_kinds(self.res.rocksdb_mb_after_expiry)}), table dir "
            f"{self.res.disk_mb_after_expiry:.1f} MB"
        )

    # ---------------------------------------------------------------- all
    async def run(self) -> StateResult:
        for count in self.cfg.workers:
            self.p.line(f"== state: recovery on {count} fresh worker(s)")
            self.app_id = f"statebench-{self.tag}-w{count}"
            await self.create_topics()
            await self.produce_state()
            workers = await self.recover(count)
            try:
                if count == 1:
                    restore = self.res.restore_s.get("1_workers")
                    if restore:
                        self.res.recovery_keys_per_s = round(self.cfg.keys / restore, 1)
                    await self.check_recovered(workers[0])
                    await self.measure_full(workers[0])
                    await self.expire(workers[0])
                else:
                    self.res.devices_recovered_2_workers = await self.check_recovered(workers[0], quiet=True)
            finally:
                await stop_all(workers)
            if count == 1:
                self.res.disk_mb_after_expiry_stopped = round(disk_mb(self.work / "w1-0" / "tables"), 1)
        return self.res


def _kinds(mb: dict[str, float]) -> str:
    if not mb:
        return "–"
    return f"{sum(mb.values()):.0f}: " + ", ".join(f"{kind} {v:.1f}" for kind, v in mb.items())


def state_doc(res: StateResult, cfg: StateConfig, meta: dict[str, Any], error: str | None) -> dict[str, Any]:
    recovery = {f"{k}_workers": res.recovery_s.get(f"{k}_workers") for k in sorted(cfg.workers)}
    return {
        "version": 1,
        "meta": meta,
        "config": {"keys": cfg.keys, "partitions": cfg.partitions, "workers": sorted(cfg.workers)},
        "state": {
            "keys": res.keys,
            "produce_s": res.produce_s,
            "rss_mb_full": res.rss_mb_full,
            "rss_mb_after_expiry": res.rss_mb_after_expiry,
            "rocksdb_mb_full": res.rocksdb_mb_full,
            "rocksdb_mb_after_expiry": res.rocksdb_mb_after_expiry,
            "disk_mb_full": res.disk_mb_full,
            "disk_mb_after_expiry": res.disk_mb_after_expiry,
            "disk_mb_after_expiry_stopped": res.disk_mb_after_expiry_stopped,
            "recovery_s": recovery,
            "restore_s": {f"{k}_workers": res.restore_s.get(f"{k}_workers") for k in sorted(cfg.workers)},
            "recovery_keys_per_s": res.recovery_keys_per_s,
            "expiry_s": res.expiry_s,
            "expired_keys": res.expired_keys,
            "devices_checked": res.devices_checked,
            "devices_recovered": res.devices_recovered,
            "devices_recovered_2_workers": res.devices_recovered_2_workers,
            "devices_empty_after_expiry": res.devices_empty_after_expiry,
        },
        "errors": {"state": error} if error else {},
    }


def state_markdown(doc: dict[str, Any]) -> str:
    m, s = doc["meta"], doc["state"]

    def fmt(x: float | None, spec: str = ".1f") -> str:
        return "–" if x is None else format(x, spec)

    rec, restore = s["recovery_s"], s["restore_s"]
    lines = [
        (
            f"## {m['started']} — state size, expiry and recovery, {s['keys']:,} devices, "
            f"{doc['config']['partitions']} partitions"
        ),
        "",
        f"Host: {m['host']}, {m['cpus']} CPUs, Python {m['python']}, Kafka {m['kafka']}. Command: `{m['command']}`",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| worker RSS, {s['keys']:,} devices in state (MB) | {fmt(s['rss_mb_full'], '.0f')} |",
        f"| worker RSS after expiry (MB) | {fmt(s['rss_mb_after_expiry'], '.0f')} |",
        f"| of which RocksDB, full (MB) | {_kinds(s.get('rocksdb_mb_full') or {})} |",
        f"| of which RocksDB, after expiry (MB) | {_kinds(s.get('rocksdb_mb_after_expiry') or {})} |",
        f"| table dir, full (MB) | {fmt(s['disk_mb_full'])} |",
        (
            f"| table dir after expiry, running / stopped (MB) | "
            f"{fmt(s['disk_mb_after_expiry'])} / {fmt(s['disk_mb_after_expiry_stopped'])} |"
        ),
        f"| expiry: all keys deleted (s) | {fmt(s['expiry_s'])} |",
    ]
    for label in rec:
        lines.append(
            f"| recovery, {label.split('_')[0]} worker(s): start → ready / restore only (s) | "
            f"{fmt(rec[label])} / {fmt(restore.get(label))} |"
        )
    lines.append(f"| recovery, 1 worker (keys/s, restore only) | {fmt(s['recovery_keys_per_s'], ',.0f')} |")
    if doc["errors"]:
        lines.append(f"| error | {doc['errors']['state']} |")
    lines.append("")
    return "\n".join(lines)
