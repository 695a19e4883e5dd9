"""The Faust app, built from Settings; importing this module registers agents and views."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
from faust.streams import current_event
from faust.transport.consumer import TransactionManager

from fraudapp.settings import Settings
from fraudapp.topics import declare

log = logging.getLogger(__name__)
EXACTLY_ONCE = "exactly_once"
CLEAN_MARKER = ".clean-shutdown"


class CommitGate:
    """Exactly-once commits happen only between events, never in the middle of one.

    Faust commits on a timer, concurrently with the agents: without this gate a
    transaction can hold part of an event's output (say its verdict) while the event's
    offset goes into the next one, and a crash in between replays the event and doubles
    that output. Agents take the gate per event (`events()`), commits close it.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._busy = 0
        self._closers = 0
        self._cond: asyncio.Condition | None = None

    @property
    def cond(self) -> asyncio.Condition:
        if self._cond is None:  # created on the worker's running loop
            self._cond = asyncio.Condition()
        return self._cond

    @contextlib.asynccontextmanager
    async def event(self) -> AsyncIterator[None]:
        async with self.cond:
            await self.cond.wait_for(lambda: self._closers == 0)
            self._busy += 1
        try:
            yield
        finally:
            async with self.cond:
                self._busy -= 1
                self.cond.notify_all()

    @contextlib.asynccontextmanager
    async def closed(self) -> AsyncIterator[bool]:
        """Hold new events off and wait (at most `timeout`) for running ones; yields True when drained."""
        async with self.cond:
            self._closers += 1
        try:
            drained = True
            try:
                async with self.cond:
                    await asyncio.wait_for(self.cond.wait_for(lambda: self._busy == 0), self.timeout)
            except TimeoutError:
                drained = False
                log.warning("commit gate: an event still running after %.0f s; committing anyway", self.timeout)
            yield drained
        finally:
            async with self.cond:
                self._closers -= 1
                self.cond.notify_all()


class SourcePartitionTransactions(TransactionManager):
    """faust-streaming 0.15.3's TransactionManager, each record sent in the right transaction.

    Upstream picks the transactional producer by the *destination* partition of a record
    (`{app}-{group}-{partition of the record}`) but commits a source partition's offsets
    through the producer named after the *source* partition. A record sent while handling
    an event of partition 0 to partition 2 of the next stage waits in partition 2's
    transaction, which commits only once partition 2 has input of its own to commit: with
    read_committed downstream the pipeline stalls. Sends to topics the worker does not
    consume (verdicts, clicks-dlq) went out with no transaction at all. Here:

    * inside an event, records go through the producer of the event's own partition, so
      they commit atomically with the event's offset;
    * changelog records (queued by tables with `send_soon`, published by a background
      task) keep upstream's choice, which for a table is the source partition, and are
      flushed into the transaction before it commits;
    * anything else sent outside an event (the alert ticks of the 1 s timer) goes through
      the plain idempotent producer: visible at once, never holding a transaction open.
    """

    gate = CommitGate()

    def _transactional_id(self, topic: str, partition: int | None) -> str | None:
        assignor = self.app.assignor
        event = current_event()
        if event is not None:
            tp = event.message.tp
            return f"{self.app.conf.id}-{assignor.group_for_topic(tp.topic)}-{tp.partition}"
        if partition is not None and topic.endswith("-changelog"):
            with contextlib.suppress(KeyError):
                return f"{self.app.conf.id}-{assignor.group_for_topic(topic)}-{partition}"
        return None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        p = self.consumer.key_partition(topic, key, partition)
        tid = self._transactional_id(topic, p)
        return await self.producer.send(topic, key, value, p, timestamp, headers, transactional_id=tid)

    async def commit(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        # Always open the next transaction: upstream's "commit and end" runs twice on
        # shutdown (wait_empty, then on_stop) and the second one fails with "Not in the
        # middle of a transaction". An empty open transaction is harmless; the next
        # producer with the same transactional id fences and aborts it.
        async with self.gate.closed():
            # changelog records queued by send_soon belong to this transaction
            await self.app.producer.buffer.flush()
            return await super().commit(offsets, start_new_transaction=True)


class FraudApp(faust.App):
    """faust.App with the exactly-once fixes above and crash-safe local table state.

    Under exactly_once, RocksDB is written at once while the changelog and the input
    offsets commit together later, so a worker that dies leaves its local tables ahead of
    what was committed, and replaying the uncommitted input would count it twice. A worker
    that did not shut down cleanly therefore drops its local table stores and rebuilds
    them from the (read_committed) changelogs, as Kafka Streams does under EOS.
    """

    def _new_transport(self) -> Any:
        base = faust.transport.by_url(self.conf.broker_consumer[0])
        if self.conf.processing_guarantee.value != EXACTLY_ONCE:
            return base(self.conf.broker_consumer, self)
        cls = type(base.__name__, (base,), {"TransactionManager": SourcePartitionTransactions})
        return cls(self.conf.broker_consumer, self)

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
        async with SourcePartitionTransactions.gate.closed() as drained:
            # no event is half done: the consumer's last commit covers every local write
            await super().on_stop()
        tabledir = Path(self.conf.tabledir)
        if drained and tabledir.is_dir():
            (tabledir / CLEAN_MARKER).touch()


async def events(stream: faust.StreamT) -> AsyncIterator[faust.types.EventT]:
    """`stream.events()`; under exactly_once each event runs inside the commit gate and is
    acked as soon as the agent is done with it (see CommitGate)."""
    if not stream.app.in_transaction:
        async for event in stream.events():
            yield event
        return
    gate = SourcePartitionTransactions.gate
    async for event in stream.events():
        async with gate.event():
            yield event
            event.ack()


def broker_credentials(s: Settings) -> faust.auth.Credentials | None:
    """SASL / SSL pass-through to aiokafka; the password only travels inside the object."""
    import faust.auth  # `import faust` does not load this submodule

    context = None
    if s.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=s.ssl_cafile or None)
    if s.security_protocol.startswith("SASL"):
        mechanism = s.sasl_mechanism or "PLAIN"
        if mechanism.startswith("SCRAM"):
            return faust.auth.SASLCredentials(
                username=s.sasl_username, password=s.sasl_password, mechanism=mechanism, ssl_context=context
            )
        return faust.auth.SASLCredentials(username=s.sasl_username, password=s.sasl_password, ssl_context=context)
    if context is not None:
        return faust.auth.SSLCredentials(context)
    return None


