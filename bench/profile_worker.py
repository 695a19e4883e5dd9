"""Profile one fraudapp worker draining a pre-produced backlog.

    python bench/profile_worker.py -n 20000            # verdicts/s + py-spy top frames
    python bench/profile_worker.py -n 20000 --no-profile
    python bench/profile_worker.py -n 20000 --no-profile --shadow candidate.json   # a shadow run's cost

Starts its own broker on free ports, produces `fraudapp.tooling.benchmark.traffic.generate(n)`,
runs `faust -A fraudapp worker` (under `py-spy record` unless --no-profile) until every
verdict is out, then stops everything it started. Prints verdicts/s from the first to the
last verdict, CPU seconds of the worker, and the hottest frames (own and cumulative).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from fraudapp.tooling import localkafka
from fraudapp.tooling.benchmark import kafkaio
from fraudapp.tooling.benchmark.harness import free_port
from fraudapp.tooling.benchmark.procs import Proc, Sampler
from fraudapp.tooling.benchmark.traffic import generate

BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples/s")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--shadow", type=Path, default=None,
                    help="a rule-set document to run in shadow while the backlog drains (its version must be >= 1)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fraudapp-prof-"))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    cluster = localkafka.start(port=localkafka.free_port(2), data_dir=work / "kafka")
    try:
        asyncio.run(run(args, cluster.bootstrap, work, out, cluster.pids))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True) if out != work else None


async def run(args: argparse.Namespace, bootstrap: str, work: Path, out: Path, broker_pids: list[int]) -> None:
    traffic = generate(args.n, seed=1, run="p", start_ts=time.time() - args.n / 500)
    env = dict(os.environ)
    env.update(
        FRAUDAPP_BROKER=f"kafka://{bootstrap}",
        FRAUDAPP_APP_ID="prof",
        FRAUDAPP_PARTITIONS=str(args.partitions),
        FRAUDAPP_DATADIR=str(work / "data"),
        FRAUDAPP_TABLEDIR=str(work / "tables"),
        FRAUDAPP_WEB_PORT=str(free_port()),
    )
    await kafkaio.create_topics(bootstrap, ["clicks", "verdicts", "prof-clicks-by-click-id"], args.partitions)
    if args.shadow is not None:  # on the rules topic before the worker starts: it applies it first thing
        document = {**orjson.loads(args.shadow.read_bytes()), "name": "shadow"}
        await kafkaio.create_topics(bootstrap, ["rules"], 1)
        await kafkaio.produce(bootstrap, "rules", [(b"shadow", orjson.dumps(document))])
    await kafkaio.produce(bootstrap, "clicks", list(traffic.clicks))
    watcher = kafkaio.Watcher(bootstrap, "verdicts")
    stage1 = kafkaio.Watcher(bootstrap, "prof-clicks-by-click-id")  # marks the start of processing
    await watcher.start()
    await stage1.start()
    argv = [str(BIN / "faust"), "-A", "fraudapp", "worker", "-l", "warn"]
    raw = out / "worker.folded"
    if not args.no_profile:
        argv = [shutil.which("py-spy") or str(BIN / "py-spy"), "record", "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--", *argv]
    proc = Proc("worker", argv, out / "worker.log", env=env)
    sampler = Sampler([proc.pid])
    broker = Sampler(broker_pids)
    try:
        deadline = time.monotonic() + args.timeout
        last = -1
        while watcher.count < args.n and time.monotonic() < deadline and proc.alive():
            await asyncio.sleep(0.5)
            if watcher.count != last:
                last = watcher.count
                print(f"\r{last}/{args.n} verdicts", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if watcher.count > 1:
            span = watcher.last_recv - stage1.first_recv
            cpu = sampler.cpu_between(stage1.first_recv, watcher.last_recv)
            print(f"verdicts {watcher.count}/{args.n}: {(watcher.count - 1) / span:.0f}/s from the first "
                  f"stage-1 record to the last verdict, worker CPU {1000 * cpu / watcher.count:.2f} s / 1k clicks, "
                  f"peak RSS {sampler.peak_rss_mb():.0f} MB")  # fmt: skip
            broker_cpu = broker.cpu_between(stage1.first_recv, watcher.last_recv)
            print(f"broker CPU {1000 * broker_cpu / watcher.count:.2f} s / 1k clicks")
    finally:
        sampler.stop()
        broker.stop()
        await watcher.stop()
        await stage1.stop()
        if not args.no_profile and proc.alive():
            # py-spy writes its profile when its target ends
            os.killpg(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.proc.wait(60)
        proc.stop()
    await report_offsets(bootstrap, args.n)
    if raw.exists():
        summarize(raw, args.top)


async def report_offsets(bootstrap: str, clicks: int) -> None:
    """Offsets written per click, by topic: every record the pipeline made the broker store,
    transaction markers included (each commit writes one per partition it touched)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        written: dict[str, int] = {}
        metadata = await consumer._client.fetch_all_metadata()  # topics() drops the partitions
        for topic in sorted(metadata.topics()):
            parts = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or ()]
            if parts and not topic.startswith("__"):
                written[topic] = sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()
    print(f"offsets written per click (records and transaction markers), {sum(written.values()) / clicks:.2f} in all:")
    for topic, n in sorted(written.items(), key=lambda kv: -kv[1]):
        print(f"  {n / clicks:6.2f}  {topic}")


def summarize(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            cum[f] += n
    idle = sum(n for f, n in own.items() if "select" in f or "epoll" in f)
    print(f"samples {total}, idle-ish (select/epoll) {idle / total:.0%}")
    print("--- own")
    for f, n in own.most_common(top):
        print(f"{n / total:6.1%}  {f}")
    print("--- cumulative")
    for f, n in cum.most_common(top * 2):
        print(f"{n / total:6.1%}  {f}")


if __name__ == "__main__":
    main()
