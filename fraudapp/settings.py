"""One frozen Settings object built from FRAUDAPP_* environment variables.

Every field's default is documented in the README's settings table; the
detection defaults are those of ../shared/CONTRACT.md §4-§5.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

PREFIX = "FRAUDAPP_"
DEFAULT_TABLEDIR = Path(__file__).resolve().parent.parent / "tables"


class SettingsError(ValueError):
    """A FRAUDAPP_* variable that cannot be parsed."""


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Settings:
    # Kafka and Faust
    app_id: str = _doc("Faust app id: consumer group and prefix of internal topics", default="fraudapp")
    broker: str = _doc("Kafka bootstrap URL(s), `kafka://host:port[;kafka://...]`", default="kafka://127.0.0.1:9092")
    partitions: int = _doc("partitions of the topics fraudapp creates", default=4)
    replication_factor: int = _doc("replication of the topics fraudapp creates", default=1)
    standby_replicas: int = _doc("Faust standby replicas per table partition", default=0)
    processing_guarantee: str = _doc("`exactly_once` or `at_least_once`", default="exactly_once")
    datadir: str = _doc("Faust data directory (offsets, worker state); default `/tmp/fraudapp-<app_id>-<web_port>`", default="")
    tabledir: str = _doc("RocksDB table files; default `<repo>/tables/<app_id>-<web_port>` (per worker, so that workers on one host never share a DB)", default="")
    store: str = _doc("table store URL: `rocksdb://` or `memory://`", default="rocksdb://")
    rocksdb_write_buffer_mb: float = _doc(
        "RocksDB memtable size per table partition, MiB (two at most: one filling, one flushing). Faust's default, 64 MiB x 3, let every table partition grow by up to 192 MiB",
        default=4.0,
    )
    rocksdb_block_cache_mb: float = _doc(
        "RocksDB block cache per table partition, MiB (Faust's default: 2 GiB each)", default=8.0
    )
    commit_interval: float = _doc(
        "seconds between offset commits / transactions (under exactly_once each hop between stages waits for one: Kafka Streams' exactly-once default)",
        default=0.1,
    )
    commit_stall_seconds: float = _doc(
        "a partition with input waiting that has not committed for this long is logged as an ERROR (Faust's commit livelock check)",
        default=300.0,
    )
    group_instance_id: str = _doc(
        "static consumer-group membership (KIP-345): a name unique to this worker and stable across its restarts "
        "(a StatefulSet pod name, a host name). A restarted worker then takes its partitions back at once instead "
        "of waiting for the session timeout and a rebalance; unset: dynamic membership",
        default="",
    )
    session_timeout: float = _doc(
        "seconds without a heartbeat before the group gives a worker's partitions to the others "
        "(a crashed worker's partitions wait this long unless it comes back under the same group instance id)",
        default=60.0,
    )
    producer_linger_ms: int = _doc("producer linger, ms", default=2)
    batch_linger_ms: float = _doc(
        "while events keep coming, how long a stage waits for more to fill a batch, ms (an idle stage never waits). "
        "Small batches cost CPU per click: at 5 ms one worker fell behind at 1,200 clicks/s, at 20 ms it kept up",
        default=20.0,
    )
    fetch_max_wait_ms: int = _doc(
        "how long the broker may hold a fetch that finds no records, ms (Faust's 1,500 stalled the stages, "
        "fraudapp/runtime/consumer.py, fix 5)",
        default=100,
    )
    log_level: str = _doc("root log level", default="WARNING")
    eos_trace: str = _doc(
        "diagnostics: a file each worker appends its exactly_once steps to (sends, commits, batches, skips); "
        "empty: off", default="",
    )  # fmt: skip
    # Kafka security (passed through to Faust / aiokafka)
    security_protocol: str = _doc("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", default="PLAINTEXT")
    sasl_mechanism: str = _doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", default="")
    sasl_username: str = _doc("SASL user name", default="")
    sasl_password: str = _doc("SASL password (never logged)", default="", repr=False)
    ssl_cafile: str = _doc("CA bundle for SSL / SASL_SSL", default="")
    # Topic names
    topic_clicks: str = _doc("input clicks topic", default="clicks")
    topic_verdicts: str = _doc("verdicts topic", default="verdicts")
    topic_alerts: str = _doc("alerts topic", default="fraud-alerts")
    topic_blacklist: str = _doc("blacklist updates topic", default="blacklist-updates")
    topic_dlq: str = _doc("dead-letter topic", default="clicks-dlq")
    topic_transactions: str = _doc("transactions input topic", default="transactions")
    topic_transaction_verdicts: str = _doc("transaction verdicts topic", default="transaction-verdicts")
    topic_transactions_dlq: str = _doc("dead-letter topic of transactions", default="transactions-dlq")
    topic_rules: str = _doc("rule sets topic, compacted (created with 1 partition)", default="rules")
    topic_rules_shadow: str = _doc("a shadow run's comparisons: one record per judged batch (created with 1 partition)", default="rules-shadow")
    topic_rules_audit: str = _doc("every rule-set change, accepted or refused, with who and when (1 partition, kept forever)", default="rules-audit")
    rules_history: int = _doc("live rule-set versions kept for `fraudapp rules rollback` (and to judge clicks in flight under their version after a restart)", default=20)
    # Detection (contract §4)
    click_spam_threshold: int = _doc("T: earlier clicks of a device in the window that make a click spam", default=2)
    click_spam_window_seconds: float = _doc("W of click_spam, seconds", default=10.0)
    session_url_threshold: int = _doc("N: the N-th click on one URL in one session is a repeat", default=3)
    session_url_window_seconds: float = _doc("W of session_url_repeat, seconds", default=10.0)
    dedup_seconds: float = _doc("horizon of duplicate_click, seconds", default=86400.0)
    lateness_seconds: float = _doc("how late (behind the newest event of its key) an event may be and still be counted exactly", default=60.0)
    score_clean_above: float = _doc("soft score above this is clean", default=70.0)
    score_suspicious_above: float = _doc("soft score above this (and not clean) is suspicious", default=40.0)
    score_no_script: bool = _doc("fingerprint layer: a desktop browser's click with neither `fingerprint` nor `mouse` loses 30 more points (no script ran: a scripted client). Turn off when your click tracker sends neither", default=True)
    # Reputation and farms (issue 19; score.py, rules/device_farm.py, state/reputation.py)
    reputation: bool = _doc("count clicks per address, network (/24, /64) and fingerprint in the reputation stage, for the network layer of the score and device_farm; off: neither", default=True)
    reputation_windows: str = _doc("the horizons of reputation counts, seconds, comma-separated, shortest first: device_farm and the network layer read the first", default="600,3600")
    reputation_max_devices: int = _doc("devices an entity remembers (the least recently seen go first): its device counts saturate there", default=1000)
    farm_fingerprint_devices: int = _doc("device_farm: this many distinct devices with one fingerprint in the first reputation window", default=5)
    farm_address_devices: int = _doc("device_farm: this many distinct devices on one address in the first reputation window, with the click's publisher the one most of them click for", default=8)
    farm_network_devices: int = _doc("device_farm: as farm_address_devices, for one network (/24, /64)", default=20)
    network_concentration_devices: int = _doc("network layer: devices on the click's address from which one publisher's share counts against it", default=3)
    network_concentration_share: float = _doc("network layer: the share of those devices clicking for the click's publisher from which it counts (-60 x share)", default=0.5)
    network_one_agent_devices: int = _doc("network layer: devices on the click's address, all with one User-Agent, that count against it (-30)", default=10)
    farm_publisher_share: float = _doc("device_farm: the share of an address's (network's) devices that must click for one publisher", default=0.9)
    datacenter_ranges_file: str = _doc("CIDR list (one per line) of hosting/datacenter ranges for the IP score layer; default `<repo>/tables/datacenter_ranges.txt`; `none` disables", default="")
    max_click_bytes: int = _doc("largest accepted click, bytes", default=65536)
    # Transactions (contract §4b)
    taint_hops: int = _doc("tainted_funds: a wallet that received from a wallet tainted within this many hops of a blacklisted one is tainted (1: two hops from a scam wallet)", default=1)
    taint_seconds: float = _doc("tainted_funds: how long, by event time, a wallet stays tainted after it received tainted funds", default=604800.0)
    wallet_velocity_threshold: int = _doc("wallet_velocity: earlier outgoing transfers of the sender in the window that make a transfer too fast", default=5)
    wallet_velocity_seconds: float = _doc("wallet_velocity window, seconds", default=60.0)
    fan_out_threshold: int = _doc("fan_out: distinct recipients of the sender in the window, this transfer's included, that make a fan-out", default=10)
    fan_out_seconds: float = _doc("fan_out window, seconds", default=600.0)
    large_amount_factor: float = _doc("large_amount: an amount above this many times the median of the sender's last amounts of the asset", default=20.0)
    large_amount_history: int = _doc("large_amount: how many of the sender's last amounts of an asset the median is taken over", default=50)
    large_amount_min_known: int = _doc("large_amount: amounts of the asset the sender must have sent before the median counts", default=5)
    large_amount_limits: str = _doc("large_amount: absolute limits per asset, `ASSET=amount,...` (e.g. `ETH=100,USDT=1000000`); empty: none", default="")
    wallet_alert_window_seconds: float = _doc("tumbling window of a wallet's flagged transfers, seconds", default=60.0)
    wallet_alert_flagged: int = _doc("a wallet alerts once its flagged transfers in a window exceed this many", default=2)
    wallet_idle_seconds: float = _doc("a wallet's transfer history (amounts, recipients) is dropped this long after its newest transfer, by event time", default=2592000.0)
    max_transaction_bytes: int = _doc("largest accepted transaction, bytes", default=65536)
    # Alerts (contract §5)
    alert_window_seconds: float = _doc("tumbling alert window, seconds", default=60.0)
    alert_min_clicks: int = _doc("clicks a window needs before it can alert", default=20)
    alert_fraud_ratio: float = _doc("fraud share a window must exceed to alert", default=0.30)
    alert_grace_seconds: float = _doc("event-time grace before an alert window closes", default=5.0)
    # Web (contract §7)
    web_port: int = _doc("HTTP port of the worker", default=6066)
    web_bind: str = _doc("HTTP bind address", default="127.0.0.1")
    web_host: str = _doc("host name other workers use to reach this one (forwarded /devices requests); default: the bind address, or the machine's host name when binding all interfaces", default="")
    admin_token: str = _doc("bearer token of the admin routes; unset disables them", default="", repr=False)
    ingest_token: str = _doc("bearer token of POST /clicks; unset disables it", default="", repr=False)
    max_body_bytes: int = _doc("largest accepted HTTP request body", default=1048576)
    web_tables_enabled: bool = _doc("expose Faust's own /table/... pages", default=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def rocksdb_options(self) -> dict[str, Any]:
        """Options of each table's RocksDB store (a fresh dict: Faust pops keys from it)."""
        mib = 1024 * 1024
        return {
            "write_buffer_size": int(self.rocksdb_write_buffer_mb * mib),
            "max_write_buffer_number": 2,
            "block_cache_size": int(self.rocksdb_block_cache_mb * mib),
        }

    @cached_property
    def large_amount_limit_of(self) -> dict[str, float]:
        """`large_amount_limits` parsed once: asset -> absolute limit (the transaction stage
        reads it at start, so a malformed value stops the worker there)."""
        return _limits(self.large_amount_limits)

    @cached_property
    def reputation_horizons(self) -> tuple[float, ...]:
        """`reputation_windows` parsed once, shortest first."""
        try:
            horizons = tuple(sorted(float(part) for part in self.reputation_windows.split(",") if part.strip()))
        except ValueError:
            horizons = ()
        if not horizons or horizons[0] <= 0:
            raise SettingsError(f"FRAUDAPP_REPUTATION_WINDOWS={self.reputation_windows!r} is not a list of seconds > 0")
        return horizons

    @property
    def batch_linger(self) -> float:
        """`batch_linger_ms` in seconds, as the stages take it."""
        return self.batch_linger_ms / 1000

    @property
    def data_dir(self) -> str:
        return self.datadir or f"/tmp/fraudapp-{self.app_id}-{self.web_port}"

    @property
    def bootstrap_servers(self) -> str:
        """Faust's `kafka://h1:9092;kafka://h2:9092` as aiokafka's `h1:9092,h2:9092`."""
        return bootstrap_of(self.broker)

    def kafka_client_options(self) -> dict[str, Any]:
        """Connection options for fraudapp's own aiokafka clients (CLI, web taps)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            import ssl

            options["security_protocol"] = self.security_protocol
            if self.security_protocol in ("SSL", "SASL_SSL"):
                options["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile or None)
            if self.security_protocol.startswith("SASL"):
                options["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
                options["sasl_plain_username"] = self.sasl_username
                options["sasl_plain_password"] = self.sasl_password
        return options

    @property
    def datacenter_ranges_path(self) -> Path | None:
        if self.datacenter_ranges_file.lower() == "none":
            return None
        if self.datacenter_ranges_file:
            return Path(self.datacenter_ranges_file)
        bundled = DEFAULT_TABLEDIR / "datacenter_ranges.txt"
        return bundled if bundled.exists() else None

    @property
    def table_dir(self) -> str:
        if self.tabledir:
            return self.tabledir
        base = DEFAULT_TABLEDIR if (DEFAULT_TABLEDIR / "README.md").exists() else Path.cwd() / "tables"
        return str(base / f"{self.app_id}-{self.web_port}")


def bootstrap_of(broker: str) -> str:
    """'kafka://h1:9092;kafka://h2:9092' (Faust style) or 'h1:9092,h2:9092' -> 'h1:9092,h2:9092'."""
    hosts = []
    for part in broker.replace(",", ";").split(";"):
        part = part.strip()
        if part:
            hosts.append(part.split("://", 1)[-1].rstrip("/"))
    return ",".join(hosts)


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "str")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def documented() -> list[tuple[str, Any, str]]:
    """(variable, default, meaning) for every setting: the README table is made from it."""
    rows = []
    for f in fields(Settings):
        default = f.default
        rows.append((PREFIX + f.name.upper(), default, f.metadata["doc"]))
    return rows


def _limits(text: str) -> dict[str, float]:
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        asset, sep, amount = part.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not asset.strip() or not value >= 0:
            raise SettingsError(f"FRAUDAPP_LARGE_AMOUNT_LIMITS: {part!r} is not ASSET=amount (an amount >= 0)")
        limits[asset.strip()] = value
    return limits
