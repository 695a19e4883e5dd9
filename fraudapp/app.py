"""The Faust app, built from Settings; importing this module registers agents and views."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

import faust

from fraudapp.settings import Settings


def broker_credentials(s: Settings) -> faust.auth.Credentials | None:
    """SASL / SSL pass-through to aiokafka; the password only travels inside the object."""
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
    app = faust.App(
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
        topic_allow_declare=True,
    )
    return app


settings = Settings.from_env()
logging.getLogger().setLevel(settings.log_level)
app = create_app(settings)

# Registration: these modules declare topics, tables, agents and views on `app`.
from fraudapp import agents, views  # noqa: F401
