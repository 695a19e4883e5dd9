"""Kafka security pass-through: a local broker with a SASL listener (SASL_PLAINTEXT + PLAIN,
slow; SASL_SSL + SCRAM, default suite), a real worker and the CLI commands on it, wrong
passwords, no leaks.

Each case starts its own broker (the session broker is PLAINTEXT): one worker, then
`fraudapp blacklist add`, `fraudapp simulate` (which waits until the worker has applied
its blacklist), `fraudapp evaluate` (every input answered) and POST /clicks (the worker's
own publisher; its verdict seen by the worker's tap in /stats). The password must not
appear in anything the worker, the CLI or the broker log wrote.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from fraudapp.tooling import localkafka
from tests.integration.conftest import FAUST, Cluster, wait_for

pytestmark = pytest.mark.integration

FRAUDAPP = str(Path(sys.executable).with_name("fraudapp"))
CASES = {
    "sasl_plaintext-plain": ("SASL_PLAINTEXT", "PLAIN"),
    "sasl_ssl-scram": ("SASL_SSL", "SCRAM-SHA-512"),
}
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@pytest.fixture(scope="module", params=[
    # SASL_SSL is the default suite's case (the broker there also accepts PLAIN, which the
    # test's CLI uses); SASL_PLAINTEXT costs another broker and worker start: slow.
    pytest.param("sasl_plaintext-plain", marks=pytest.mark.slow),
    "sasl_ssl-scram",
])
def secure_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[localkafka.Cluster]:
    """A broker started the way users start one: `fraudapp kafka start --security-protocol ...`."""
    protocol, mechanism = CASES[request.param]
    port, cport = localkafka.free_port(), localkafka.free_port()
    data_dir = tmp_path_factory.mktemp("secure-kafka")
    # A password with characters a shell or a log formatter might mangle (still allowed in JAAS).
    password = "s3cr%t$-" + uuid.uuid4().hex
    env = dict(os.environ, FRAUDAPP_SASL_PASSWORD=password)
    started = subprocess.run(
        [FRAUDAPP, "kafka", "start", "--port", str(port), "--controller-port", str(cport), "--data-dir", str(data_dir),
         "--security-protocol", protocol, "--sasl-mechanism", mechanism, "--sasl-username", "alice"],
        env=env, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        lines = started.stdout.splitlines()
        assert lines[0] == f"kafka://127.0.0.1:{port}" and str(data_dir / "client.env") in lines[1], lines
        assert password not in started.stdout + started.stderr
        cluster = localkafka.load(data_dir)
        # client.env holds what a user sources: the same settings as the Cluster's view.
        written = dict(shlex.split(line)[0].split("=", 1) for line in (data_dir / "client.env").read_text().splitlines())
        assert written == cluster.client_env() and written["FRAUDAPP_SASL_PASSWORD"] == password
        yield cluster
    finally:
        localkafka.stop(data_dir)


@pytest.fixture
def secure_cluster(secure_broker: localkafka.Cluster, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(
        broker_url=secure_broker.url,
        bootstrap=secure_broker.bootstrap,
        app_id="s" + uuid.uuid4().hex[:10],
        tmp=tmp_path,
        extra_env=secure_broker.client_env(),
    )
    try:
        yield cluster
    finally:
        cluster.stop_all()


def run(cluster: Cluster, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FRAUDAPP, *args], env=cluster.env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)


def post_click(url: str, token: str, click: dict) -> dict:
    request = urllib.request.Request(url + "/clicks", data=orjson.dumps(click), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
        return json.loads(resp.read())


def stats_clicks(url: str) -> int:
    with urllib.request.urlopen(url + "/stats", timeout=5) as resp:
        return int(json.loads(resp.read())["since_start"]["clicks"])


@pytest.mark.timeout(400)
def test_worker_and_cli_over_sasl(secure_broker: localkafka.Cluster, secure_cluster: Cluster, tmp_path: Path) -> None:
    password = secure_broker.security.password
    outputs: list[str] = []
    worker = secure_cluster.start_worker("w1", FRAUDAPP_INGEST_TOKEN="ingest-token")

    # the CLI as another client: PLAIN over this broker's listener (the worker uses the case's mechanism)
    added = run(secure_cluster, "blacklist", "add", "198.51.100.77", "--reason", "sasl test",
                FRAUDAPP_SASL_MECHANISM="PLAIN")
    outputs += [added.stdout, added.stderr]
    assert added.returncode == 0, added.stderr

    truth, report = tmp_path / "truth.jsonl", tmp_path / "report.json"
    sim = run(secure_cluster, "simulate", "--count", "300", "--seed", "3", "--rate", "0", "--truth", str(truth),
              "--quiet", "--wait-timeout", "90", timeout=200)
    outputs += [sim.stdout, sim.stderr]
    assert sim.returncode == 0, sim.stderr + "\n" + worker.tail()
    ev = run(secure_cluster, "evaluate", "--truth", str(truth), "--json", str(report), "--timeout", "90", "--quiet",
             timeout=150)
    outputs += [ev.stdout, ev.stderr]
    assert ev.returncode == 0, ev.stderr
    assert orjson.loads(report.read_bytes())["accounted_share"] == 1.0

    # HTTP ingest publishes through the worker's own producer; the tap counts the verdict.
    before = stats_clicks(worker.url)
    answer = post_click(worker.url, "ingest-token", {"click_id": "sasl-http-1", "ts": time.time(),
                                                     "device_id": "sasl-dev", "ip": "198.51.100.77",
                                                     "user_agent": UA})
    assert answer["accepted"] == 1
    wait_for(lambda: stats_clicks(worker.url) > before, 60, "the HTTP click's verdict in /stats")

    worker.stop()
    outputs.append(worker.log.read_text(errors="replace"))
    outputs.append(secure_broker.nodes[0].log_file.read_text(errors="replace"))
    leaks = [i for i, text in enumerate(outputs) if password in text]
    assert not leaks, f"the SASL password appears in outputs {leaks}"


@pytest.mark.timeout(200)
def test_wrong_password_is_a_clear_error(secure_broker: localkafka.Cluster, secure_cluster: Cluster) -> None:
    wrong = {"FRAUDAPP_SASL_PASSWORD": "not-the-password-" + uuid.uuid4().hex}
    added = run(secure_cluster, "blacklist", "add", "198.51.100.78", timeout=60, **wrong)
    assert added.returncode == 1
    assert "Traceback" not in added.stderr and len(added.stderr.strip().splitlines()) == 1, added.stderr
    assert "Authentication failed" in added.stderr and secure_broker.bootstrap in added.stderr, added.stderr

    sim = run(secure_cluster, "simulate", "--count", "10", "--quiet", "--wait-timeout", "20", timeout=60, **wrong)
    assert sim.returncode == 1
    assert "Traceback" not in sim.stderr and "Authentication failed" in sim.stderr, sim.stderr

    # The worker gives up at once, saying why, instead of retrying for ever.
    started = time.monotonic()
    log = secure_cluster.tmp / "wrong-worker.log"
    proc = subprocess.run([FAUST, "-A", "fraudapp", "worker", "-l", "info"], timeout=120, check=False,
                          env=secure_cluster.env(FRAUDAPP_DATADIR=str(secure_cluster.tmp / "wd"),
                                                 FRAUDAPP_TABLEDIR=str(secure_cluster.tmp / "wt"),
                                                 FRAUDAPP_WEB_PORT=str(localkafka.free_port()), **wrong),
                          stdout=log.open("wb"), stderr=subprocess.STDOUT)
    text = log.read_text(errors="replace")
    assert proc.returncode != 0, text[-3000:]
    assert "Authentication failed" in text, text[-3000:]
    assert time.monotonic() - started < 90
    for secret in (secure_broker.security.password, wrong["FRAUDAPP_SASL_PASSWORD"]):
        assert secret not in text + added.stdout + added.stderr + sim.stdout + sim.stderr
