"""Traffic, a brute-force reference and a verifier for the reliability tests.

Traffic is chosen so that the expected hard-rule labels do not depend on cross-partition
order: every click is keyed by its device (so a device's clicks keep their order), no
session, no blacklist, unique click ids, a human User-Agent. Its only hard rule is then
click_spam, computed here by brute force in production order. A share of the input is
malformed (-> clicks-dlq) and some devices send unkeyed single clicks (re-keyed path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.integration.conftest import Cluster, Worker

HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
SPAM_WINDOW, SPAM_THRESHOLD = 10.0, 2


@dataclass
class Traffic:
    records: list[tuple[bytes | None, bytes]]  # in production order
    spam: dict[str, bool]  # click_id -> click_spam expected
    bad: int


def make_traffic(n: int, seed: int = 7, span: float = 600.0) -> Traffic:
    """n inputs: ~1 % malformed, ~1 % unkeyed single clicks, the rest keyed device clicks."""
    rng = random.Random(seed)
    devices = [f"dev{i}" for i in range(max(10, n // 40))]
    t0 = time.time() - span - 60
    step = span / n
    history: dict[str, list[float]] = defaultdict(list)
    records: list[tuple[bytes | None, bytes]] = []
    spam: dict[str, bool] = {}
    bad = 0
    t = t0
    for i in range(n):
        t += step
        r = rng.random()
        if r < 0.01:
            records.append((b"bad", b"not json %d" % i))
            bad += 1
            continue
        cid = f"c{i}"
        if r < 0.02:
            device, key = f"solo{i}", None  # one click only: never spam, order-free
        else:
            device = rng.choice(devices)
            key = device.encode()
        # bursts: a device often clicks again within a second or two
        ts = round(t + (rng.random() * 2 if rng.random() < 0.3 else 0.0), 3)
        prior = sum(1 for x in history[device] if ts - SPAM_WINDOW <= x <= ts)
        history[device].append(ts)
        spam[cid] = prior >= SPAM_THRESHOLD
        body = {
            "click_id": cid,
            "ts": ts,
            "device_id": device,
            "ip": "93.184.216.34",
            "user_agent": HUMAN_UA,
            "fingerprint": "fp-" + device,
            "campaign_id": f"camp{i % 5}",
            "publisher_id": f"pub{i % 3}",
        }
        records.append((key, orjson.dumps(body)))
    return Traffic(records, spam, bad)


class AsyncThread(threading.Thread):
    """Runs `self._run()` on its own event loop in a daemon thread; an exception is kept in
    `error` for the test to report."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    async def _run(self) -> None:
        raise NotImplementedError


class Producer(AsyncThread):
    """Produces the traffic in the background at `rate` records/s (None: as fast as it can)."""

    def __init__(self, cluster: Cluster, traffic: Traffic, rate: float | None = None, topic: str = "clicks") -> None:
        super().__init__()
        self.cluster, self.traffic, self.rate, self.topic = cluster, traffic, rate, topic
        self.sent = 0

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.cluster.bootstrap, linger_ms=5, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            topic = self.cluster.topic(self.topic)
            start = time.monotonic()
            chunk = 200
            for i in range(0, len(self.traffic.records), chunk):
                futures = [await producer.send(topic, key=k, value=v) for k, v in self.traffic.records[i : i + chunk]]
                await asyncio.gather(*futures)
                self.sent = i + len(futures)
                if self.rate:
                    ahead = self.sent / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:
            await producer.stop()


