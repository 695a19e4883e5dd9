"""Connection options for fraudapp's own aiokafka clients, and a clear error when connecting fails.

Every client the CLI commands create (simulate, evaluate, replay, demo, blacklist) takes a
``KafkaTarget``: either a bootstrap string (``host:port,...``, PLAINTEXT) or the options
of ``Settings.kafka_client_options()`` (bootstrap plus SASL / TLS), so that the security
settings reach every client.

aiokafka reports a refused login only in a log record ("Unable connect to ...:
SaslAuthenticationFailed ...") and then raises a bare "Unable to bootstrap";
``explain_connection_errors`` turns that into one line that says why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka.errors import KafkaConnectionError

KafkaTarget = str | Mapping[str, Any]

__all__ = ["KafkaTarget", "KafkaUnreachable", "client_options", "describe", "explain_connection_errors"]


class KafkaUnreachable(RuntimeError):
    """Connecting to Kafka failed; the message (one line, no secrets) says where and why."""


def client_options(target: KafkaTarget) -> dict[str, Any]:
    """aiokafka keyword arguments for ``target`` (a fresh dict: callers may add to it)."""
    if isinstance(target, str):
        return {"bootstrap_servers": target}
    return dict(target)


def describe(target: KafkaTarget) -> str:
    """'127.0.0.1:9092 (SASL_SSL, SCRAM-SHA-256 as alice)' - never the password."""
    options = client_options(target)
    where = str(options.get("bootstrap_servers"))
    protocol = options.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return where
    if str(protocol).startswith("SASL"):
        user = options.get("sasl_plain_username") or "?"
        return f"{where} ({protocol}, {options.get('sasl_mechanism', 'PLAIN')} as {user})"
    return f"{where} ({protocol})"


class _LastConnectError(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reason: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith("Unable connect") and record.args:
            self.reason = str(record.args[-1])  # type: ignore[index]


@contextlib.contextmanager
def explain_connection_errors(target: KafkaTarget) -> Iterator[None]:
    """Raise KafkaUnreachable naming the broker and the cause when connecting fails inside."""
    handler = _LastConnectError()
    logger = logging.getLogger("aiokafka")
    logger.addHandler(handler)
    try:
        yield
    except KafkaConnectionError as exc:
        cause = handler.reason or str(exc)
        hint = " (check FRAUDAPP_SASL_USERNAME / FRAUDAPP_SASL_PASSWORD)" if "Authentication" in cause else ""
        raise KafkaUnreachable(f"cannot connect to Kafka at {describe(target)}: {cause}{hint}") from None
    finally:
        logger.removeHandler(handler)
