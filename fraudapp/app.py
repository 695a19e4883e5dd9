"""The Faust app, built from Settings, and its topics (`fraudapp.worker` registers the stages and views)."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

from fraudapp.runtime.versions import require_checked_releases

require_checked_releases()  # before the fixes below patch what they were checked against

import faust

from fraudapp.runtime import exactly_once as eos
from fraudapp.runtime.app import FraudApp
from fraudapp.runtime.assignor import StaticMemberAssignor
from fraudapp.runtime.exactly_once import events  # noqa: F401 - the agents' event loop (re-exported)
from fraudapp.settings import Settings
from fraudapp.topics import declare


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
