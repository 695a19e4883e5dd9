"""docker/: what can be proved about the deployment without a Docker engine.

Static (marked unit, no broker): the compose file is valid for the Compose CLI and every
FRAUDAPP_* variable it, the Dockerfile or docker/README.md names is a real setting; the
image's lock pins every runtime dependency; the dashboard and alert rules are valid PromQL.

Live (integration, real broker and real `faust -A fraudapp worker` processes): the
dashboard and the alert rules query only series a running worker's /metrics exposes, and
Prometheus (Debian's package) with the compose file's scrape configuration, pointed at
loopback, scrapes two running workers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from configparser import ConfigParser
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
from packaging.requirements import Requirement
from prometheus_client.parser import text_string_to_metric_families

from fraudapp.settings import PREFIX, Settings
from tests.integration.conftest import Cluster, produce_clicks, wait_for

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "fraudapp.json"
PROM_CONFIG = DOCKER / "prometheus.yml"
PROM_RULES = DOCKER / "prometheus-alerts.yml"
SETTING_NAMES = frozenset(PREFIX + f.name.upper() for f in fields(Settings))
FRAUDAPP_VAR = re.compile(r"\bFRAUDAPP_[A-Z0-9_]+\b")
WORKERS = ("worker-1", "worker-2")
# Series that Prometheus itself makes, not a worker: `up` per target, `ALERTS` per rule.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS"})
# Labels that Prometheus adds to every scraped series, and the histogram bucket label.
SCRAPE_LABELS = frozenset({"instance", "job", "app", "le"})


# --------------------------------------------------------------------------------------
# helpers


def _run(cmd: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def _compose_cli() -> list[str]:
    """`docker compose` (v2 plugin) or `docker-compose` (v1, Debian's package), else skip."""
    if shutil.which("docker") and _run(["docker", "compose", "version"], timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose") is None:
        docker = "the docker client is present" if shutil.which("docker") else "no docker client"
        pytest.skip(f"no Compose CLI ({docker}, no compose plugin, no docker-compose; `./run tests` installs "
                    "Debian's docker-compose when run as root)")
    return ["docker-compose"]


def _prometheus_bin(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"no {name} (`./run tests` installs Debian's prometheus package when run as root)")
    return path


def _compose_config() -> str:
    """`compose config` output: the file validated, merged (anchors) and interpolated."""
    cli = _compose_cli()
    # Interpolation must use the file's own defaults, not this shell's FRAUDAPP_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    done = _run([*cli, "-f", str(COMPOSE_FILE), "--profile", "simulator", "config"], env=env)
    assert done.returncode == 0, f"{' '.join(cli)} config failed:\n{done.stderr}"
    return done.stdout


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_compose_services(text: str) -> dict[str, dict[str, Any]]:
    """The parts of normalized `compose config` YAML these tests read, without a YAML library.

    Both Compose v1 and v2 print services at two spaces, their keys at four, and
    `environment` as a mapping at six: {service: {"environment": {...}, "image": ..., "volumes": [...]}}.
    """
    services: dict[str, dict[str, Any]] = {}
    section = ""
    current: dict[str, Any] | None = None
    key = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if indent == 0:
            section = stripped.rstrip(":")
            current = None
            continue
        if section != "services":
            continue
        if indent == 2 and stripped.endswith(":"):
            current = services.setdefault(stripped[:-1], {"environment": {}, "volumes": []})
            key = ""
            continue
        if current is None:
            continue
        if key == "volumes" and stripped.startswith("- "):  # v1 prints list items at the key's indent
            current["volumes"].append(_unquote(stripped[2:]))
            continue
        if indent == 4:
            name, _, rest = stripped.partition(":")
            key = name
            if rest.strip():
                current[name] = _unquote(rest)
            else:
                current.setdefault(name, {})
            continue
        if key == "environment" and indent == 6 and ":" in stripped:
            name, _, value = stripped.partition(":")
            current["environment"][name.strip()] = _unquote(value)
        elif key == "volumes" and stripped.startswith("target:"):
            current["volumes"].append(":" + _unquote(stripped.partition(":")[2]))
    return services


def _load_lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_lock", DOCKER / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard, rows included."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return out


def rule_exprs() -> list[tuple[str, str]]:
    """(alert name, PromQL) from the alert rules file (one-line `expr:` values)."""
    out: list[tuple[str, str]] = []
    alert = "?"
    for line in PROM_RULES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            alert = stripped.partition(":")[2].strip()
        elif stripped.startswith("expr:"):
            out.append((alert, _unquote(stripped.partition(":")[2])))
    return out


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTORS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPINGS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "histogram_quantile",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "vector",
        "scalar",
        "time",
        "label_replace",
        "label_join",
        "sort",
        "sort_desc",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "predict_linear",
        "resets",
        "changes",
        "timestamp",
        "inf",
        "nan",
    }
)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (labels, functions, keywords left out)."""
    text = _STRINGS.sub(" ", expr)
    text = _SELECTORS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPINGS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        if word in _KEYWORDS or word.lower() in _KEYWORDS:
            continue
        # a number's exponent or a duration glued to a digit is not a name
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue
        names.add(word)
    return names


def promql_grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for _, inside in _GROUPINGS.findall(_STRINGS.sub(" ", expr)):
        labels.update(x.strip() for x in inside.split(",") if x.strip())
    return labels


def exposed_series(text: str) -> dict[str, set[str]]:
    """{sample name: label names} that a /metrics body can put in Prometheus.

    Families without samples yet (a labelled counter nobody incremented) still count, with
    the names their type gives them: counter -> _total (+ _created), histogram -> _bucket,
    _sum, _count (+ _created), summary -> _sum, _count, gauge / untyped -> the name.
    """
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names = [family.name + "_total", family.name + "_created"]
        elif family.type == "histogram":
            names = [family.name + s for s in ("_bucket", "_sum", "_count", "_created")]
        elif family.type == "summary":
            names = [family.name + s for s in ("", "_sum", "_count", "_created")]
        else:
            names = [family.name]
        for name in names:
            series.setdefault(name, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def declared_labels() -> dict[str, set[str]]:
    """Label names of fraudapp's own metrics as fraudapp.metrics declares them, by sample name.

    For families that have no sample yet on a fresh worker (no alert raised, no HTTP call),
    whose labels the text format cannot show.
    """
    from prometheus_client.metrics import MetricWrapperBase

    from fraudapp import metrics

    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for family in obj.describe():
                for suffix in ("", "_total", "_bucket", "_sum", "_count"):
                    out[family.name + suffix] = set(obj._labelnames)
    return out


def sampled_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------
# static: files and configuration


@pytest.mark.unit
def test_deployment_files_name_only_existing_settings() -> None:
    files = [COMPOSE_FILE, DOCKER / "Dockerfile", DOCKER / "README.md"]
    unknown = {
        f"{path.relative_to(REPO)}: {name}"
        for path in files
        for name in FRAUDAPP_VAR.findall(path.read_text())
        if name not in SETTING_NAMES
    }
    assert not unknown, f"FRAUDAPP_* names that are not settings of fraudapp.settings.Settings: {sorted(unknown)}"
    assert FRAUDAPP_VAR.search(COMPOSE_FILE.read_text()), "the compose file configures no setting at all"


@pytest.mark.unit
def test_compose_config_is_valid_and_configures_the_workers() -> None:
    services = parse_compose_services(_compose_config())
    expected = {"kafka", *WORKERS, "simulator", "prometheus", "grafana"}
    assert expected <= set(services), f"services missing from `compose config`: {expected - set(services)}"

    assert services["kafka"]["image"].startswith("apache/kafka:3.9."), services["kafka"]["image"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "healthcheck" in services["kafka"], "kafka needs a health check for the workers' depends_on"

    for name, service in services.items():
        env = service["environment"]
        fraudapp_vars = {k: v for k, v in env.items() if k.startswith(PREFIX)}
        unknown = set(fraudapp_vars) - SETTING_NAMES
        assert not unknown, f"{name}: environment names unknown settings {sorted(unknown)}"
        # every value must parse as its setting's type (e.g. FRAUDAPP_PARTITIONS=eight fails)
        Settings.from_env(fraudapp_vars)

    for name in WORKERS:
        env = services[name]["environment"]
        s = Settings.from_env({k: v for k, v in env.items() if k.startswith(PREFIX)})
        assert s.broker == "kafka://kafka:9092", f"{name} must reach the compose broker: {s.broker}"
        assert s.web_bind == "0.0.0.0", f"{name} must listen on all interfaces inside its container"
        assert s.partitions >= len(WORKERS), f"{s.partitions} partitions leave workers idle"
        assert s.replication_factor == 1, "one broker: replication factor must be 1"
        assert s.standby_replicas == 1, "two workers: one standby replica each"
        state_mounts = [v.split(":")[1] for v in services[name]["volumes"] if ":" in v]
        assert "/var/lib/fraudapp" in state_mounts, f"{name}: RocksDB state volume missing: {services[name]['volumes']}"
        assert s.tabledir.startswith("/var/lib/fraudapp/") and s.datadir.startswith("/var/lib/fraudapp/")
        assert "healthcheck" in services[name] and "/health" in COMPOSE_FILE.read_text()
        # Faust advertises http://<WEB_HOST>:<port> to the other workers (table routes forward
        # there); without it every worker would advertise 127.0.0.1, i.e. itself.
        assert env.get("FRAUDAPP_WEB_HOST") == services[name]["hostname"] == name, f"{name}: FRAUDAPP_WEB_HOST must be its host name"
        # static membership needs an id unique to the worker and stable across its restarts
        assert env.get("FRAUDAPP_GROUP_INSTANCE_ID") == name, f"{name}: FRAUDAPP_GROUP_INSTANCE_ID must be its service name"

    assert services["simulator"]["environment"]["FRAUDAPP_BROKER"] == "kafka://kafka:9092"
    per_worker = {"FRAUDAPP_WEB_HOST", "FRAUDAPP_GROUP_INSTANCE_ID"}  # each worker's own identity
    envs = [
        {k: v for k, v in services[n]["environment"].items() if k.startswith(PREFIX) and k not in per_worker}
        for n in WORKERS
    ]
    assert envs[0] == envs[1], "the two workers must run with the same settings"


@pytest.mark.unit
def test_compose_simulator_command_parses_with_the_fraudapp_cli() -> None:
    from fraudapp.cli import main

    found = re.search(r'^\s+command: (\["fraudapp", "simulate".*\])$', COMPOSE_FILE.read_text(), re.MULTILINE)
    assert found, "no `fraudapp simulate` command in the compose file"
    argv = json.loads(found.group(1))
    command = main.get_command(click.Context(main), argv[1])
    assert command is not None, f"fraudapp has no {argv[1]!r} command"
    # Parsing only (no traffic is built or sent): every option and value must be accepted.
    ctx = command.make_context(argv[1], argv[2:])
    assert ctx.params["rate"] > 0 and ctx.params["duration"] > 0


@pytest.mark.unit
def test_dockerfile_runs_the_worker_as_a_non_root_user_with_state_on_a_volume() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE), "slim Python 3.11 base"
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"last USER must not be root: {users}"
    assert "--constraint /tmp/requirements.lock" in text and "--no-index" in text, "install from the lock only"
    volume = re.search(r'^VOLUME \["([^"]+)"\]', text, re.MULTILINE)
    assert volume, "no VOLUME"
    env = dict(re.findall(r"(FRAUDAPP_[A-Z_]+)=(\S+)", text))
    assert env["FRAUDAPP_WEB_BIND"] == "0.0.0.0"
    for var in ("FRAUDAPP_TABLEDIR", "FRAUDAPP_DATADIR"):
        assert env[var].startswith(volume.group(1) + "/"), f"{var}={env[var]} is not on the volume {volume.group(1)}"
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.MULTILINE | re.DOTALL)
    assert healthcheck and "/health" in healthcheck.group(1) and "urllib" in healthcheck.group(1)
    assert "curl" not in healthcheck.group(1)
    assert re.search(r'^CMD \["faust", "-A", "fraudapp", "worker", "-l", "info"\]', text, re.MULTILINE)

    # Every file COPY'd from the build context must survive .dockerignore.
    allowed = [
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for item in source.split():
            item = item.replace("README.m[d]", "README.md")
            assert any(item == a or item.startswith(a + "/") for a in allowed), f"{item} is excluded by .dockerignore"
            assert (REPO / item).exists() or item == "README.md", f"COPY source {item} does not exist"


@pytest.mark.unit
def test_lock_pins_every_runtime_dependency_within_its_declared_range() -> None:
    lock = _load_lock_module()
    pinned: dict[str, str] = lock.read_lock()
    needed: dict[str, str] = lock.runtime_pins()
    missing = set(needed) - set(pinned)
    assert not missing, f"docker/requirements.lock lacks {sorted(missing)}: run `python docker/lock.py`"

    cfg = ConfigParser()
    cfg.read(REPO / "setup.cfg")
    declared = [Requirement(line) for line in cfg["options"]["install_requires"].split("\n") if line.strip()]
    for req in declared:
        version = pinned.get(lock.canonical(req.name))
        assert version is not None, f"setup.cfg requires {req.name}, the lock does not pin it"
        assert req.specifier.contains(version, prereleases=True), (
            f"lock pins {req.name}=={version}, setup.cfg wants {req}"
        )


@pytest.mark.unit
def test_dashboard_covers_verdicts_latency_dead_letters_lag_and_alerts() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ds_uid = re.search(
        r"^\s*uid:\s*(\S+)", (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text(), re.MULTILINE
    )
    assert ds_uid, "the provisioned data source needs a fixed uid"
    ids: list[int] = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == ds_uid.group(1), f"{panel['title']}: not the provisioned data source"
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    # Panels lie within Grafana's 24 columns and do not overlap (Grafana would push them about).
    boxes = [(p["title"], p["gridPos"]) for p in dashboard["panels"]]
    for title, g in boxes:
        assert g["x"] >= 0 and g["y"] >= 0 and g["w"] >= 1 and g["h"] >= 1 and g["x"] + g["w"] <= 24, title
    overlaps = [(a, b) for i, (a, ga) in enumerate(boxes) for b, gb in boxes[i + 1:]
                if ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]]
    assert not overlaps, f"overlapping panels: {overlaps}"

    exprs = " \n".join(e for _, e in dashboard_exprs())
    required = {
        "verdicts over time": r"fraudapp_verdicts_total",
        "verdicts by fraud type": r"by \(fraud_type\) \(rate\(fraudapp_fraud_types_total",
        "decision latency": r"histogram_quantile\(0\.95, sum by \(le\) \(rate\(fraudapp_decision_latency_seconds_bucket",
        "dead letters": r"fraudapp_dead_letters_total",
        "consumer lag": r"faust_topic_partition_end_offset - faust_topic_partition_offset_commited",
        "fraud alerts": r"fraudapp_alerts_total",
        "firing alerts": r'ALERTS\{alertstate="firing"\}',
        "rule-set versions": r"fraudapp_rules_version",
        "a shadow run's would-flip counts": r"fraudapp_shadow_flips_total",
        "transaction verdicts by verdict": r"by \(verdict\) \(rate\(fraudapp_transaction_verdicts_total",
        "fraud transactions by fraud type": r"by \(fraud_type\) \(rate\(fraudapp_transaction_fraud_types_total",
    }
    absent = [what for what, pattern in required.items() if not re.search(pattern, exprs)]
    assert not absent, f"the dashboard shows no {absent}"

    provider = (DOCKER / "grafana/provisioning/dashboards/fraudapp.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    assert "./grafana/dashboards:/var/lib/grafana/dashboards" in COMPOSE_FILE.read_text()


@pytest.mark.unit
def test_dashboard_and_rules_are_valid_promql(tmp_path: Path) -> None:
    promtool = _prometheus_bin("promtool")
    exprs = dashboard_exprs()
    assert exprs and rule_exprs()
    # Every dashboard query as a recording rule: promtool parses each one.
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, expr) in enumerate(exprs):
        lines += [f"      - record: dashboard:q{i}", f"        expr: {json.dumps(expr)}"]
    queries = tmp_path / "dashboard-rules.yml"
    queries.write_text("\n".join(lines) + "\n")
    done = _run([promtool, "check", "rules", str(queries), str(PROM_RULES)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout

    # The compose scrape configuration itself, with the rule file at its local path.
    config = tmp_path / "prometheus.yml"
    config.write_text(PROM_CONFIG.read_text().replace("/etc/prometheus/prometheus-alerts.yml", str(PROM_RULES)))
    done = _run([promtool, "check", "config", str(config)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.unit
def test_promql_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, instance) (rate(fraudapp_x_bucket{verdict="fraud"}[5m]))) '
        "/ on(instance) group_left sum(fraudapp_y) > 1e3 or vector(0)"
    )
    assert promql_metric_names(expr) == {"fraudapp_x_bucket", "fraudapp_y"}
    assert promql_grouping_labels(expr) == {"le", "instance"}
    assert promql_metric_names('ALERTS{alertstate="firing"}') == {"ALERTS"}


# --------------------------------------------------------------------------------------
# live: a running worker's /metrics, and Prometheus scraping two workers


def _sample_clicks(tag: str) -> list[dict[str, Any] | bytes]:
    """Clean-looking clicks, a click-spam burst, a crawler and one undecodable record."""
    now = time.time()
    human = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"

    def click(cid: str, device: str, dt: float, **extra: Any) -> dict[str, Any]:
        body = {"click_id": f"{tag}-{cid}", "ts": round(now + dt, 3), "device_id": f"{tag}-{device}"}
        body.update(ip="198.51.100.10", campaign_id="c1", publisher_id="p1", user_agent=human)
        body.update(extra)
        return body

    clicks: list[dict[str, Any] | bytes] = [click(f"ok-{i}", f"dev-{i}", 0) for i in range(3)]
    clicks += [click(f"spam-{i}", "dev-spam", i * 0.1) for i in range(4)]  # 3rd within 10 s: click_spam
    clicks.append(click("bot", "dev-bot", 0, user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)"))
    clicks.append(b"this is not json")
    return clicks


def _metrics(url: str) -> str:
    status, body = _get(url + "/metrics")
    assert status == 200, f"GET /metrics answered {status}: {body[:300]!r}"
    return body.decode()


@pytest.mark.integration
def test_dashboard_and_alert_rules_query_only_series_a_running_worker_exposes(fraud_cluster: Cluster) -> None:
    worker = fraud_cluster.start_worker("w1")
    produce_clicks(fraud_cluster, _sample_clicks("deploy"))

    # Once those clicks are judged (one bot click at least is fraud, the bytes a dead letter)
    # and their offsets committed, these series have samples, not only a declared family.
    must_sample = {
        "fraudapp_verdicts_total",
        "fraudapp_fraud_types_total",
        "fraudapp_decision_latency_seconds_bucket",
        "fraudapp_dead_letters_total",
        "faust_topic_partition_end_offset",
        "faust_topic_partition_offset_commited",
    }
    last: dict[str, str] = {"text": ""}

    def metrics_with_samples() -> str | None:
        last["text"] = _metrics(worker.url)
        return last["text"] if must_sample <= sampled_names(last["text"]) else None

    try:
        text = wait_for(metrics_with_samples, 60, "the series to have samples", interval=0.5)
    except AssertionError:
        missing = sorted(must_sample - sampled_names(last["text"]))
        raise AssertionError(f"{worker.url}/metrics has no samples of {missing} 60 s after the clicks") from None
    series = exposed_series(text)
    declared = declared_labels()

    queries = [("dashboard: " + t, e) for t, e in dashboard_exprs()] + [("rule: " + a, e) for a, e in rule_exprs()]
    problems = []
    for where, expr in queries:
        names = promql_metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric name found in {expr!r}")
        for name in sorted(names - PROMETHEUS_SERIES):
            if name not in series:
                problems.append(f"{where}: {name} is not exposed by a running worker")
        # labels a query groups by must exist on one of the series it reads
        worker_names = names - PROMETHEUS_SERIES
        if worker_names:
            known = SCRAPE_LABELS.union(*(series.get(n) or declared.get(n, set()) for n in worker_names))
            for label in sorted(promql_grouping_labels(expr) - known):
                problems.append(f"{where}: groups by {label!r}, which {sorted(worker_names)} do not carry")
    assert not problems, "\n".join(problems)


def _adapted_prometheus_config(tmp: Path, targets: dict[str, str], self_port: int) -> Path:
    """docker/prometheus.yml with the compose host names replaced by loopback addresses."""
    text = PROM_CONFIG.read_text()
    for compose_target, local in targets.items():
        assert compose_target in text, f"{compose_target} is not a scrape target of {PROM_CONFIG.name}"
        text = text.replace(compose_target, local)
    text = text.replace("localhost:9090", f"127.0.0.1:{self_port}")
    text = text.replace("/etc/prometheus/prometheus-alerts.yml", str(PROM_RULES))
    path = tmp / "prometheus.yml"
    path.write_text(text)
    return path


@pytest.fixture
def prometheus_runner(tmp_path: Path) -> Iterator[Any]:
    binary = _prometheus_bin("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(config: Path, port: int) -> subprocess.Popen[bytes]:
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def _prom_api(port: int, path: str, **params: str) -> dict[str, Any]:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    status, body = _get(f"http://127.0.0.1:{port}/api/v1/{path}{query}")
    data = json.loads(body)
    assert status == 200 and data.get("status") == "success", f"/api/v1/{path}: {status} {body[:300]!r}"
    return data["data"]


@pytest.mark.integration
def test_prometheus_with_the_compose_scrape_config_scrapes_two_running_workers(
    fraud_cluster: Cluster, prometheus_runner: Any, tmp_path: Path
) -> None:
    workers = [fraud_cluster.start_worker(name) for name in WORKERS]
    port = _free_port()
    targets = {f"{name}:6066": f"127.0.0.1:{w.port}" for name, w in zip(WORKERS, workers, strict=True)}
    config = _adapted_prometheus_config(tmp_path, targets, port)
    proc = prometheus_runner(config, port)
    log = tmp_path / "prometheus.log"

    def fraudapp_targets_up() -> list[dict[str, Any]] | None:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            active = _prom_api(port, "targets")["activeTargets"]
        except (OSError, ValueError, AssertionError):
            return None
        mine = [t for t in active if t["labels"].get("job") == "fraudapp"]
        return mine if len(mine) == 2 and all(t["health"] == "up" for t in mine) else None

    up = wait_for(fraudapp_targets_up, 60, "both fraudapp targets to be up in Prometheus", interval=0.5)
    assert {t["labels"]["instance"] for t in up} == set(targets.values())
    assert all(t["scrapeUrl"].endswith("/metrics") for t in up)

    # The alert rules loaded and evaluate without errors against real worker series.
    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = _prom_api(port, "rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = wait_for(rules_evaluated, 45, "the alert rules to be evaluated once", interval=1)
    assert len(rules) == len(rule_exprs())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

    # Prometheus holds series from both workers under the names the dashboard uses.
    result = _prom_api(port, "query", query='count by (instance) (fraudapp_blacklist_entries{job="fraudapp"})')
    assert {r["metric"]["instance"] for r in result["result"]} == set(targets.values())
    # and it accepts every dashboard query
    for _title, expr in dashboard_exprs():
        _prom_api(port, "query", query=expr)