def advertised_host(s: Settings) -> str:
    """The host in the URL this worker advertises; table routes forward requests there."""
    if s.web_host:
        return s.web_host
    if s.web_bind in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return s.web_bind


def create_app(s: Settings) -> faust.App:
    # Faust expects its directories to exist.
    for directory in (s.data_dir, s.table_dir):
        Path(directory).mkdir(parents=True, exist_ok=True)
    app = FraudApp(
        s.app_id,
        broker=s.broker,
        broker_credentials=broker_credentials(s),
        store=s.store,
        datadir=s.data_dir,
        tabledir=s.table_dir,
        processing_guarantee=s.processing_guarantee,
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        table_standby_replicas=s.standby_replicas,
        broker_commit_interval=s.commit_interval,
        producer_linger_ms=s.producer_linger_ms,
        # Faust's own pages expose table contents to anyone: off unless asked for.
        web_tables_enabled=s.web_tables_enabled,
        web_router_enabled=s.web_tables_enabled,
        web_graph_enabled=False,
        web_port=s.web_port,
        web_bind=s.web_bind,
        web_host=advertised_host(s),
        consumer_auto_offset_reset="earliest",
        # Faust creates its internal topics just before subscribing; on a busy broker the
        # first metadata can miss them, and aiokafka then ignores them until the next
        # refresh (5 min by default), leaving the pipeline idle.
        consumer_metadata_max_age_ms=5000,
        topic_allow_declare=True,
    )
    return app


settings = Settings.from_env()
logging.getLogger().setLevel(settings.log_level)
app = create_app(settings)
# Declared before the modules below import them: agents and views share this registry.
topics = declare(app, settings)


@app.task
async def lift_root_log_level() -> None:
    """The worker sets the root logger to DEBUG and filters in its handlers, so every
    library's debug call builds a LogRecord nobody prints (~10 % of the hot path). Raise
    the root level to what the handlers would let through anyway."""
    root = logging.getLogger()
    # Faust's progress spinner is a DEBUG-level handler that spins once per log record;
    # it would keep every debug call alive, and a worker's output is rarely a terminal.
    for handler in [h for h in root.handlers if type(h).__name__ == "SpinnerHandler"]:
        root.removeHandler(handler)
    levels = [h.level for h in root.handlers if h.level] or [logging.getLevelName(settings.log_level)]
    root.setLevel(max(root.level, min(levels)))

# Registration: these modules declare topics, tables, agents and views on `app`.
from fraudapp import agents, views  # noqa: F401
