"""Progress bars and the live summary line (rich), shared by simulate, replay and demo."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from fraudapp.tooling.simulation.kafkaio import VerdictWatcher


class LiveProgress:
    """`with LiveProgress("sending", watcher) as p: p.update(done, total)`; with a watcher the
    line also shows verdicts/s and the verdict mix so far."""

    def __init__(self, description: str, watcher: VerdictWatcher | None = None, *, enabled: bool = True,
                 console: Console | None = None) -> None:
        self.watcher = watcher
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[summary]}"),
            console=self.console, disable=not enabled, refresh_per_second=4,
        )
        self.task = self.progress.add_task(description, total=None, summary="")
        self._last = (time.monotonic(), 0)
        self._rate = 0.0

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def summary(self) -> str:
        w = self.watcher
        if w is None:
            return ""
        now = time.monotonic()
        then, count = self._last
        if now - then >= 1.0:
            self._rate = (w.total - count) / (now - then)
            self._last = (now, w.total)
        n = sum(w.classes.values()) or 1
        mix = " ".join(f"{c} {w.classes[c] / n:.0%}" for c in ("clean", "suspicious", "fraud"))
        return f"verdicts {w.total} ({self._rate:.0f}/s)  {mix}"

    def update(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total, summary=self.summary())

    def status(self, text: str) -> None:
        self.console.print(text)
