"""fraudapp's own Prometheus series (Faust's sensors add theirs on the same registry)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fraudapp.runtime.stores import open_dbs

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

verdicts = Counter("fraudapp_verdicts", "Verdicts written, by class", ["verdict"], registry=REGISTRY)
fraud_types = Counter("fraudapp_fraud_types", "Fraud verdicts by fraud type", ["fraud_type"], registry=REGISTRY)
ivt = Counter("fraudapp_ivt", "Fraud verdicts by class of invalid traffic (MRC: givt, sivt)", ["ivt"], registry=REGISTRY)
rule_hits = Counter("fraudapp_rule_hits", "Rule hits (a click can hit several)", ["rule"], registry=REGISTRY)
dead_letters = Counter("fraudapp_dead_letters", "Rejected inputs sent to the dead-letter topic", ["reason"], registry=REGISTRY)
transaction_verdicts = Counter("fraudapp_transaction_verdicts", "Transaction verdicts written, by class", ["verdict"],
                               registry=REGISTRY)
transaction_fraud_types = Counter("fraudapp_transaction_fraud_types", "Fraud transaction verdicts by fraud type",
                                  ["fraud_type"], registry=REGISTRY)
alerts = Counter("fraudapp_alerts", "Alerts raised", ["scope"], registry=REGISTRY)
decision_latency = Histogram(
    "fraudapp_decision_latency_seconds",
    "Event time of the click to its verdict",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
processing_latency = Histogram(
    "fraudapp_processing_latency_seconds",
    "First seen by the detector to verdict (processing time across stages)",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
blacklist_entries = Gauge("fraudapp_blacklist_entries", "Active blacklist entries on this worker", registry=REGISTRY)
reputation_entities = Gauge("fraudapp_reputation_entities",
                            "Entities (addresses, networks, fingerprints seen with two devices or more) in this "
                            "worker's reputation table", registry=REGISTRY)
rules_version = Gauge("fraudapp_rules_version", "Version of the rule set this worker applies (0: the environment's)",
                      registry=REGISTRY)
shadow_version = Gauge("fraudapp_shadow_version", "Version of the candidate rule set in shadow on this worker (0: none)",
                       registry=REGISTRY)
shadow_clicks = Counter("fraudapp_shadow_clicks", "Clicks this worker judged under a candidate rule set too",
                        ["version"], registry=REGISTRY)
shadow_flips = Counter(
    "fraudapp_shadow_flips",
    "Clicks whose verdict the candidate would change, per fraud type gained or lost and per class change "
    "(fraud_type '' for a class change)",
    ["version", "fraud_type", "direction"], registry=REGISTRY,
)
window_state_keys = Gauge(
    "fraudapp_window_state_keys", "Keys held in window state on this worker", ["table"], registry=REGISTRY
)
rocksdb_memory = Gauge(
    "fraudapp_rocksdb_memory_bytes",
    "RocksDB memory of a table on this worker, all its partitions: memtables, block cache, index and filter readers",
    ["table", "kind"],
    registry=REGISTRY,
)
ROCKSDB_MEMORY = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}
tap_records = Counter(
    "fraudapp_tap_records", "Records read by this worker's web tap (verdicts and alerts of all workers)",
    ["topic"], registry=REGISTRY,
)
http_published = Counter(
    "fraudapp_http_published", "Records published by the HTTP API", ["route"], registry=REGISTRY
)
http_rejected = Counter(
    "fraudapp_http_rejected", "Requests or items refused by the HTTP API, by reason", ["route", "reason"],
    registry=REGISTRY,
)


def estimate_keys(table: Any) -> int:
    """Keys this worker holds in `table` (actives and standbys).

    RocksDB: the DB's own estimate (O(1); counting would scan every key on each scrape).
    Memory store: exact. Windowed tables count one key per (key, window).
    """
    total = rocksdb_property(table, "rocksdb.estimate-num-keys")
    if total is not None:
        return total
    store = table.data
    inner = getattr(store, "data", store)
    try:
        return len(inner)
    except TypeError:
        return 0


def rocksdb_property(table: Any, prop: str) -> int | None:
    """An integer RocksDB property summed over the table's open partitions (None: not RocksDB)."""
    dbs = open_dbs(table)
    if dbs is None:
        return None
    return sum(int(db.property_int_value(prop) or 0) for db in dbs.values())


def rocksdb_memory_of(table: Any) -> dict[str, int]:
    """Bytes per ROCKSDB_MEMORY kind over the table's open RocksDB partitions ({} for the memory store)."""
    sizes = {kind: rocksdb_property(table, prop) for kind, prop in ROCKSDB_MEMORY.items()}
    return {kind: size for kind, size in sizes.items() if size is not None}


def update_state_gauges(blacklist_size: int, tables: Iterable[Any], rules: int = 0, shadow: int = 0,
                        reputation_size: int = 0) -> None:  # fmt: skip
    """Set the gauges that are levels rather than events (called by a periodic timer)."""
    blacklist_entries.set(blacklist_size)
    reputation_entities.set(reputation_size)
    rules_version.set(rules)
    shadow_version.set(shadow)
    for table in tables:
        window_state_keys.labels(table.name).set(estimate_keys(table))
        for kind, size in rocksdb_memory_of(table).items():
            rocksdb_memory.labels(table.name, kind).set(size)


def count_shadow_batch(record: dict[str, Any]) -> None:
    """One rules-shadow record (shadow.ShadowBatch.record) into the shadow counters."""
    version = str(record["shadow_version"])
    shadow_clicks.labels(version).inc(record["clicks"])
    for fraud_type, counts in record["by"]["fraud_types"].items():
        for direction, n in counts.items():
            if n:
                shadow_flips.labels(version, fraud_type, direction).inc(n)
    for change, n in record["transitions"].items():
        shadow_flips.labels(version, "", change).inc(n)