async def _collect(bootstrap: str, topics: list[str], done: Any, timeout: float, settle: float) -> list[Any]:
    """Committed records (read_committed) of `topics` until `done(records)` holds (or
    `timeout`), then `settle` seconds more and up to the end of every partition."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(out):
            batch = await consumer.getmany(timeout_ms=500, max_records=20000)
            for records in batch.values():
                out.extend(records)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            batch = await consumer.getmany(timeout_ms=200, max_records=20000)
            for records in batch.values():
                out.extend(records)
        end = await consumer.end_offsets(tps)  # read_committed: last stable offsets
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=20000)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


def collect_outputs(cluster: Cluster, inputs: int, timeout: float, settle: float = 3.0,
                    outputs: tuple[str, str] = ("verdicts", "clicks-dlq")) -> list[Any]:  # fmt: skip
    """Verdicts and dead letters (the topics `outputs`) once every input has one (or by `timeout`)."""

    state = {"n": 0, "seen": set()}

    def done(records: list[Any]) -> bool:
        seen = state["seen"]
        for r in records[state["n"] :]:
            seen.add(_source(r))
        state["n"] = len(records)
        return len(seen) >= inputs

    topics = [cluster.topic(name) for name in outputs]
    records = asyncio.run(_collect(cluster.bootstrap, topics, done, timeout, settle))
    if len(state["seen"]) < inputs:
        print(f"\n{inputs - len(state['seen'])} inputs unanswered after {timeout:.0f} s; the workers' tasks:")
        print(dump_tasks(cluster))
    return records


def dump_tasks(cluster: Cluster, wait: float = 3.0) -> str:
    """Every live worker's asyncio tasks and threads with their stacks (SIGUSR1: mode's
    `cry`, written to the worker's log), so that a hang leaves its explanation behind."""
    live = [w for w in cluster.workers if w.proc.poll() is None]
    sizes = {}
    for worker in live:
        with contextlib.suppress(OSError):
            sizes[worker.log] = worker.log.stat().st_size
            os.kill(worker.proc.pid, signal.SIGUSR1)
    time.sleep(wait)
    parts = []
    for worker in live:
        with contextlib.suppress(OSError), worker.log.open("rb") as f:
            f.seek(sizes.get(worker.log, 0))
            parts.append(f"--- {worker.log.name} (pid {worker.proc.pid}) ---\n" + f.read().decode(errors="replace"))
    return "\n".join(parts)


def _source(record: Any) -> tuple[int, int]:
    body = orjson.loads(record.value)
    if "source" in body:
        return body["source"][1], body["source"][2]
    return body["partition"], body["offset"]


@dataclass
class Report:
    inputs: int
    outputs: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicates_not_exact: int = 0
    wrong: int = 0
    dead_letters: int = 0
    wrong_by_partition: dict[int, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"inputs={self.inputs} outputs={self.outputs} lost={self.lost} duplicated={self.duplicated} "
            f"(not exact copies: {self.duplicates_not_exact}) wrong={self.wrong} dead_letters={self.dead_letters}"
            + (f" wrong by clicks partition: {dict(sorted(self.wrong_by_partition.items()))}" if self.wrong else "")
        )


def verify(cluster: Cluster, traffic: Traffic, records: list[Any], streams: tuple[str, str] = ("clicks", "clicks-dlq"),
           wrong: Any = None) -> Report:  # fmt: skip
    """Every input offset must have exactly one verdict or dead letter, with the right hard
    label (`wrong(verdict)`: why a verdict is wrong, or None; default: the click labels)."""
    clicks_topic = cluster.topic(streams[0])
    by_source: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    dlq_topic = cluster.topic(streams[1])
    n_dlq = 0
    for record in records:
        body = orjson.loads(record.value)
        if record.topic == dlq_topic:
            n_dlq += 1
            assert body["topic"] == clicks_topic
        else:
            assert body["source"][0] == clicks_topic
        by_source[_source(record)].append(body)
    report = Report(inputs=len(traffic.records), outputs=len(records), dead_letters=n_dlq)
    report.lost = len(traffic.records) - len(by_source)
    if report.lost:
        inputs = asyncio.run(
            _collect(cluster.bootstrap, [clicks_topic], lambda r: len(r) >= len(traffic.records), 60, 1)
        )
        missing = sorted({(r.partition, r.offset) for r in inputs} - set(by_source))
        print(f"\nLOST inputs (partition, offset): {missing[:80]}")
    for source, outs in by_source.items():
        if len(outs) > 1:
            report.duplicated += len(outs) - 1
            first = {k: x for k, x in outs[0].items() if k not in ("detected_at", "received_at")}
            if any({k: x for k, x in o.items() if k not in ("detected_at", "received_at")} != first for o in outs[1:]):
                report.duplicates_not_exact += 1
                if len(report.examples) < 5:
                    report.examples.append(f"{source}: {outs}")
        out = outs[0]
        if "verdict" in out:
            why = (wrong or (lambda v: _wrong_click(traffic, v)))(out)
            if why is not None:
                report.wrong += 1
                report.wrong_by_partition[source[0]] = report.wrong_by_partition.get(source[0], 0) + 1
                if len(report.examples) < 10:
                    report.examples.append(f"wrong {source}: {why}")
    return report


