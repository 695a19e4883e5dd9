"""faust.App with fraudapp's runtime fixes installed: the consumer and transaction fixes of
`consumer.py` and `exactly_once.py`, a worker that stops on an agent's error instead of
going on without the event in flight, a process that ends within a bound once crashed
(`lastresort.py`), and local table state that is trusted only after a clean stop."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import faust

from fraudapp.runtime import consumer as consumer_fixes
from fraudapp.runtime import exactly_once as eos
from fraudapp.runtime import lastresort

log = logging.getLogger(__name__)
EXACTLY_ONCE = "exactly_once"
CLEAN_MARKER = ".clean-shutdown"


class FraudApp(faust.App):
    """faust.App with the exactly-once fixes of fraudapp.runtime.exactly_once and crash-safe local table state.

    Under exactly_once, RocksDB is written at once while the changelog and the input
    offsets commit together later, so a worker that dies leaves its local tables ahead of
    what was committed, and replaying the uncommitted input would count it twice. A worker
    that did not shut down cleanly therefore drops its local table stores and rebuilds
    them from the (read_committed) changelogs, as Kafka Streams does under EOS.
    """

    fetch_max_wait_ms: int = consumer_fixes.UPSTREAM_FETCH_MAX_WAIT_MS

    def _new_transport(self) -> Any:
        base = faust.transport.by_url(self.conf.broker_consumer[0])
        if self.conf.processing_guarantee.value != EXACTLY_ONCE:
            return consumer_fixes.transport_class(base)(self.conf.broker_consumer, self)
        return eos.transport_class(base)(self.conf.broker_consumer, self)

    def _new_producer(self) -> Any:
        producer = super()._new_producer()
        if self.conf.processing_guarantee.value == EXACTLY_ONCE:
            eos.install_on_producer(producer)
        return producer

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """An exception escaped an agent: a defect or a fault, never bad input (that goes
        to the dead-letter topic). Faust would commit, restart the agent and go on without
        the event in flight, which then has no verdict while its offset commits with its
        neighbours'. Stop the worker instead: open transactions abort and its partitions
        restart from their committed offsets, after a restart or on another worker."""
        log.critical("agent %s failed (%r): stopping the worker", agent.name, exc)
        await self.crash(exc)

    def _crash(self, reason: BaseException) -> None:
        # Every fatal error reaches the app here (mode marks the whole service tree
        # crashed, also when a child service crashed on its own). Whatever the graceful
        # stop then waits for, the process ends within the grace.
        lastresort.end_process_after(lastresort.GRACE, f"the worker crashed ({reason!r})")
        super()._crash(reason)

    def worker_init(self) -> None:
        super().worker_init()
        if self.conf.processing_guarantee.value != EXACTLY_ONCE:
            return
        tabledir = Path(self.conf.tabledir)
        marker = tabledir / CLEAN_MARKER
        if marker.exists():
            marker.unlink()
            return
        stores = sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []
        if stores:
            log.warning("no clean shutdown recorded: rebuilding %d table stores from changelogs", len(stores))
        for store in stores:
            shutil.rmtree(store, ignore_errors=True)

    async def on_stop(self) -> None:
        if not self.in_transaction:
            await super().on_stop()
            return
        async with eos.gate.closed() as drained:
            # no event is half done: the consumer's last commit covers every local write
            await super().on_stop()
        tabledir = Path(self.conf.tabledir)
        # After a crash (a fenced worker, say) the local tables may hold writes whose
        # transactions aborted: only a stop that is not one rebuilds nothing on restart.
        if drained and not self.crashed and tabledir.is_dir():
            (tabledir / CLEAN_MARKER).touch()
