"""`fraudapp bench`: fraudapp's speed against peers on identical traffic (bench/README.md).

Systems: ceiling (aiokafka pass-through), fraudapp (`faust -A fraudapp worker`), quix
(Quix Streams with the same hard rules), redis (aiohttp + redis-server, the Redis-tutorial
architecture). Starts a local broker unless --broker is given; stops what it started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from fraudapp.tooling.benchmark.harness import BENCH_DIR, SYSTEMS, Config, Progress, bench, markdown, run_meta


def _systems(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in SYSTEMS]
    if bad:
        raise click.BadParameter(f"unknown system(s) {', '.join(bad)}; choose from {', '.join(SYSTEMS)}")
    return names


@click.command("bench")
@click.option(
    "--quick", is_flag=True, help="reduced run (~2 min): 8k clicks, short latency runs for fraudapp and ceiling"
)
@click.option("-n", "--clicks", "n", type=int, default=None, help="backlog size (default 50,000; --quick 8,000)")
@click.option("--systems", default=",".join(SYSTEMS), show_default=True, help="comma-separated subset")
@click.option(
    "--latency-systems", default=None, help="systems measured at fixed rates (default: all; --quick: fraudapp,ceiling)"
)
@click.option("--latency-seconds", type=float, default=None, help="seconds per fixed rate (default 20; --quick 6)")
@click.option("--live-seconds", type=float, default=None,
              help="live capacity: seconds per open-loop rate (default 30; --quick 10)")
@click.option("--live-steps", type=int, default=None,
              help="live capacity: bisection steps, 0 to skip (default 5; --quick 3)")
@click.option("--rates", default=None, help="explicit rates in clicks/s (default: 25/50/75%% of fraudapp's max)")
@click.option("--partitions", type=int, default=4, show_default=True)
@click.option("--redis-concurrency", type=int, default=64, show_default=True, help="in-flight HTTP requests")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--broker", default=None, help="bootstrap host:port of a running broker (default: start a local one)")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write results JSON here"
)
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=BENCH_DIR / "results",
              show_default=True, help="the markdown table is appended to <dir>/<date>.md; '-' for none")  # fmt: skip
@click.option("--timeout", type=float, default=600, show_default=True, help="per system, for the backlog")
@click.option("--keep-workdir", is_flag=True, help="keep logs and state of the systems")
@click.option(
    "--state",
    is_flag=True,
    help="instead: RSS / disk of N devices in window state, its recovery (1 and 2 workers) and expiry",
)
@click.option("--state-keys", type=int, default=1_000_000, show_default=True, help="devices in state, with --state")
@click.option("--state-workers", default="1,2", show_default=True, help="recovery runs (worker counts), with --state")
def command(quick: bool, n: int | None, systems: str, latency_systems: str | None, latency_seconds: float | None,
            live_seconds: float | None, live_steps: int | None, rates: str | None, partitions: int, redis_concurrency: int, seed: int, broker: str | None,
            json_path: Path | None, results_dir: Path, timeout: float, keep_workdir: bool, state: bool,
            state_keys: int, state_workers: str) -> None:  # fmt: skip
    """Throughput, latency, CPU and memory of fraudapp and its peers on the same traffic.

    With --state: size, expiry and recovery of the device window state (bench/README.md).
    """
    cfg = Config(
        n=n or (8_000 if quick else 50_000),
        partitions=partitions,
        seed=seed,
        systems=_systems(systems),
        latency_systems=_systems(latency_systems)
        if latency_systems
        else (("fraudapp", "ceiling") if quick else SYSTEMS),
        rates=tuple(float(r) for r in rates.split(",")) if rates else (),
        latency_seconds=latency_seconds or (6.0 if quick else 20.0),
        live_seconds=live_seconds or (10.0 if quick else 30.0),
        live_steps=live_steps if live_steps is not None else (3 if quick else 5),
        redis_concurrency=redis_concurrency,
        timeout=timeout,
        quick=quick,
    )
    peers = sorted({*cfg.systems, *cfg.latency_systems} - {"fraudapp"})
    if peers and not state and not BENCH_DIR.is_dir():
        raise click.ClickException(
            f"the peers ({', '.join(peers)}) live in the repository's bench/ folder, which this install "
            f"does not have ({BENCH_DIR}): run `./run bench` from a checkout, or --systems fraudapp "
            "--latency-systems fraudapp"
        )
    progress = Progress(lambda text: click.echo(text, err=True))
    work = Path(tempfile.mkdtemp(prefix="fraudapp-bench-"))
    cluster = None
    try:
        if broker is None:
            from fraudapp.tooling import localkafka

            port, cport = localkafka.free_port(), localkafka.free_port()
            while cport == port:
                cport = localkafka.free_port()
            progress.line(f"starting a local Kafka broker on 127.0.0.1:{port}")
            cluster = localkafka.start(port, work / "kafka", controller_port=cport)
            os.environ.setdefault("FRAUDAPP_BENCH_KAFKA_VERSION", cluster.version)
            bootstrap = cluster.bootstrap
        else:
            bootstrap = broker.replace("kafka://", "").replace(";", ",")
        if state:
            workers = tuple(int(w) for w in state_workers.split(",") if w.strip())
            doc = _state_run(state_keys, partitions, workers, bootstrap, progress, work / "state")
        else:
            doc, _ = asyncio.run(bench(cfg, bootstrap, progress, work / "systems"))
    finally:
        if cluster is not None:
            cluster.stop()
        if keep_workdir:
            progress.line(f"logs and state kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if state:
        from fraudapp.tooling.benchmark.statebench import state_markdown

        text = state_markdown(doc)
    else:
        text = markdown(doc)
    click.echo(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        click.echo(f"JSON: {json_path}", err=True)
    if str(results_dir) != "-":
        results_dir.mkdir(parents=True, exist_ok=True)
        md = results_dir / f"{dt.date.today().isoformat()}.md"
        fresh = not md.exists() or md.stat().st_size == 0
        with md.open("a") as f:
            f.write(("# fraudapp bench results (see bench/README.md)\n\n" if fresh else "\n") + text)
        click.echo(f"markdown: {md}", err=True)
    if doc["errors"]:
        raise SystemExit(1)


def _state_run(keys: int, partitions: int, workers: tuple[int, ...], bootstrap: str, progress: Progress,
               work: Path) -> dict[str, Any]:  # fmt: skip
    from fraudapp.tooling.benchmark.statebench import StateBench, StateConfig, state_doc

    cfg = StateConfig(keys=keys, partitions=partitions, workers=workers)
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().astimezone()
    runner = StateBench(cfg, bootstrap, work, progress)
    error = None
    try:
        asyncio.run(runner.run())
    except Exception as exc:  # noqa: BLE001 - report what was measured before the failure
        error = f"{type(exc).__name__}: {exc}"
        progress.line(f"state: FAILED: {error}")
    return state_doc(runner.res, cfg, run_meta(started), error)
