"""Run a real Apache Kafka broker (KRaft mode) locally, assembled from Maven Central jars.

There is no Docker on the machines this project targets, so tests, the demo and users get
a genuine broker this way: ``mvn dependency:copy-dependencies`` fetches ``kafka_2.13`` and
its runtime classpath once into a cache, and brokers run as plain ``java kafka.Kafka``
processes in their own session, so they outlive the command that started them.

Layout of a data dir (one per cluster)::

    <data_dir>/cluster.json          ports, cluster id, version: lets stop/status/restart
                                     find everything again from another process
    <data_dir>/node-<id>/server.properties, log4j.properties
    <data_dir>/node-<id>/data/        Kafka log.dirs
    <data_dir>/node-<id>/server.log   broker log (log4j)
    <data_dir>/node-<id>/stdout.log   JVM stdout/stderr (crashes, classpath errors)
    <data_dir>/node-<id>/kafka.pid
    <data_dir>/tls/                  CA and broker certificate (SASL_SSL, SSL; see localtls.py)
    <data_dir>/client.env            FRAUDAPP_* client settings, password included (secured
                                     clusters only; mode 0600)

The client listener is PLAINTEXT by default; ``security=Security("SASL_SSL", ...)`` makes it
SASL_PLAINTEXT, SASL_SSL or SSL instead (the controller listener stays PLAINTEXT on
loopback). A SASL listener accepts PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for the same
users: the client's user and the brokers' own (inter-broker traffic and the readiness
probe). SCRAM credentials are written at format time (``kafka-storage format --add-scram``).

Only the standard library is used, plus aiokafka (imported lazily) for the readiness check,
so ``fraudapp kafka status`` does not pay for Faust or aiokafka.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from fraudapp.tooling import localtls

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_VERSION",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "Cluster",
    "KafkaError",
    "Node",
    "NodeStatus",
    "Security",
    "default_data_dir",
    "ensure_jars",
    "free_port",
    "kafka_version",
    "load",
    "start",
    "status",
    "stop",
]

log = logging.getLogger(__name__)

DEFAULT_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
DEFAULT_PORT = 9092
DEFAULT_HEAP = "512m"
READY_TOPIC = "__fraudapp_ready"
CLUSTER_FILE = "cluster.json"
# Bumped when the marker's meaning changes, so stale caches get re-resolved.
_MARKER_FORMAT = 2
SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_USER = "fraudapp-broker"
CLIENT_ENV_FILE = "client.env"
# Characters that would break the JAAS line or the --add-scram argument they are written into.
_UNSAFE_SECRET = set('"\\,;[]= \t\r\n')


class KafkaError(RuntimeError):
    """Anything that prevents a local broker from starting or stopping.

    The first line of the message is meant to be shown to a user as is; a log tail may follow.
    """


# --------------------------------------------------------------------------- paths / config


def kafka_version() -> str:
    return os.environ.get("FRAUDAPP_KAFKA_VERSION", DEFAULT_VERSION)


def _cache_root() -> Path:
    return Path(os.path.expanduser("~/.cache/fraudapp"))


def cache_dir(version: str | None = None) -> Path:
    """Where the jars of one Kafka version live.

    ``FRAUDAPP_KAFKA_CACHE`` replaces ``~/.cache/fraudapp`` as the parent of the per-version
    ``kafka-<version>`` directories (per version so that switching versions never mixes jars).
    """
    version = version or kafka_version()
    root = os.environ.get("FRAUDAPP_KAFKA_CACHE")
    base = Path(root).expanduser() if root else _cache_root()
    return base / f"kafka-{version}"


def default_data_dir(port: int) -> Path:
    return _cache_root() / "run" / str(port)


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 3


def _dependencies(version: str) -> list[tuple[str, str, str]]:
    """Maven coordinates of the broker plus an SLF4J binding (without one it logs nothing)."""
    deps = [("org.apache.kafka", f"kafka_{SCALA_VERSION}", version)]
    if _major(version) >= 4:
        # Kafka 4 logs through log4j2. 4.0 still uses the SLF4J 1.7 API (needs the 1.x
        # binding), later releases may move to SLF4J 2 (needs the 2.x provider). Both are
        # fetched; _prune_slf4j_bindings keeps the one matching the resolved slf4j-api.
        deps += [
            ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
            ("org.apache.logging.log4j", "log4j-slf4j2-impl", "2.24.3"),
            ("org.apache.logging.log4j", "log4j-core", "2.24.3"),
        ]
    else:
        deps.append(("org.slf4j", "slf4j-reload4j", "1.7.36"))
    return deps


def _pom(version: str) -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in _dependencies(version)
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fraudapp</groupId><artifactId>kafka-runtime</artifactId><version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (it may hold passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


# --------------------------------------------------------------------------- jars


def _marker_ok(cache: Path, version: str) -> bool:
    try:
        marker = json.loads((cache / ".complete").read_text())
    except (OSError, ValueError):
        return False
    if marker.get("format") != _MARKER_FORMAT or marker.get("version") != version:
        return False
    # Changing the dependency list (e.g. the logging binding) must trigger a new resolve.
    if marker.get("deps") != [":".join(d) for d in _dependencies(version)]:
        return False
    jars = marker.get("jars") or []
    # A half-deleted lib dir must not pass for a complete one.
    return bool(jars) and all((cache / "lib" / j).is_file() for j in jars)


def ensure_jars(version: str | None = None, cache: Path | None = None) -> Path:
    """Return the lib dir holding Kafka's runtime classpath, resolving it with Maven once.

    A marker file written after a successful resolve makes later calls offline and instant.
    A file lock serialises concurrent first resolves (parallel test runs, demo + tests).
    """
    version = version or kafka_version()
    cache = Path(cache) if cache is not None else cache_dir(version)
    if _marker_ok(cache, version):
        return cache / "lib"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError(
            f"mvn not found on PATH: needed once to fetch the Kafka {version} jars into "
            f"{cache / 'lib'} (install Maven, or copy the jars there)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_ok(cache, version):  # another process finished while we waited
            return cache / "lib"
        (cache / "pom.xml").write_text(_pom(version))
        # Resolve into a scratch dir and swap it in, so an interrupted download never
        # leaves a lib dir that looks usable.
        tmp = cache / "lib.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(cache / "pom.xml"),
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        log.info("resolving Kafka %s jars with Maven into %s", version, cache)
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise KafkaError(f"mvn did not finish resolving Kafka {version} in 900 s") from exc
        main_jar = tmp / f"kafka_{SCALA_VERSION}-{version}.jar"
        # Kept for post-mortems: the CLI only shows the first line of an error.
        (cache / "mvn.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not main_jar.is_file():
            out = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
            raise KafkaError(
                f"mvn failed to resolve org.apache.kafka:kafka_{SCALA_VERSION}:{version} "
                f"(exit {proc.returncode}, see {cache / 'mvn.log'})\n" + "\n".join(out)
            )
        _prune_slf4j_bindings(tmp)
        lib = cache / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        tmp.rename(lib)
        jars = sorted(p.name for p in lib.glob("*.jar"))
        marker = {
            "format": _MARKER_FORMAT,
            "version": version,
            "deps": [":".join(d) for d in _dependencies(version)],
            "jars": jars,
            "at": time.time(),
        }
        (cache / ".complete").write_text(json.dumps(marker, indent=1))
        return lib


def _prune_slf4j_bindings(lib: Path) -> None:
    """Keep only the log4j2 SLF4J binding that fits the slf4j-api Kafka brought along.

    The two bindings share class names, so with both on the classpath the JVM loads
    whichever comes first and may crash (NoClassDefFoundError) on the wrong API.
    """
    apis = [p.name for p in lib.glob("slf4j-api-*.jar")]
    if not apis:
        return
    wrong = "log4j-slf4j-impl-" if apis[0].startswith("slf4j-api-2.") else "log4j-slf4j2-impl-"
    for jar in lib.glob(f"{wrong}*.jar"):
        jar.unlink()


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaError("java not found on PATH (and JAVA_HOME unset): Kafka needs Java 11+")
    return java


# --------------------------------------------------------------------------- ports


def _port_in_use(port: int) -> bool:
    # SO_REUSEADDR like the JVM's server sockets: a port with only TIME_WAIT leftovers of a
    # previous broker is usable, one with a live listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def free_port(count: int = 1) -> int:
    """A free loopback port; with ``count`` > 1 the first of that many consecutive free ports.

    Racy by nature (someone may grab it before the broker binds), good enough for tests.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        if not any(_port_in_use(p) for p in range(base, base + count)):
            return base
    raise KafkaError(f"no block of {count} free consecutive ports found")


