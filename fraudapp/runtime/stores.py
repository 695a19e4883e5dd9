"""Faust's RocksDB table store read directly: the one place that knows its internals
(`faust.stores.rocksdb.Store`: one rocksdict database per partition in `_dbs`, opened by
`_db_for_partition`, with Faust's own persisted-offset key among the table's keys).

Who reads through here: `batching.TableCache` (a batch's reads and writes),
`fraudapp.expiry.PartitionSweeper` (the expiry walk), `metrics` (RocksDB memory gauges).
Checked against the releases in `fraudapp/runtime/versions.py`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust

# the key under which Faust keeps a partition's persisted changelog offset, among the table's keys
OFFSET_KEY = b"__faust\x00offset__"


def partition_db(table: faust.Table, partition: int) -> Any | None:
    """The rocksdict database of one partition of `table`, opening it if needed; None on
    other stores."""
    store = table.data
    open_db = getattr(store, "_db_for_partition", None)
    return open_db(partition) if open_db is not None and getattr(store, "use_rocksdict", False) else None


def open_dbs(table: Any) -> dict[int, Any] | None:
    """The table's databases open on this worker, by partition; None when not on RocksDB."""
    dbs = getattr(table.data, "_dbs", None)
    return None if dbs is None else dict(dbs)


def offset_key(table: Any) -> bytes:
    return getattr(table.data, "offset_key", OFFSET_KEY)


def stored_items(table: Any, db: Any) -> Iterator[tuple[bytes, bytes]]:
    """A partition database's (key, value) pairs, Faust's offset key left out."""
    skip = offset_key(table)
    for key, value in db.items():
        if key != skip:
            yield key, value
