"""`fraudapp demo`: broker + worker + simulated traffic + accuracy table, then a clean stop."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import click

from fraudapp.kafkaconn import KafkaTarget, KafkaUnreachable, explain_connection_errors
from fraudapp.settings import Settings
from fraudapp.tooling.processes import stop_process_group

FAUST = str(Path(sys.executable).with_name("faust"))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    """One `faust -A fraudapp worker` in its own process group (so that stop() takes
    everything it started with it)."""

    def __init__(self, env: dict[str, str], log: Path, web_port: int) -> None:
        self.log = log
        self.web_port = web_port
        self.proc = subprocess.Popen([FAUST, "-A", "fraudapp", "worker", "-l", "warn"], env=env,
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
            raise click.ClickException(f"the worker exited with {self.proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise click.ClickException(f"the worker was not healthy after {timeout:.0f} s (log: {self.log})")
            time.sleep(0.25)

    def stop(self, timeout: float = 30) -> None:
        stop_process_group(self.proc, timeout=timeout)


STREAMS = ("clicks", "transactions", "both")


async def _streams(runs: list[tuple[Any, Any, float, str]], kafka: KafkaTarget, settings: Settings,
                   quiet: bool) -> list[list[dict]]:  # fmt: skip
    """Send each stream's traffic at once (its own pacing); the first one shows progress."""
    from fraudapp.commands.simulate import send

    return list(await asyncio.gather(*(
        send(traffic, kafka, topics, settings, rate, 120.0, quiet or i > 0, label)
        for i, (traffic, topics, rate, label) in enumerate(runs)
    )))


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--duration", type=click.FloatRange(1), default=60.0, show_default=True, help="Seconds of traffic.")
@click.option("--rate", type=click.FloatRange(1), default=200.0, show_default=True, help="Clicks per second.")
@click.option("--stream", type=click.Choice(STREAMS), default="clicks", show_default=True,
              help="What to simulate: clicks, crypto transfers, or both at once.")
@click.option("--tx-rate", type=click.FloatRange(1), default=100.0, show_default=True,
              help="Transfers per second (--stream transactions or both).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--mix", default=None, help="Population shares (see `fraudapp simulate --help`).")
@click.option("--broker", default=None, help="Use this Kafka instead of starting a local one.")
@click.option("--kafka-port", type=int, default=None, help="Port of the local broker (default: 9092 or a free one).")
@click.option("--web-port", type=int, default=6066, show_default=True, help="Worker HTTP port (dashboard).")
@click.option("--keep-files", is_flag=True, help="Keep the demo's temp dir (logs, truth, report).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(duration: float, rate: float, stream: str, tx_rate: float, seed: int, mix: str | None, broker: str | None,
            kafka_port: int | None, web_port: int, keep_files: bool, quiet: bool) -> None:
    """Run the whole thing locally: a Kafka broker, one detector worker, simulated traffic
    (clicks, crypto transfers or both) for --duration seconds with a live summary, then the
    accuracy table of each. Everything it started is stopped at the end, also on Ctrl-C."""
    from fraudapp.commands.evaluate import load_outputs, print_report, print_rich
    from fraudapp.commands.simulate import build_traffic, build_transactions
    from fraudapp.tooling.evaluation import evaluate, index_outputs
    from fraudapp.tooling.simulation.kafkaio import SimTopics, SimulationError, ensure_topics
    from fraudapp.tooling.simulation.runner import write_jsonl
    from fraudapp.tooling.simulation.transactions.evaluation import evaluate_transactions, render_transactions
    from fraudapp.tooling.simulation.transactions.runner import transaction_topics

    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` cleans up like Ctrl-C does
    tmp = Path(tempfile.mkdtemp(prefix="fraudapp-demo-"))
    cluster = None
    worker: Worker | None = None
    try:
        env = dict(os.environ)
        if broker is None:
            from fraudapp.tooling import localkafka

            port = kafka_port or (localkafka.DEFAULT_PORT if _port_free(localkafka.DEFAULT_PORT) else _free_port())
            click.echo(f"starting a local Kafka broker on 127.0.0.1:{port} (first run downloads its jars) ...")
            # The local broker is secured like FRAUDAPP_SECURITY_PROTOCOL etc. ask for.
            wanted = Settings.from_env()
            security = localkafka.Security.create(wanted.security_protocol, wanted.sasl_mechanism or None,
                                                  wanted.sasl_username or None, wanted.sasl_password or None)
            cluster = localkafka.start(port, tmp / "kafka", controller_port=_free_port(), security=security)
            env.update(cluster.client_env())
            broker = cluster.url
        if not _port_free(web_port):
            web_port = _free_port()
        token = secrets.token_urlsafe(12)
        env.update(FRAUDAPP_BROKER=broker, FRAUDAPP_WEB_PORT=str(web_port),
                   FRAUDAPP_ADMIN_TOKEN=token, FRAUDAPP_DATADIR=str(tmp / "worker"),
                   FRAUDAPP_TABLEDIR=str(tmp / "tables"))
        settings = Settings.from_env(env)
        kafka = settings.kafka_client_options()
        # The public topics exist before the worker subscribes: a worker that starts on a
        # fresh broker without them ignores the missing ones until its next metadata refresh.
        click_topics, tx_topics = SimTopics.from_settings(settings), transaction_topics(settings)
        with explain_connection_errors(kafka):
            for topics in (click_topics, tx_topics):
                asyncio.run(ensure_topics(kafka, topics, settings.partitions, settings.replication_factor))
        click.echo("starting a fraudapp worker ...")
        worker = Worker(env, tmp / "worker.log", web_port)
        worker.wait_healthy(120)
        click.echo(f"dashboard: http://127.0.0.1:{web_port}/dashboard   (admin token for this demo: {token})")
        runs = []
        if stream in ("clicks", "both"):
            runs.append((build_traffic(None, duration, rate, seed, mix if stream == "clicks" else None, None, None,
                                       settings), click_topics, rate, "clicks"))
        if stream in ("transactions", "both"):
            runs.append((build_transactions(None, duration, tx_rate, seed, mix if stream == "transactions" else None,
                                            None, None, None, settings), tx_topics, tx_rate, "transfers"))
        truths = asyncio.run(_streams(runs, kafka, settings, quiet))
        click.echo("traffic done; evaluating ...")
        for (_, topics, _, label), truth in zip(runs, truths, strict=True):
            write_jsonl(str(tmp / f"truth-{label}.jsonl"), truth)
            verdicts, dead = load_outputs(truth, kafka, topics, 60, quiet)
            click.echo(f"\n== {label}")
            if label == "transfers":
                print_rich(render_transactions(evaluate_transactions(truth, index_outputs(verdicts, dead))))
            else:
                print_report(evaluate(truth, index_outputs(verdicts, dead)))
    except (SimulationError, KafkaUnreachable) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: stopping", err=True)
    finally:
        if worker is not None:
            worker.stop()
        if cluster is not None:
            cluster.stop()
        if keep_files:
            click.echo(f"files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    click.echo("stopped the worker" + (" and the broker" if cluster is not None else ""))