# --------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if Path("/proc/self").exists():
            return None
        # No procfs (macOS): ask ps.
        out = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-p", str(pid)],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.split() if out else None
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _is_kafka(args: Sequence[str] | None, config: Path | None = None) -> bool:
    if not args or "kafka.Kafka" not in args or "java" not in Path(args[0]).name:
        return False
    return config is None or str(config) in args


def _kafka_processes() -> dict[int, list[str]]:
    """All local ``java ... kafka.Kafka <config>`` processes by pid."""
    found: dict[int, list[str]] = {}
    proc = Path("/proc")
    if proc.exists():
        pids = [int(p.name) for p in proc.iterdir() if p.name.isdigit()]
    else:
        out = subprocess.run(["ps", "-axo", "pid="], check=False, capture_output=True, text=True).stdout
        pids = [int(x) for x in out.split()]
    for pid in pids:
        args = _cmdline(pid)
        if _is_kafka(args):
            assert args is not None
            found[pid] = args
    return found


# Children started by this process: polling through Popen reaps them, otherwise a dead
# broker would linger as a zombie and look alive to kill(pid, 0).
_children: dict[int, subprocess.Popen[bytes]] = {}
# How reaped children ended (negative: the signal that killed them), for error messages.
_exit_codes: dict[int, int] = {}


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _exit_codes[pid] = child.returncode
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # zombie of some other parent
            return False
    return True


