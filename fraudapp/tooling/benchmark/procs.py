"""Processes under test: started in their own session (so that stop() reaches only them
and their children), sampled with psutil for CPU seconds and RSS."""

from __future__ import annotations

import bisect
import subprocess
import threading
import time
from pathlib import Path

import psutil

from fraudapp.tooling.processes import stop_process_group


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:  # fmt: skip
        self.name = name
        self.log = log
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        stop_process_group(self.proc, timeout=timeout)


class Sampler:
    """CPU seconds (user+system, process and its children) and RSS of some pids, every
    `interval` seconds, in a thread (so that a busy event loop does not skew it)."""

    def __init__(self, pids: list[int], interval: float = 0.02) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.interval = interval
        self.t: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> tuple[float, float]:
        cpu = rss = 0.0
        for p in self.procs:
            try:
                family = [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
            for q in family:
                try:
                    with q.oneshot():
                        c = q.cpu_times()
                        cpu += c.user + c.system
                        rss += q.memory_info().rss
                except psutil.Error:
                    pass
        return cpu, rss

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu, rss = self._sample()
            self.t.append(time.time())
            self.cpu.append(cpu)
            self.rss.append(rss)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def cpu_at(self, t: float) -> float:
        if not self.t:
            return 0.0
        i = bisect.bisect_left(self.t, t)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.t):
            return self.cpu[-1]
        t0, t1, c0, c1 = self.t[i - 1], self.t[i], self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (t - t0) / max(t1 - t0, 1e-9)

    def cpu_between(self, t0: float, t1: float) -> float:
        return self.cpu_at(t1) - self.cpu_at(t0)

    def busy(self, seconds: float = 1.0) -> float:
        """Cores in use over the last `seconds` (sum over the sampled processes)."""
        if len(self.t) < 2:
            return 1.0
        t1 = self.t[-1]
        return self.cpu_between(t1 - seconds, t1) / seconds

    def peak_rss_mb(self) -> float:
        return max(self.rss, default=0.0) / 2**20
