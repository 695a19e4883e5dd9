"""One benchmark run: the same pre-produced traffic through every system, then latency at
fixed rates, ratios, a JSON document and a markdown table.

Throughput: a backlog of N clicks sits in the system's own copy of the input topic before
the system starts; clicks/s = (outputs - 1) / (last - first output record timestamp).
CPU s / 1k clicks: psutil CPU time of the system's processes between the first and the
last output, per 1,000 outputs in between. Peak RSS: the largest sampled sum over the
system's processes (the broker, the driver and the measuring consumer are not counted).
Latency: clicks produced at a fixed rate (open loop) with event time = send time; latency
is send -> the verdict seen by a plain consumer (or the HTTP answer, for redis).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fraudapp.tooling.benchmark import kafkaio
from fraudapp.tooling.benchmark.procs import Proc, Sampler
from fraudapp.tooling.benchmark.traffic import Traffic, generate, restamp, transfers

SYSTEMS = ("fraudapp", "transactions", "ceiling", "faust_hops", "quix", "redis")
# fraudapp's worker fed crypto transfers instead of clicks (same worker, its transaction stage)
TRANSACTIONS = "transactions"
BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"
FAUST = str(Path(sys.executable).with_name("faust"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Config:
    n: int = 50_000
    partitions: int = 4
    seed: int = 7
    systems: tuple[str, ...] = SYSTEMS
    latency_systems: tuple[str, ...] = ("fraudapp", "ceiling", "quix", "redis")  # not transactions: throughput and CPU
    rate_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    rates: tuple[float, ...] = ()  # explicit clicks/s; otherwise fractions of fraudapp's max
    latency_seconds: float = 20.0
    # live capacity: the highest open-loop rate whose p99 stays under `live_p99_s` for
    # `live_seconds`, searched between 0 and `live_max_fraction` x the backlog throughput
    live_seconds: float = 30.0
    live_p99_s: float = 1.0
    live_steps: int = 5
    live_max_fraction: float = 1.5
    redis_concurrency: int = 64
    timeout: float = 600.0
    quick: bool = False


@dataclass
class Result:
    throughput: float | None = None
    cpu_s_per_1k: float | None = None
    rss_mb: float | None = None
    outputs: int = 0
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    clock: str = ""  # what the throughput span runs from and to
    settle_s: float | None = None  # after the backlog, until single clicks are answered at once
    live_capacity: dict[str, Any] | None = None  # fraudapp: see Config.live_seconds
    skipped: str | None = None
    error: str | None = None


class Progress:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def line(self, text: str) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
        self.out(text)

    def status(self, text: str) -> None:
        """A progress line: redrawn in place on a terminal, every 5 s otherwise."""
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
            return
        now = time.monotonic()
        if now - self._last >= 5:
            self._last = now
            self.out(text)


class Run:
    def __init__(self, cfg: Config, bootstrap: str, workdir: Path, progress: Progress) -> None:
        self.cfg = cfg
        self.bootstrap = bootstrap
        self.work = workdir
        self.p = progress
        self.tag = uuid.uuid4().hex[:8]
        self.traffic: Traffic = generate(cfg.n, seed=cfg.seed, run=f"b{self.tag}", start_ts=time.time() - cfg.n / 500)
        self.transfers = transfers(cfg.n, seed=cfg.seed, run=f"b{self.tag}", start_ts=time.time() - cfg.n / 500)
        self.blacklist_file = workdir / "blacklist.json"
        self.blacklist_file.write_text(json.dumps(self.traffic.blacklist))
        self.results: dict[str, Result] = {}
        self.rates: list[float] = list(cfg.rates)

    # ------------------------------------------------------------------ kafka systems

    def topic(self, system: str, name: str) -> str:
        return f"bench-{self.tag}-{system}-{name}"

    def _io_topics(self, system: str) -> tuple[str, str]:
        """(input, output) topic of a system."""
        if system == TRANSACTIONS:
            return self.topic(system, "transactions"), self.topic(system, "transaction-verdicts")
        return self.topic(system, "clicks"), self.topic(system, "verdicts")

    def _start_kafka_system(self, system: str) -> list[Proc]:
        cfg, (inp, out) = self.cfg, self._io_topics(system)
        group = f"bench-{self.tag}-{system}"
        log = self.work / f"{system}.log"
        py = sys.executable
        if system == "ceiling":
            argv = [py, str(BENCH_DIR / "ceiling.py"), "--bootstrap", self.bootstrap, "--input", inp,
                    "--output", out, "--group", group]  # fmt: skip
            return [Proc(system, argv, log)]
        if system == "faust_hops":
            argv = [py, str(BENCH_DIR / "faust_hops.py"), "--bootstrap", self.bootstrap, "--input", inp,
                    "--output", out, "--group", group, "--partitions", str(cfg.partitions),
                    "--datadir", str(self.work / "faust-hops-data"), "worker", "-l", "warn"]  # fmt: skip
            return [Proc(system, argv, log)]
        if system == "quix":
            argv = [py, str(BENCH_DIR / "quix_rules.py"), "--bootstrap", self.bootstrap, "--input", inp,
                    "--output", out, "--group", group, "--state-dir", str(self.work / "quix-state"),
                    "--blacklist", str(self.blacklist_file)]  # fmt: skip
            return [Proc(system, argv, log)]
        if system in ("fraudapp", TRANSACTIONS):
            env = dict(os.environ)
            env.update(
                FRAUDAPP_BROKER="kafka://" + self.bootstrap.replace(",", ";kafka://"),
                FRAUDAPP_APP_ID=group,
                FRAUDAPP_PARTITIONS=str(cfg.partitions),
                FRAUDAPP_TOPIC_CLICKS=self.topic(system, "clicks"),
                FRAUDAPP_TOPIC_VERDICTS=self.topic(system, "verdicts"),
                FRAUDAPP_TOPIC_TRANSACTIONS=self.topic(system, "transactions"),
                FRAUDAPP_TOPIC_TRANSACTION_VERDICTS=self.topic(system, "transaction-verdicts"),
                FRAUDAPP_TOPIC_TRANSACTIONS_DLQ=self.topic(system, "transactions-dlq"),
                FRAUDAPP_TOPIC_ALERTS=self.topic(system, "fraud-alerts"),
                FRAUDAPP_TOPIC_BLACKLIST=self.topic(system, "blacklist-updates"),
                FRAUDAPP_TOPIC_DLQ=self.topic(system, "clicks-dlq"),
                FRAUDAPP_TOPIC_RULES=self.topic(system, "rules"),
                FRAUDAPP_TOPIC_RULES_SHADOW=self.topic(system, "rules-shadow"),
                FRAUDAPP_TOPIC_RULES_AUDIT=self.topic(system, "rules-audit"),
                FRAUDAPP_DATADIR=str(self.work / "fraudapp-data"),
                FRAUDAPP_TABLEDIR=str(self.work / "fraudapp-tables"),
                FRAUDAPP_WEB_PORT=str(free_port()),
            )
            argv = [FAUST, "-A", "fraudapp", "worker", "-l", "warn"]
            return [Proc(system, argv, log, env=env)]
        raise ValueError(system)

    async def run_kafka_system(self, system: str) -> Result:
        cfg, res = self.cfg, Result()
        inp, out = self._io_topics(system)
        names = [inp, out]
        if system in ("fraudapp", TRANSACTIONS):
            names += [self.topic(system, n) for n in ("fraud-alerts", "clicks-dlq", "clicks", "verdicts",
                                                       "transactions", "transaction-verdicts", "transactions-dlq")]
        await kafkaio.create_topics(self.bootstrap, sorted(set(names)), cfg.partitions)
        if system == "fraudapp":
            bl = self.topic(system, "blacklist-updates")
            await kafkaio.create_topics(self.bootstrap, [bl], 1)
            await kafkaio.produce(
                self.bootstrap, bl, [(e["value"].encode(), orjson.dumps(e)) for e in self.traffic.blacklist]
            )
        unit = "transfers" if system == TRANSACTIONS else "clicks"
        self.p.status(f"{system}: producing the backlog of {cfg.n:,} {unit}")
        await kafkaio.produce(self.bootstrap, inp, self.transfers if system == TRANSACTIONS else self.traffic.clicks)
        watcher = kafkaio.Watcher(self.bootstrap, out)
        await watcher.start()
        # The first stage's output marks the start of processing: staged pipelines (fraudapp,
        # Quix) may run their first stage over much of the backlog before the first verdict.
        first_stage = {"fraudapp": f"bench-{self.tag}-fraudapp-clicks-by-click-id",
                       "faust_hops": f"bench-{self.tag}-faust_hops-by-click-id",
                       "quix": f"bench-{self.tag}-quix-by-click-id"}.get(system)  # fmt: skip
        stage1 = kafkaio.Watcher(self.bootstrap, first_stage) if first_stage else watcher
        if first_stage:
            await kafkaio.create_topics(self.bootstrap, [first_stage], cfg.partitions)
            await stage1.start()
        procs = self._start_kafka_system(system)
        sampler = Sampler([p.pid for p in procs])
        started = time.time()
        try:
            await self._wait_outputs(system, watcher, cfg.n, procs, started)
            res.outputs = watcher.count
            # Receive times of one process's consumers (record timestamps are no clock here:
            # Quix propagates the input's timestamp to its outputs).
            t0 = min(stage1.first_recv, watcher.first_recv)
            span_s = watcher.last_recv - t0
            res.throughput = (watcher.count - 1) / max(span_s, 1e-3)
            res.clock = "first stage-1 record -> last verdict" if first_stage else "first -> last output"
            first_to_last = (watcher.count - 1) / max(watcher.last_recv - watcher.first_recv, 1e-3)
            cpu = sampler.cpu_between(t0, watcher.last_recv)
            res.cpu_s_per_1k = cpu / max(watcher.count - 1, 1) * 1000
            self.p.line(
                f"{system}: {watcher.count:,} outputs, {res.throughput:,.0f} {unit}/s, "
                f"{res.cpu_s_per_1k:.2f} CPU s/1k (startup {t0 - started:.1f} s; first to last verdict only: "
                f"{first_to_last:,.0f}/s)"
            )
            if system == "fraudapp" and not self.rates:
                self.rates = [round(res.throughput * f) for f in cfg.rate_fractions]
            if system in cfg.latency_systems and system != TRANSACTIONS and self.rates:
                await self._settle(system, sampler)
                producer = kafkaio.AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0, acks=1)
                await producer.start()

                async def send_one(key: bytes, value: bytes) -> None:
                    await producer.send(inp, key=key, value=value)

                try:
                    # Unmeasured warm-up at the lowest rate: the first live events move stream
                    # time past the whole backlog, and fraudapp then expires (sweeps) all of its
                    # state at once; that catch-up is not the steady state being measured.
                    await self._latency_kafka(system, min(self.rates), watcher, send_one, procs, warmup=True)
                    await self._settle(system, sampler)
                    res.settle_s = await self._settle_live(system, watcher, send_one, fast=self._answered_at_once(system))
                    for rate in self.rates:
                        res.latency[str(int(rate))] = await self._latency_kafka(system, rate, watcher, send_one, procs)
                    if system == "fraudapp" and cfg.live_steps > 0:
                        res.live_capacity = await self._live_capacity(
                            system, res.throughput, watcher, send_one, procs, sampler
                        )
                finally:
                    await producer.stop()
        except Exception as exc:  # noqa: BLE001 - one system failing must not lose the others
            res.error = f"{type(exc).__name__}: {exc}"
            self.p.line(f"{system}: FAILED: {res.error}\n{procs[0].tail()}")
        finally:
            await watcher.stop()
            if stage1 is not watcher:
                await stage1.stop()
            for p in procs:
                p.stop()
            sampler.stop()
            res.rss_mb = sampler.peak_rss_mb()
        return res

    async def _wait_outputs(self, system: str, watcher: kafkaio.Watcher, expected: int, procs: list[Proc],
                            started: float) -> None:  # fmt: skip
        deadline = time.time() + self.cfg.timeout
        while watcher.count < expected:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited with {p.proc.returncode}")
            if time.time() > deadline:
                raise TimeoutError(f"{watcher.count}/{expected} outputs after {self.cfg.timeout:.0f} s")
            rate = ""
            if watcher.count > 1 and watcher.last_recv > watcher.first_recv:
                rate = f", {(watcher.count - 1) / (watcher.last_recv - watcher.first_recv):,.0f}/s"
            self.p.status(f"{system}: {watcher.count:,}/{expected:,} outputs{rate} ({time.time() - started:.0f} s)")
            await asyncio.sleep(0.2)

    def _answered_at_once(self, system: str) -> float:
        """How fast a single click is answered by a settled system, in seconds. Under
        exactly_once each of fraudapp's three hops becomes visible to the next (read
        committed) only when its transaction commits, every `commit_interval`."""
        if system == "fraudapp":
            from fraudapp.settings import Settings

            settings = Settings.from_env()
            if settings.processing_guarantee == "exactly_once":
                return 0.25 + 3 * settings.commit_interval
        return 0.25

    async def _settle_live(self, system: str, watcher: kafkaio.Watcher, send_one, limit: float = 180.0,
                           fast: float = 0.25, in_a_row: int = 3) -> float:  # fmt: skip
        """Seconds until `in_a_row` single clicks, one at a time, are each answered within
        `fast` seconds. Idle CPU is not enough: after a backlog fraudapp can sit waiting
        on Faust's changelog buffer (the conductor holds back every stream while it is over
        100 records) with verdicts seconds late; measured at fixed rates from there, the
        latency would be that tail, not the steady state."""
        probes = generate(200, seed=self.cfg.seed + 1, run=f"s{self.tag}{system[:2]}").clicks
        t0 = time.time()
        ok = 0
        for i, (key, value) in enumerate(probes):
            if ok >= in_a_row or time.time() - t0 > limit:
                break
            self.p.status(f"{system}: settling, probe {i + 1} ({time.time() - t0:.0f} s)")
            watcher.arrivals.clear()
            watcher.track = True
            sent_at = time.time()
            stamped = restamp(value, sent_at)
            click_id = orjson.loads(stamped)["click_id"]
            await send_one(key, stamped)
            answered = None
            while answered is None and time.time() - sent_at < 30:
                answered = next((t for c, t in watcher.arrivals if c == click_id), None)
                await asyncio.sleep(0.01)
            watcher.track = False
            ok = ok + 1 if answered is not None and answered - sent_at <= fast else 0
        settled = time.time() - t0
        self.p.line(f"{system}: settled after {settled:.1f} s ({in_a_row} single clicks each answered within {fast * 1000:.0f} ms)")
        return round(settled, 1)

    async def _settle(self, system: str, sampler: Sampler, limit: float = 120.0) -> None:
        """Wait until the system is idle (< 0.15 cores for 1 s): work queued behind the
        verdicts (fraudapp's alert stage) must not land in the first latency run."""
        t0 = time.time()
        while time.time() - t0 < limit:
            await asyncio.sleep(0.5)
            if sampler.busy(1.0) < 0.15:
                break
            self.p.status(f"{system}: waiting for it to go idle ({sampler.busy(1.0):.2f} cores busy)")
        self.p.line(f"{system}: idle after {time.time() - t0:.1f} s")

    def _latency_traffic(self, system: str, rate: float, variant: str = "") -> list[tuple[bytes, bytes]]:
        n = max(1, int(rate * self.cfg.latency_seconds))
        return generate(n, seed=self.cfg.seed + int(rate), run=f"l{self.tag}{system[:1]}{variant}{int(rate)}").clicks

    async def _latency_kafka(self, system: str, rate: float, watcher: kafkaio.Watcher, send_one,
                             procs: list[Proc], warmup: bool = False) -> dict[str, float]:  # fmt: skip
        clicks = self._latency_traffic(system, rate, "w" if warmup else "")
        if warmup:
            clicks = clicks[: max(1, int(rate * min(5.0, self.cfg.latency_seconds)))]
        watcher.arrivals.clear()
        watcher.track = True
        before = watcher.count
        self.p.status(f"{system}: latency at {rate:,.0f} clicks/s for {self.cfg.latency_seconds:.0f} s")
        sent = await kafkaio.paced(send_one, clicks, rate)
        deadline = time.time() + max(30.0, self.cfg.latency_seconds)
        while watcher.count - before < len(clicks) and time.time() < deadline:
            if not all(p.alive() for p in procs):
                raise RuntimeError(f"{system} exited during the latency run")
            await asyncio.sleep(0.1)
        watcher.track = False
        if warmup:
            self.p.line(f"{system}: warm-up at {rate:,.0f} clicks/s done")
            return {}
        return self._summarize(system, rate, kafkaio.latencies(sent, watcher.arrivals), len(clicks))

    async def _live_capacity(self, system: str, backlog_rate: float, watcher: kafkaio.Watcher, send_one,
                             procs: list[Proc], sampler: Sampler) -> dict[str, Any]:  # fmt: skip
        """The highest open-loop rate whose p99 stays under `live_p99_s` for `live_seconds`:
        a bisection between 0 and `live_max_fraction` x the backlog throughput, `live_steps`
        runs, each started with the system idle (an overloaded step leaves a backlog)."""
        cfg = self.cfg
        low, high = 0.0, backlog_rate * cfg.live_max_fraction
        steps = []
        saved, self.cfg = self.cfg, dataclasses.replace(cfg, latency_seconds=cfg.live_seconds)
        try:
            for step in range(cfg.live_steps):
                rate = round(backlog_rate / 2 if step == 0 else (low + high) / 2)
                await self._settle(system, sampler)
                got = await self._latency_kafka(system, rate, watcher, send_one, procs)
                ok = got["lost"] == 0 and got["p99"] < cfg.live_p99_s * 1000
                steps.append({"rate": rate, "p99_ms": got["p99"], "lost": got["lost"], "ok": ok})
                low, high = (rate, high) if ok else (low, rate)
        finally:
            self.cfg = saved
        self.p.line(f"{system}: live capacity {low:,.0f} clicks/s ({low / backlog_rate:.2f} x backlog throughput; "
                    f"p99 < {cfg.live_p99_s:g} s for {cfg.live_seconds:g} s)")
        return {"rate": low, "vs_backlog": round(low / backlog_rate, 3), "seconds": cfg.live_seconds,
                "p99_limit_s": cfg.live_p99_s, "steps": steps}

    def _summarize(self, system: str, rate: float, lat: list[float], sent: int) -> dict[str, float]:
        lat.sort()
        ms = {
            "p50": round(kafkaio.percentile(lat, 0.50) * 1000, 2),
            "p99": round(kafkaio.percentile(lat, 0.99) * 1000, 2),
            "p999": round(kafkaio.percentile(lat, 0.999) * 1000, 2),
            "n": len(lat),
            "lost": sent - len(lat),
        }
        self.p.line(
            f"{system}: at {rate:,.0f} clicks/s p50 {ms['p50']} ms, p99 {ms['p99']} ms, p99.9 {ms['p999']} ms (n={len(lat)})"
        )
        return ms

    # ------------------------------------------------------------------ redis

    async def run_redis(self) -> Result:
        res = Result()
        server = shutil.which("redis-server")
        if server is None:
            res.skipped = "redis-server not installed (Debian: apt-get install -y redis-server)"
            return res
        try:
            import aiohttp
            import redis  # noqa: F401
        except ImportError as exc:
            res.skipped = f"{exc.name} not installed (pip install -e '.[bench]')"
            return res
        rport, hport = free_port(), free_port()
        redis_proc = Proc("redis-server", [server, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--daemonize", "no"], self.work / "redis-server.log")  # fmt: skip
        service = Proc("redis", [sys.executable, str(BENCH_DIR / "redis_service.py"), "--port", str(hport),
                                 "--redis-port", str(rport), "--blacklist", str(self.blacklist_file)],
                       self.work / "redis-service.log")  # fmt: skip
        procs = [redis_proc, service]
        sampler: Sampler | None = None
        url = f"http://127.0.0.1:{hport}"
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.cfg.redis_concurrency)) as http:
                deadline = time.time() + 30
                while True:
                    try:
                        async with http.get(url + "/health") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.time() > deadline or not all(p.alive() for p in procs):
                        raise RuntimeError(f"redis service did not come up:\n{service.tail()}")
                    await asyncio.sleep(0.2)
                sampler = Sampler([p.pid for p in procs])
                clicks = [v for _, v in self.traffic.clicks]
                done: list[float] = []
                queue = iter(clicks)

                async def post(value: bytes) -> None:
                    async with http.post(url + "/click", data=value, headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"HTTP {r.status}")

                async def client() -> None:
                    for value in queue:
                        await post(value)
                        done.append(time.time())

                started = time.time()
                tasks = [asyncio.create_task(client()) for _ in range(self.cfg.redis_concurrency)]
                while not all(t.done() for t in tasks):
                    rate = f", {len(done) / (time.time() - started):,.0f}/s" if done else ""
                    self.p.status(f"redis: {len(done):,}/{len(clicks):,} answers{rate}")
                    await asyncio.sleep(0.2)
                for t in tasks:
                    t.result()
                res.outputs = len(done)
                res.throughput, res.clock = (len(done) - 1) / max(done[-1] - done[0], 1e-3), "first -> last answer"
                res.cpu_s_per_1k = sampler.cpu_between(done[0], done[-1]) / max(len(done) - 1, 1) * 1000
                self.p.line(f"redis: {len(done):,} answers, {res.throughput:,.0f} clicks/s, {res.cpu_s_per_1k:.2f} CPU s/1k "
                            f"(service + redis-server; client concurrency {self.cfg.redis_concurrency})")  # fmt: skip
                if "redis" in self.cfg.latency_systems and self.rates:
                    for rate in self.rates:
                        res.latency[str(int(rate))] = await self._latency_http(http, url, rate)
        except Exception as exc:  # noqa: BLE001
            res.error = f"{type(exc).__name__}: {exc}"
            self.p.line(f"redis: FAILED: {res.error}")
        finally:
            for p in reversed(procs):
                p.stop()
            if sampler is not None:
                sampler.stop()
                res.rss_mb = sampler.peak_rss_mb()
        return res

    async def _latency_http(self, http: Any, url: str, rate: float) -> dict[str, float]:
        clicks = self._latency_traffic("redis", rate)
        lat: list[float] = []
        pending: set[asyncio.Task] = set()

        async def one(value: bytes, sent_at: float) -> None:
            async with http.post(url + "/click", data=value, headers={"Content-Type": "application/json"}) as r:
                await r.read()
            lat.append(time.time() - sent_at)

        async def send_one(key: bytes, value: bytes) -> None:
            task = asyncio.create_task(one(value, time.time()))
            pending.add(task)
            task.add_done_callback(pending.discard)

        self.p.status(f"redis: latency at {rate:,.0f} clicks/s for {self.cfg.latency_seconds:.0f} s")
        await kafkaio.paced(send_one, clicks, rate)
        if pending:
            await asyncio.wait(pending, timeout=30)
        return self._summarize("redis", rate, lat, len(clicks))

    # ------------------------------------------------------------------ all

    async def run(self) -> dict[str, Result]:
        order = [s for s in SYSTEMS if s in self.cfg.systems]
        for system in order:
            self.p.line(f"== {system}")
            if system == "redis":
                res = await self.run_redis()
            elif system == "quix" and not _importable("quixstreams"):
                res = Result(skipped="quixstreams not installed (pip install -e '.[bench]')")
            else:
                res = await self.run_kafka_system(system)
            if res.skipped:
                self.p.line(f"{system}: skipped: {res.skipped}")
            self.results[system] = res
        return self.results


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a and b else None


def report(cfg: Config, results: dict[str, Result], rates: list[float], meta: dict[str, Any]) -> dict[str, Any]:
    tp = {s: (round(r.throughput, 1) if r.throughput else None) for s, r in results.items()}
    fr = tp.get("fraudapp")
    fraud_lat = results["fraudapp"].latency if "fraudapp" in results else {}
    return {
        "version": 1,
        "meta": meta,
        "config": {
            "n": cfg.n,
            "partitions": cfg.partitions,
            "seed": cfg.seed,
            "quick": cfg.quick,
            "latency_seconds": cfg.latency_seconds,
            "redis_concurrency": cfg.redis_concurrency,
            "systems": list(cfg.systems),
        },
        "throughput": tp,
        "ratios": {
            "fraudapp_vs_ceiling": _ratio(fr, tp.get("ceiling")),
            "fraudapp_vs_faust_hops": _ratio(fr, tp.get("faust_hops")),
            "fraudapp_vs_quix": _ratio(fr, tp.get("quix")),
            "fraudapp_vs_redis": _ratio(fr, tp.get("redis")),
            # the same worker's transaction stage against its click pipeline, one run
            "transactions_vs_fraudapp": _ratio(tp.get(TRANSACTIONS), fr),
        },
        "rates": {f"{int(f * 100)}%": int(r) for f, r in zip(cfg.rate_fractions, rates, strict=False)}
        if not cfg.rates
        else {str(int(r)): int(r) for r in rates},
        "latency_ms": {k: {q: v[q] for q in ("p50", "p99", "p999")} for k, v in fraud_lat.items()},
        "latency_ms_by_system": {s: r.latency for s, r in results.items() if r.latency},
        "settle_s": {s: r.settle_s for s, r in results.items() if r.settle_s is not None},
        "live_capacity": results["fraudapp"].live_capacity if "fraudapp" in results else None,
        "cpu_s_per_1k": {
            s: (round(r.cpu_s_per_1k, 3) if r.cpu_s_per_1k is not None else None) for s, r in results.items()
        },
        "rss_mb": {s: (round(r.rss_mb, 1) if r.rss_mb else None) for s, r in results.items()},
        "outputs": {s: r.outputs for s, r in results.items()},
        "throughput_span": {s: r.clock for s, r in results.items() if r.clock},
        "skipped": {s: r.skipped for s, r in results.items() if r.skipped},
        "errors": {s: r.error for s, r in results.items() if r.error},
    }


def markdown(doc: dict[str, Any]) -> str:
    m, c = doc["meta"], doc["config"]
    lines = [
        f"## {m['started']} — {'quick' if c['quick'] else 'full'} run, N={c['n']:,}, {c['partitions']} partitions",
        "",
        f"Host: {m['host']}, {m['cpus']} CPUs, Python {m['python']}, Kafka {m['kafka']}. Command: `{m['command']}`",
        "",
        "| system | clicks/s | fraudapp ÷ system | CPU s / 1k clicks | peak RSS MB | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    fr = doc["throughput"].get("fraudapp")
    for s in doc["throughput"]:
        tp = doc["throughput"][s]
        ratio = _ratio(fr, tp)
        note = doc["skipped"].get(s) or doc["errors"].get(s) or (
            "crypto transfers (transfers/s, CPU s / 1k transfers) through the same worker" if s == TRANSACTIONS else "")
        cpu, rss = doc["cpu_s_per_1k"].get(s), doc["rss_mb"].get(s)

        def fmt(x: float | None, spec: str) -> str:
            return "–" if x is None else format(x, spec)

        lines.append(
            f"| {s} | {fmt(tp, ',.0f')} | {fmt(ratio, '.2f')} | {fmt(cpu, '.3f')} | {fmt(rss, '.0f')} | {note} |"
        )
    if doc["latency_ms_by_system"]:
        rates = list(doc["rates"].items())
        lines += [
            "",
            "Latency, produce → verdict visible to a consumer (redis: HTTP request → answer), ms, p50 / p99 / p99.9:",
            "",
        ]
        lines.append(
            "| system | "
            + " | ".join(f"{label} = {r:,}/s" if label != str(r) else f"{r:,}/s" for label, r in rates)
            + " |"
        )
        lines.append("|---|" + "---:|" * len(rates))
        for s, by_rate in doc["latency_ms_by_system"].items():
            cells = []
            for _, r in rates:
                v = by_rate.get(str(r))
                cells.append(
                    f"{v['p50']:.0f} / {v['p99']:.0f} / {v['p999']:.0f}"
                    + (f" ({v['lost']} lost)" if v.get("lost") else "")
                    if v
                    else "–"
                )
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        if doc.get("settle_s"):
            settled = ", ".join(f"{s} {v:.1f} s" for s, v in doc["settle_s"].items())
            lines += ["", f"Measured once single clicks were answered at once after the backlog ({settled})."]
    live = doc.get("live_capacity")
    if live:
        tried = ", ".join(f"{st['rate']:,}/s p99 {st['p99_ms']:.0f} ms{'' if st['ok'] else ' ✗'}" for st in live["steps"])
        summary = (f"fraudapp live capacity: **{live['rate']:,.0f} clicks/s = {live['vs_backlog']:.2f} × its backlog "
                   f"throughput** (highest open-loop rate with p99 < {live['p99_limit_s']:g} s over "
                   f"{live['seconds']:g} s; tried {tried}).")
        lines += ["", summary]
    lines.append("")
    return "\n".join(lines)


async def bench(
    cfg: Config, bootstrap: str, progress: Progress, workdir: Path | None = None
) -> tuple[dict[str, Any], Path]:
    work = workdir or Path(tempfile.mkdtemp(prefix="fraudapp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    run = Run(cfg, bootstrap, work, progress)
    started = dt.datetime.now().astimezone()
    results = await run.run()
    return results_doc(cfg, results, run.rates, started), work


def results_doc(cfg: Config, results: dict[str, Result], rates: list[float], started: dt.datetime) -> dict[str, Any]:
    return report(cfg, results, rates, run_meta(started))


def run_meta(started: dt.datetime) -> dict[str, Any]:
    """Where and how a run was made: the head of every results table."""
    return {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "kafka": os.environ.get("FRAUDAPP_BENCH_KAFKA_VERSION", "local"),
        "command": " ".join(["fraudapp", *sys.argv[1:]]) if sys.argv else "",
    }