def _wait_dead(pids: Sequence[int], timeout: float) -> list[int]:
    """Poll until all ``pids`` exit or ``timeout`` passes; return the survivors."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if _alive(p)]
    return left


def _terminate(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM (controlled shutdown), then SIGKILL whatever is still there after ``timeout``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    survivors = _wait_dead(pids, timeout)
    for pid in survivors:
        log.warning("broker pid %d ignored SIGTERM for %.0f s, killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if _wait_dead(survivors, 10):
        raise KafkaError(f"broker processes {survivors} survived SIGKILL")


# --------------------------------------------------------------------------- model


@dataclass
class Node:
    """One broker+controller process of a local cluster."""

    index: int  # 0-based position in Cluster.nodes
    node_id: int
    port: int
    controller_port: int
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of this node's running broker, checked against the command line (pid reuse)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid in _children:
            # Started by this process and not reaped yet, so the pid cannot have been reused.
            # Its command line is no proof: it reads empty while the java launcher re-execs
            # itself, and a probe that took that for a death killed healthy brokers.
            return pid if _alive(pid) else None
        if _alive(pid) and _is_kafka(_cmdline(pid), self.config):
            return pid
        return None

    def log_tail(self, lines: int = 20) -> str:
        # JVM stdout is usually empty; when it is not (crash, bad classpath) it matters most,
        # so it gets up to half the budget ahead of the log4j file's last lines.
        out = _tail(self.stdout_file, lines // 2)
        return "\n".join(out + _tail(self.log_file, lines - len(out)))


@dataclass(frozen=True)
class NodeStatus:
    pid: int
    port: int | None
    node_id: int | None
    data_dir: Path | None
    config: Path | None


@dataclass
class Security:
    """How clients reach a local cluster: the client listener's protocol and one SASL user.

    ``mechanism`` is the one written to ``client.env``; a SASL listener accepts every
    mechanism of SASL_MECHANISMS for the user. Passwords stay out of ``repr``.
    """

    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str = ""
    password: str = field(default="", repr=False)
    broker_password: str = field(default="", repr=False)

    @classmethod
    def create(
        cls, protocol: str, mechanism: str | None = None, username: str | None = None, password: str | None = None
    ) -> Security:
        """Validated settings; a missing user name or password is made up (see client.env)."""
        protocol = protocol.upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise KafkaError(f"security protocol {protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}")
        mechanism = (mechanism or ("SCRAM-SHA-256" if protocol == "SASL_SSL" else "PLAIN")).upper()
        if mechanism not in SASL_MECHANISMS:
            raise KafkaError(f"SASL mechanism {mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}")
        if not protocol.startswith("SASL"):
            return cls(protocol, mechanism)
        username = username or "fraudapp"
        password = password or secrets.token_urlsafe(18)
        if username == BROKER_USER:
            raise KafkaError(f"the user name {BROKER_USER!r} is reserved for the brokers themselves")
        for what, value in (("user name", username), ("password", password)):
            if _UNSAFE_SECRET.intersection(value) or not value.isprintable():
                # Never echo the value: it may be the password.
                raise KafkaError(
                    f"the SASL {what} may not contain quotes, backslashes, ',;[]=' or white space (local broker only)"
                )
        return cls(protocol, mechanism, username, password, secrets.token_urlsafe(18))

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def users(self) -> dict[str, str]:
        return {BROKER_USER: self.broker_password, self.username: self.password} if self.sasl else {}

    def to_doc(self) -> dict[str, str]:
        return {
            "protocol": self.protocol,
            "mechanism": self.mechanism,
            "username": self.username,
            "password": self.password,
            "broker_password": self.broker_password,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, str] | None) -> Security:
        return cls(**doc) if doc else cls()

    def redact(self, text: str) -> str:
        """``text`` with every password replaced by ``***`` (JVM output shown in errors)."""
        for secret in (self.password, self.broker_password):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class Cluster:
    """A local cluster: what start() returns and what stop()/status() find again on disk."""

    data_dir: Path
    nodes: list[Node]
    cluster_id: str
    version: str
    heap: str = DEFAULT_HEAP
    replication: int = 1
    security: Security = field(default_factory=Security)
    _lib: Path | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def url(self) -> str:
        # Faust splits broker URL lists on ';'.
        return "kafka://" + ";".join(n.bootstrap for n in self.nodes)

    @property
    def pids(self) -> list[int]:
        return [p for n in self.nodes if (p := n.pid) is not None]

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients trust (TLS listeners only)."""
        return self.data_dir / "tls" / "ca.pem" if self.security.tls else None

    def client_env(self) -> dict[str, str]:
        """FRAUDAPP_* settings for fraudapp's clients (workers, CLI) to reach this cluster."""
        sec = self.security
        env = {"FRAUDAPP_BROKER": self.url, "FRAUDAPP_SECURITY_PROTOCOL": sec.protocol}
        if sec.sasl:
            env.update(
                FRAUDAPP_SASL_MECHANISM=sec.mechanism,
                FRAUDAPP_SASL_USERNAME=sec.username,
                FRAUDAPP_SASL_PASSWORD=sec.password,
            )
        if self.ca_file is not None:
            env["FRAUDAPP_SSL_CAFILE"] = str(self.ca_file)
        return env

    def client_options(self, *, as_broker: bool = False) -> dict[str, Any]:
        """aiokafka connection options (bootstrap, security) for the client user, or with
        ``as_broker`` for the brokers' own user (the readiness probe)."""
        sec = self.security
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if sec.protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = sec.protocol
        if sec.tls:
            import ssl

            options["ssl_context"] = ssl.create_default_context(cafile=str(self.ca_file))
        if sec.sasl:
            options["sasl_mechanism"] = "PLAIN" if as_broker else sec.mechanism
            options["sasl_plain_username"] = BROKER_USER if as_broker else sec.username
            options["sasl_plain_password"] = sec.broker_password if as_broker else sec.password
        return options

    def running(self) -> bool:
        return bool(self.pids)

    # -- persistence: other processes (the CLI's stop, status) only have the data dir

    def _save(self) -> None:
        doc = {
            "version": self.version,
            "cluster_id": self.cluster_id,
            "heap": self.heap,
            "replication": self.replication,
            "security": self.security.to_doc(),
            "nodes": [
                {
                    "node_id": n.node_id,
                    "port": n.port,
                    "controller_port": n.controller_port,
                }
                for n in self.nodes
            ],
        }
        _write_private(self.data_dir / CLUSTER_FILE, json.dumps(doc, indent=1))
        if self.security.protocol != "PLAINTEXT":
            lines = "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.client_env().items())
            _write_private(self.data_dir / CLIENT_ENV_FILE, lines)

    # -- process control

    def _lib_dir(self) -> Path:
        if self._lib is None:
            self._lib = ensure_jars(self.version)
        return self._lib

    def _spawn(self, node: Node) -> None:
        java = _java()
        lib = self._lib_dir()
        cmd = [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            *_log_config_flags(self.version, node),
            "-cp", f"{lib}/*", "kafka.Kafka", str(node.config),
        ]  # fmt: skip
        with node.stdout_file.open("ab") as out:
            # New session: the broker must survive `fraudapp kafka start` exiting and not
            # receive the terminal's Ctrl-C meant for a test run or the demo.
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=node.dir, start_new_session=True,
            )  # fmt: skip
        _children[proc.pid] = proc
        node.pid_file.write_text(f"{proc.pid}\n")

    def _wait_ready(self, nodes: Sequence[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = {n.node_id for n in self.nodes}

        spawned = {n.node_id: n.pid for n in nodes}

        def died() -> Node | None:
            return next((n for n in nodes if n.pid is None), None)

        try:
            _run_async(_probe(self.client_options(as_broker=True), expected, deadline, died))
        except _ProbeError as exc:
            node = exc.node or nodes[0]
            tail = self.security.redact(node.log_tail())
            code = _exit_codes.get(spawned.get(node.node_id) or -1)
            how = "" if code is None else f", exit code {code}" + (" (killed by a signal)" if code < 0 else "")
            raise KafkaError(f"{exc} (node {node.node_id}{how}, log {node.log_file})\n" + tail) from None

    def start_node(self, i: int, timeout: float = 90) -> None:
        """(Re)start node ``i`` on its existing data, e.g. after kill_node in a failover test."""
        node = self.nodes[i]
        if node.pid is not None:
            return
        for port in (node.port, node.controller_port):
            if _port_in_use(port):
                raise KafkaError(f"port {port} is already in use (node {node.node_id})")
        self._spawn(node)
        try:
            self._wait_ready([node], timeout)
        except BaseException:
            self._kill_nodes([node])
            raise

    def kill_node(self, i: int, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
        """Send ``sig`` to node ``i``; for terminating signals wait (bounded) until it is gone.

        SIGSTOP/SIGCONT pass straight through, for tests that freeze a broker.
        """
        node = self.nodes[i]
        pid = node.pid
        if pid is None:
            return
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            if _wait_dead([pid], timeout):
                raise KafkaError(f"node {node.node_id} (pid {pid}) still alive {timeout} s after signal {sig}")
            node.pid_file.unlink(missing_ok=True)

    def _kill_nodes(self, nodes: Sequence[Node]) -> None:
        for n in nodes:
            if (pid := n.pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_dead([pid], 10)
            n.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 20) -> list[int]:
        """Stop all nodes (SIGTERM, SIGKILL after ``timeout``); return the pids stopped."""
        pids = self.pids
        # Also catch brokers whose pid file went missing: anything running on our configs.
        configs = {str(n.config) for n in self.nodes}
        pids += [p for p, args in _kafka_processes().items() if p not in pids and configs.intersection(args)]
        _terminate(pids, timeout)
        for n in self.nodes:
            n.pid_file.unlink(missing_ok=True)
        return pids

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- configs


def _log_config_flags(version: str, node: Node) -> list[str]:
    if _major(version) >= 4:
        path = node.dir / "log4j2.properties"
        path.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {node.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = info\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
        )
        return [f"-Dlog4j2.configurationFile={path}"]
    path = node.dir / "log4j.properties"
    path.write_text(
        "log4j.rootLogger=INFO, file\n"
        "log4j.appender.file=org.apache.log4j.FileAppender\n"
        f"log4j.appender.file.File={node.log_file}\n"
        "log4j.appender.file.Append=true\n"
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        # Per-request logging would drown everything else.
        "log4j.logger.kafka.request.logger=WARN\n"
    )
    return [f"-Dlog4j.configuration=file:{path}"]


def _server_properties(node: Node, cluster: Cluster) -> str:
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    rf = cluster.replication
    # With 3 replicas, acks=all must survive one broker down: min ISR 2.
    min_isr = 1 if rf == 1 else 2
    client = cluster.security.protocol  # the client listener is named after its protocol
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"{client}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"{client}://127.0.0.1:{node.port}",
        "listener.security.protocol.map": f"{client}:{client},CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "log.dirs": node.dir / "data",
        "num.partitions": 4,
        "auto.create.topics.enable": "true",
        "default.replication.factor": rf,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "min.insync.replicas": min_isr,
        # Consumer groups (Faust workers, tests) would otherwise wait 3 s on every join.
        "group.initial.rebalance.delay.ms": 0,
    }
    props.update(_security_properties(cluster))
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _security_properties(cluster: Cluster) -> dict[str, object]:
    """Listener settings for a SASL and/or TLS client listener (also used between brokers)."""
    sec = cluster.security
    listener = sec.protocol.lower()
    props: dict[str, object] = {}
    if sec.tls:
        tls = cluster.data_dir / "tls"
        props.update({
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": tls / "broker.pem",
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": tls / "ca.pem",
        })  # fmt: skip
    if sec.sasl:
        users = sec.users()
        # The brokers authenticate to each other with PLAIN as their own user, so nothing
        # depends on SCRAM credentials being readable from the metadata log yet.
        plain = " ".join(f'user_{name}="{pw}"' for name, pw in users.items())
        props.update({
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            f"listener.name.{listener}.plain.sasl.jaas.config":
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{BROKER_USER}" password="{sec.broker_password}" {plain};',
        })  # fmt: skip
        for mechanism in SASL_MECHANISMS[1:]:
            props[f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
    return props


def _scram_arguments(security: Security) -> list[str]:
    """``kafka-storage format`` arguments that create every user for both SCRAM mechanisms."""
    args: list[str] = []
    for mechanism in SASL_MECHANISMS[1:]:
        for name, password in security.users().items():
            args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
    return args


def _new_cluster_id() -> str:
    # What `kafka-storage random-uuid` prints, without paying for a JVM start. Like Kafka's
    # Uuid.randomUuid, skip ids starting with "-": StorageTool's argument parser would take
    # `-t -abc...` for an option (1 start in 64 would fail otherwise).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _looks_like_ours(path: Path) -> bool:
    return (path / CLUSTER_FILE).exists() or all(p.name.startswith("node-") for p in path.iterdir())


# --------------------------------------------------------------------------- readiness


class _ProbeError(Exception):
    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.node = node


def _run_async(coro: Coroutine[object, object, None]) -> None:
    """Run ``coro`` to completion on a fresh event loop in a daemon thread.

    A thread of its own because start() is also called from inside running event loops
    (async tests, the Faust demo), where asyncio.run would refuse. Daemon and joined in
    short slices so that Ctrl-C reaches the caller at once (which then kills the brokers,
    making the probe fail fast) instead of waiting out the readiness timeout.
    """
    outcome: list[BaseException | None] = []

    def runner() -> None:
        try:
            asyncio.run(coro)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed over to the calling thread
            outcome.append(exc)

    thread = threading.Thread(target=runner, name="fraudapp-kafka-probe", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if outcome and outcome[0] is not None:
        raise outcome[0]


@contextlib.contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    # aiokafka logs an ERROR per refused connection while the broker boots; that is expected.
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _probe(
    options: dict[str, Any],
    expected_ids: set[int],
    deadline: float,
    died: Callable[[], Node | None],
) -> None:
    """Wait until all nodes registered and a record can be produced (acks=all) and fetched."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    last = "no attempt"
    with _quiet_aiokafka():
        while True:
            if (dead := died()) is not None:
                raise _ProbeError("broker process exited during startup", dead)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _ProbeError(f"broker not ready in time ({last})")
            attempt = min(left, 10.0)
            producer = AIOKafkaProducer(acks="all", request_timeout_ms=int(attempt * 1000), **options)
            consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
            try:
                async with asyncio.timeout(attempt):
                    await producer.start()
                    brokers = {b.nodeId for b in producer.client.cluster.brokers()}
                    if not expected_ids <= brokers:
                        last = f"brokers registered: {sorted(brokers)}"
                        raise _Retry
                    meta = await producer.send_and_wait(READY_TOPIC, b"ready")
                    await consumer.start()
                    tp = TopicPartition(READY_TOPIC, meta.partition)
                    consumer.assign([tp])
                    consumer.seek(tp, meta.offset)
                    record = await consumer.getone()
                    if record.value == b"ready":
                        return
                    last = "read back a different record"
            except _Retry:
                pass
            except Exception as exc:  # noqa: BLE001 - any client error means "not yet"
                text = str(exc)
                name = type(exc).__name__
                last = text if text.startswith(name) else f"{name}: {text}".rstrip(": ")
            finally:
                for client in (consumer, producer):
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.stop(), 5)
            log.debug("broker not ready yet: %s", last)
            await asyncio.sleep(0.3)


class _Retry(Exception):
    pass


# --------------------------------------------------------------------------- public API


def load(data_dir: Path | str) -> Cluster:
    """The cluster recorded in ``data_dir`` (running or not)."""
    data_dir = Path(data_dir).expanduser().resolve()
    try:
        doc = json.loads((data_dir / CLUSTER_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise KafkaError(f"no fraudapp Kafka cluster recorded in {data_dir}") from exc
    nodes = [
        Node(
            i,
            n["node_id"],
            n["port"],
            n["controller_port"],
            data_dir / f"node-{n['node_id']}",
        )
        for i, n in enumerate(doc["nodes"])
    ]
    return Cluster(
        data_dir,
        nodes,
        doc["cluster_id"],
        doc["version"],
        doc.get("heap", DEFAULT_HEAP),
        doc.get("replication", 1),
        Security.from_doc(doc.get("security")),
    )


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path | str | None = None,
    nodes: int = 1,
    heap: str = DEFAULT_HEAP,
    *,
    controller_port: int | None = None,
    keep: bool = False,
    timeout: float = 90,
    version: str | None = None,
    security: Security | None = None,
) -> Cluster:
    """Start a local KRaft cluster and return once it accepts a produce and a fetch.

    Node ``i`` listens on ``port + i`` and runs its controller on ``controller_port + i``
    (default ``port + nodes``, i.e. the next free block after the broker ports).
    ``keep=True`` restarts on the existing data (the cluster id, node count and ports
    recorded in ``data_dir`` are reused, ``port``/``nodes``/``security`` are ignored);
    otherwise a previous data dir is wiped (only if it looks like one of ours).
    ``security`` secures the client listener (default PLAINTEXT); see ``Security``.
    """
    if nodes < 1:
        raise KafkaError("nodes must be >= 1")
    version = version or kafka_version()
    _java()  # fail before touching anything
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir(port)
    data_dir = data_dir.resolve()
    cport = controller_port if controller_port is not None else port + nodes

    if keep and (data_dir / CLUSTER_FILE).exists():
        cluster = load(data_dir)
        if cluster.version != version:
            raise KafkaError(f"{data_dir} holds Kafka {cluster.version} data, not {version}")
    else:
        cluster = Cluster(
            data_dir, [], _new_cluster_id(), version, heap, 3 if nodes >= 3 else 1, security or Security()
        )
        cluster.nodes = [Node(i, i + 1, port + i, cport + i, data_dir / f"node-{i + 1}") for i in range(nodes)]
    cluster.heap = heap

    if pids := cluster.pids:
        raise KafkaError(f"Kafka already running from {data_dir} (pids {pids}); stop it first")
    for n in cluster.nodes:
        for p in (n.port, n.controller_port):
            if _port_in_use(p):
                raise KafkaError(f"port {p} is already in use (needed by Kafka node {n.node_id})")

    cluster._lib = ensure_jars(version)

    if not keep and data_dir.exists():
        # Never rm -rf a directory someone pointed us at by mistake (--data-dir ~).
        if not _looks_like_ours(data_dir):
            raise KafkaError(f"refusing to wipe {data_dir}: not a fraudapp Kafka data dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if cluster.security.tls:
        try:
            localtls.make_certificates(data_dir / "tls")
        except localtls.TlsError as exc:
            raise KafkaError(str(exc)) from None
    for n in cluster.nodes:
        n.dir.mkdir(parents=True, exist_ok=True)
        # Holds the SASL passwords (JAAS) when the listener is secured.
        _write_private(n.config, _server_properties(n, cluster))
    cluster._save()

    _format_storage(cluster)
    try:
        for n in cluster.nodes:
            cluster._spawn(n)
        cluster._wait_ready(cluster.nodes, timeout)
    except BaseException:
        # Includes KeyboardInterrupt: never leave a half-started cluster behind.
        cluster._kill_nodes(cluster.nodes)
        raise
    return cluster


def _format_storage(cluster: Cluster) -> None:
    java, lib = _java(), cluster._lib_dir()
    todo = [n for n in cluster.nodes if not (n.dir / "data" / "meta.properties").exists()]
    # One JVM per node; run them side by side since each costs a JVM start.
    procs = [
        (n, subprocess.Popen(
            [java, "-Xmx256m", *_log_config_flags(cluster.version, n), "-cp", f"{lib}/*",
             "kafka.tools.StorageTool", "format", "-t", cluster.cluster_id, "-c", str(n.config),
             *_scram_arguments(cluster.security)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        ))
        for n in todo
    ]  # fmt: skip
    for n, p in procs:
        try:
            out, _ = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        if p.returncode != 0:
            tail = cluster.security.redact("\n".join(out.decode("utf-8", "replace").splitlines()[-20:]))
            raise KafkaError(f"kafka-storage format failed for node {n.node_id} (exit {p.returncode})\n{tail}")


def _find(target: Path | str | int) -> Cluster | None:
    if isinstance(target, int):
        default = default_data_dir(target)
        if (default / CLUSTER_FILE).exists():
            c = load(default)
            # A stale default dir must not hide a cluster serving this port from elsewhere.
            if any(n.port == target for n in c.nodes) and c.running():
                return c
        for st in status():
            if st.port == target:
                if st.data_dir is None or not (st.data_dir / CLUSTER_FILE).exists():
                    raise KafkaError(
                        f"the broker on port {target} (pid {st.pid}) was not started by fraudapp; not stopping it"
                    )
                return load(st.data_dir)
        return None
    path = Path(target).expanduser()
    return load(path) if (path / CLUSTER_FILE).exists() else None


def stop(target: Path | str | int = DEFAULT_PORT, timeout: float = 20) -> list[int]:
    """Stop the cluster in data dir ``target`` (or the one serving port ``target``).

    Returns the pids that were stopped (empty when nothing ran).
    """
    cluster = _find(target)
    return cluster.stop(timeout) if cluster is not None else []


def _read_props(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                props[k.strip()] = v.strip()
    return props


def status() -> list[NodeStatus]:
    """Every local ``kafka.Kafka`` process, including ones fraudapp did not start."""
    result = []
    for pid, args in sorted(_kafka_processes().items()):
        config = Path(args[-1]) if args[-1].endswith(".properties") else None
        port = node_id = data_dir = None
        if config is not None:
            props = _read_props(config)
            for listener in props.get("listeners", "").split(","):
                # The client listener: PLAINTEXT, or SASL_SSL etc. on a secured cluster.
                if "://" in listener and not listener.startswith("CONTROLLER://"):
                    with contextlib.suppress(ValueError):
                        port = int(listener.rsplit(":", 1)[1])
                    break
            with contextlib.suppress(ValueError):
                node_id = int(props.get("node.id", ""))
            # Our layout is <data_dir>/node-<id>/server.properties.
            parent = config.parent
            data_dir = parent.parent if (parent.parent / CLUSTER_FILE).exists() else parent
        result.append(NodeStatus(pid, port, node_id, data_dir, config))
    return result
