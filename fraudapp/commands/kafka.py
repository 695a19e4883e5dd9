"""`fraudapp kafka start|stop|status`: a local Apache Kafka (KRaft) broker without Docker."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fraudapp.tooling import localkafka

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """KafkaError -> its message on stderr and exit 1, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except localkafka.KafkaError as exc:
            # First line only: it names the problem and the log file; the tail that
            # follows in the exception is for tracebacks and test reports.
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            click.echo(f"error: {first}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


_port = click.option(
    "--port",
    type=int,
    default=localkafka.DEFAULT_PORT,
    show_default=True,
    help="PLAINTEXT port of the first broker (node i uses port+i).",
)
_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Default: ~/.cache/fraudapp/run/<port>.",
)


@click.group()
def command() -> None:
    """Run a local Apache Kafka broker (KRaft, jars from Maven Central)."""


@command.command()
@_port
@_data_dir
@click.option(
    "--nodes",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Brokers (each also a controller); 3 gives replication factor 3.",
)
@click.option(
    "--heap",
    default=localkafka.DEFAULT_HEAP,
    show_default=True,
    help="JVM heap per broker.",
)
@click.option(
    "--controller-port",
    type=int,
    default=None,
    help="First controller port. Default: port + nodes.",
)
@click.option("--keep", is_flag=True, help="Restart on the existing data instead of wiping it.")
@click.option(
    "--security-protocol",
    type=click.Choice(localkafka.SECURITY_PROTOCOLS, case_sensitive=False),
    envvar="FRAUDAPP_SECURITY_PROTOCOL",
    default="PLAINTEXT",
    show_default=True,
    help="Client listener security (env FRAUDAPP_SECURITY_PROTOCOL). SASL_* and SSL write "
    "<data-dir>/client.env with the FRAUDAPP_* settings clients need.",
)
@click.option(
    "--sasl-mechanism",
    type=click.Choice(localkafka.SASL_MECHANISMS, case_sensitive=False),
    envvar="FRAUDAPP_SASL_MECHANISM",
    default=None,
    help="Mechanism written to client.env (the broker accepts all three). "
    "Default: SCRAM-SHA-256 with SASL_SSL, else PLAIN.",
)
@click.option(
    "--sasl-username",
    envvar="FRAUDAPP_SASL_USERNAME",
    default=None,
    help="The client user (default: fraudapp). Its password is FRAUDAPP_SASL_PASSWORD, or made up.",
)
@click.option(
    "--timeout",
    type=float,
    default=90,
    show_default=True,
    help="Seconds to wait for the broker to accept a produce and a fetch.",
)
@_one_line_errors
def start(
    port: int,
    data_dir: Path | None,
    nodes: int,
    heap: str,
    controller_port: int | None,
    keep: bool,
    security_protocol: str,
    sasl_mechanism: str | None,
    sasl_username: str | None,
    timeout: float,
) -> None:
    """Start the broker in the background and print its bootstrap URL.

    With a secured listener, a second line names the client settings file (source it, or
    copy its FRAUDAPP_* variables); the password itself is never printed.
    """
    # The password only ever comes from the environment: a command line shows in `ps`.
    security = localkafka.Security.create(
        security_protocol, sasl_mechanism, sasl_username, os.environ.get("FRAUDAPP_SASL_PASSWORD")
    )
    cluster = localkafka.start(
        port,
        data_dir,
        nodes,
        heap,
        controller_port=controller_port,
        keep=keep,
        timeout=timeout,
        security=security,
    )
    click.echo(cluster.url)
    sec = cluster.security
    if sec.protocol != "PLAINTEXT":
        user = f", user {sec.username!r} ({sec.mechanism})" if sec.sasl else ""
        env_file = cluster.data_dir / localkafka.CLIENT_ENV_FILE
        click.echo(f"{sec.protocol}{user}; client settings: set -a; . {env_file}; set +a")


@command.command()
@_port
@_data_dir
@click.option(
    "--timeout",
    type=float,
    default=20,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
@_one_line_errors
def stop(port: int, data_dir: Path | None, timeout: float) -> None:
    """Stop what `fraudapp kafka start` started (all nodes of that cluster)."""
    target: Path | int = data_dir if data_dir is not None else port
    pids = localkafka.stop(target, timeout)
    if pids:
        click.echo(f"stopped {', '.join(map(str, pids))}")
    else:
        click.echo(f"no broker running for {target}")


@command.command()
@_one_line_errors
def status() -> None:
    """List the local Kafka brokers: port, pid, data dir."""
    nodes = localkafka.status()
    if not nodes:
        click.echo("no Kafka broker running")
        return
    click.echo(f"{'PORT':<7}{'PID':<9}{'NODE':<6}DATA DIR")
    for n in nodes:
        click.echo(f"{n.port or '?'!s:<7}{n.pid:<9}{n.node_id or '?'!s:<6}{n.data_dir or '?'}")