def _wrong_click(traffic: Traffic, verdict: dict[str, Any]) -> str | None:
    expected = traffic.spam.get(verdict["click_id"])
    if expected is None or ("click_spam" in verdict["fraud_types"]) != expected or (
        "duplicate_click" in verdict["fraud_types"]
    ):
        return f"expected spam={expected} got {verdict['fraud_types']}"
    return None


def verdicts_judged(worker: Worker, metric: str = "fraudapp_verdicts_total") -> float:
    """The verdict counter `metric` of one worker (0 when not reachable)."""
    try:
        with urllib.request.urlopen(worker.url + "/metrics", timeout=1) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(m) for m in re.findall(rf"^{metric}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE))


# --- state equals recomputation ----------------------------------------------------------


def read_table(cluster: Cluster, table: str) -> dict[Any, Any]:
    """A table as its committed changelog holds it (read_committed; the last value per key,
    tombstones delete): what any worker restores. Keys and values JSON-decoded."""

    async def run() -> list[Any]:
        return await _collect(cluster.bootstrap, [f"{cluster.app_id}-{table}-changelog"], lambda r: True, 5.0, 0.5)

    state: dict[Any, Any] = {}
    for record in asyncio.run(run()):
        key = orjson.loads(record.key)
        if record.value is None:
            state.pop(key, None)
        else:
            state[key] = orjson.loads(record.value)
    return state


@dataclass
class StateReport:
    table: str
    keys: int = 0
    different: int = 0
    missing: int = 0  # expected, absent and not yet due for expiry
    expired: int = 0  # expected, absent, legitimately swept
    unexpected: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.different or self.missing or self.unexpected)

    def line(self) -> str:
        return (
            f"{self.table}: {self.keys} keys, different={self.different} missing={self.missing} "
            f"unexpected={self.unexpected} (swept as expired: {self.expired})"
        )


def compare_state(
    table: str, actual: dict[Any, Any], expected: dict[Any, Any], expires_at: Any, now: float
) -> StateReport:
    report = StateReport(table, keys=len(actual))
    for key, value in expected.items():
        if key not in actual:
            if expires_at(value) < now:
                report.expired += 1
            else:
                report.missing += 1
                report.examples.append(f"missing {key}: {value}")
        elif actual[key] != value:
            report.different += 1
            report.examples.append(f"{key}: {actual[key]} != expected {value}")
    for key in actual.keys() - expected.keys():
        report.unexpected += 1
        report.examples.append(f"unexpected {key}: {actual[key]}")
    return report


def check_state(cluster: Cluster, traffic: Traffic, lateness: float) -> list[StateReport]:
    """device-clicks and click-ids after the run equal their recomputation from the input:
    every valid click counted once in its device's window (pruned as the app prunes) and
    its click id's first acceptance. A key may be missing only if it had expired (event
    time of the newest click beyond its expiry), since the sweeper may have deleted it."""
    from fraudapp.state.sliding import DedupEntry, DeviceWindows

    windows: dict[str, DeviceWindows] = {}
    click_ids: dict[str, float] = {}
    newest = 0.0
    for _key, value in traffic.records:
        try:
            click = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue  # malformed: dead-lettered, no state
        windows.setdefault(click["device_id"], DeviceWindows()).aggregate(click["ts"], SPAM_WINDOW, lateness)
        click_ids.setdefault(click["click_id"], click["ts"])
        newest = max(newest, click["ts"])
    devices = compare_state(
        "device-clicks",
        read_table(cluster, "device-clicks"),
        {k: w.to_json() for k, w in windows.items()},
        lambda v: DeviceWindows.json_expires_at(v, SPAM_WINDOW, lateness),
        newest,
    )
    ids = compare_state(
        "click-ids",
        read_table(cluster, "click-ids"),
        click_ids,
        lambda v: DedupEntry.json_expires_at(v, 86400.0, lateness),
        newest,
    )
    return [devices, ids]
