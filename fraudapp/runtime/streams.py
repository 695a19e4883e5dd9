"""Gathering a Faust stream's events into batches (faust-streaming 0.15.3 hands an agent
one event at a time; `fraudapp.batching` and the exactly_once batches build on this).

Reads the stream's channel queue (`queued`), a Faust internal: checked against the
releases in `fraudapp/runtime/versions.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust

EventT = faust.types.EventT
BATCH_MAX = 500


class Gatherer:
    """Gathers a stream's events into batches of up to `max_size`.

    Faust hands events to a stream one at a time, so a batch forms only if the stage
    lingers for more. An event that finds the stage idle is handled at once; while events
    keep coming (the previous batch held more than one), a batch lingers up to `linger`
    seconds for company, which bounds the latency batching adds per stage. Only the wait
    for an event that has not arrived yet runs as a task (`_pending`), since only that wait
    needs a timeout; an event already queued (`ready()`) is taken directly: a task and an
    `asyncio.wait` per event cost ~35 µs (bench/README.md)."""

    def __init__(self, events: Any, linger: float, max_size: int = BATCH_MAX,
                 ready: Callable[[], bool] | None = None) -> None:  # fmt: skip
        self.linger = linger
        self.max_size = max_size
        self._upstream = events.__aiter__()
        self._ready = ready or (lambda: False)
        self._pending: asyncio.Future[EventT] | None = None
        self._busy = False
        self.ended = False

    def _next(self) -> asyncio.Future[EventT]:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._upstream.__anext__())
        return self._pending

    async def first(self) -> EventT | None:
        """Wait for the next event (None: the stream ended)."""
        if self.ended:
            return None
        try:
            if self._pending is None:  # no timeout here: no task either
                return await self._upstream.__anext__()
            return await self._pending
        except StopAsyncIteration:
            self.ended = True
            return None
        finally:
            self._pending = None

    async def rest(self, first: EventT) -> list[EventT]:
        """`first` and the events that follow it, lingering only while the stage is busy."""
        loop = asyncio.get_running_loop()
        gathered = [first]
        deadline = loop.time() + (self.linger if self._busy else 0.0)
        while len(gathered) < self.max_size:
            try:
                if self._pending is None and self._ready():
                    gathered.append(await self._upstream.__anext__())
                    continue
                pending = self._next()
                if not pending.done():
                    # an idle stage still gives a queued event one loop turn to arrive
                    await asyncio.wait((pending,), timeout=max(deadline - loop.time(), 0.0))
                    if not pending.done():
                        break
                self._pending = None
                gathered.append(pending.result())
            except StopAsyncIteration:
                self.ended = True
                break
        self._busy = len(gathered) > 1
        return gathered

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


def queued(stream: faust.StreamT) -> Callable[[], bool]:
    """Is an event of `stream` already waiting in its channel's queue?"""
    queue = getattr(stream.channel, "queue", None)
    return (lambda: not queue.empty()) if queue is not None else (lambda: False)
