"""The Faust app, built from Settings, and its topics (`fraudapp.worker` registers the stages and views)."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
from pathlib import Path
from typing import Any

from fraudapp.runtime.versions import require_checked_releases

require_checked_releases()  # before the fixes below patch what they were checked against

import faust

from fraudapp import lastresort
from fraudapp.runtime import consumer as consumer_fixes
from fraudapp.runtime import exactly_once as eos
from fraudapp.runtime.assignor import StaticMemberAssignor
from fraudapp.runtime.exactly_once import events  # noqa: F401 - the agents' event loop (re-exported)
from fraudapp.settings import Settings
from fraudapp.topics import declare

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
        consumer_group_instance_id=s.group_instance_id or None,
        PartitionAssignor=StaticMemberAssignor,
        broker_session_timeout=s.session_timeout,
        broker_commit_livelock_soft_timeout=s.commit_stall_seconds,
        # Faust's default heartbeat (3 s) is a third of the shortest sane session timeout
        broker_heartbeat_interval=min(3.0, s.session_timeout / 3),
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
    app.fetch_max_wait_ms = s.fetch_max_wait_ms
    eos.trace.path = s.eos_trace
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
