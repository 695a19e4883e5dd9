"""expiry.py: event-time sweeps find every expired key, restored ones included.

Faust's own window expiry only knows the windows written by this process and deletes
without a changelog tombstone (faust-streaming #385, #193); the sweeper reads what the
store holds and deletes through the table, so both defects are out of its way.
"""

from __future__ import annotations

from typing import Any

import pytest

from fraudapp.expiry import PartitionSweeper


class FakeTable:
    """Stands in for a faust Table on the memory store: `.data` and `del table[key]`."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = dict(data)
        self.deleted: list[Any] = []

    def __delitem__(self, key: Any) -> None:
        del self.data[key]
        self.deleted.append(key)


def last_ts_expiry(_key: Any, times: list[float]) -> float:
    return times[-1] + 10


def test_sweep_deletes_only_expired_keys() -> None:
    table = FakeTable({"old": [100.0], "edge": [190.0], "fresh": [195.0]})
    sweeper = PartitionSweeper(table, last_ts_expiry)  # type: ignore[arg-type]
    assert sweeper.sweep(0, watermark=200.5) == 2
    assert sorted(table.deleted) == ["edge", "old"]
    assert list(table.data) == ["fresh"]


def test_keys_restored_without_this_process_writing_them_expire() -> None:
    # Nothing was ever registered with the sweeper: it finds keys in the store itself.
    table = FakeTable({f"d{i}": [float(i)] for i in range(50)})
    sweeper = PartitionSweeper(table, last_ts_expiry)  # type: ignore[arg-type]
    assert sweeper.sweep(0, watermark=1_000.0) == 50
    assert table.data == {}


def test_budget_walks_the_partition_in_chunks_and_wraps_around() -> None:
    table = FakeTable({f"k{i:03d}": [0.0] for i in range(25)})
    sweeper = PartitionSweeper(table, last_ts_expiry, keys_per_sweep=10)  # type: ignore[arg-type]
    counts = [sweeper.sweep(0, watermark=100.0) for _ in range(4)]
    assert sum(counts) == 25 and max(counts) <= 10
    assert table.data == {}


def test_maybe_sweep_runs_at_most_once_per_period() -> None:
    now = [0.0]
    table = FakeTable({"a": [0.0]})
    sweeper = PartitionSweeper(table, last_ts_expiry, every_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert sweeper.maybe_sweep(0, watermark=5.0) == 0  # not expired yet
    table.data["b"] = [0.0]
    assert sweeper.maybe_sweep(0, watermark=100.0) == 0  # throttled
    now[0] = 1.5
    assert sweeper.maybe_sweep(0, watermark=100.0) == 2


def test_a_sweep_deletes_no_more_than_the_changelog_buffer_has_room_for() -> None:
    pending = [0]
    table = FakeTable({f"k{i:03}": [0.0] for i in range(50)})
    sweeper = PartitionSweeper(  # type: ignore[arg-type]
        table, last_ts_expiry, every_seconds=0.0, max_pending_changelog=20, pending_changelog=lambda: pending[0]
    )
    assert sweeper.maybe_sweep(0, watermark=100.0) == 20  # room for 20 tombstones
    pending[0] = 15
    assert sweeper.maybe_sweep(0, watermark=100.0) == 5  # 5 left below the bound
    pending[0] = 25
    assert sweeper.maybe_sweep(0, watermark=100.0) == 0  # over it: wait for the buffer to drain
    pending[0] = 0
    assert sweeper.maybe_sweep(0, watermark=100.0) == 20
    assert sweeper.maybe_sweep(0, watermark=100.0) == 5  # the cursor went on; nothing expired is missed
    assert table.data == {}


class RocksStore:
    """What the sweeper reads of Faust's RocksDB store: one real rocksdict DB per partition."""

    offset_key = b"__faust\x00offset__"

    def __init__(self, dbs: dict[int, Any]) -> None:
        self._dbs = dbs


class RocksTable:
    changelog_topic = "device-clicks-changelog"

    def __init__(self, store: RocksStore) -> None:
        self.data = store

    def __delitem__(self, key: Any) -> None:
        raise AssertionError("with a tombstone sink nothing goes through the table (Faust's changelog buffer)")


class Sink:
    def __init__(self) -> None:
        self.tombstones: list[tuple[Any, int, bytes]] = []

    def tombstone(self, topic: Any, partition: int, key: bytes) -> None:
        self.tombstones.append((topic, partition, key))


def test_with_a_sink_expired_keys_leave_rocksdb_and_their_tombstones_go_to_the_sink(tmp_path: Any) -> None:
    import orjson
    from rocksdict import Rdict

    db = Rdict(str(tmp_path / "p1"))
    try:
        for i in range(30):
            db[orjson.dumps(f"d{i:02}")] = orjson.dumps([50.0 if i < 20 else 500.0])
        db[RocksStore.offset_key] = b"1234"
        table = RocksTable(RocksStore({1: db}))
        sink = Sink()
        # Faust's buffer being over the bound does not matter: tombstones bypass it.
        sweeper = PartitionSweeper(  # type: ignore[arg-type]
            table, last_ts_expiry, every_seconds=0.0, max_pending_changelog=10, pending_changelog=lambda: 10_000
        )
        assert sweeper.maybe_sweep(1, watermark=100.0, tombstones=sink) == 20
        assert sink.tombstones == [("device-clicks-changelog", 1, orjson.dumps(f"d{i:02}")) for i in range(20)]
        assert sorted(orjson.loads(k) for k, _ in db.items() if k != RocksStore.offset_key) == [f"d{i}" for i in range(20, 30)]
        assert db[RocksStore.offset_key] == b"1234"
        # a partition this worker has no DB for: nothing to do
        assert sweeper.maybe_sweep(2, watermark=100.0, tombstones=sink) == 0
    finally:
        db.close()


MEMTABLES = "rocksdb.cur-size-all-mem-tables"


@pytest.mark.parametrize(
    "compact_after,keys_per_sweep,sweeps,compactions",
    [
        (20, 100, 1, 1),  # one walk deletes 20: compacted at its end
        (21, 100, 1, 0),  # fewer deletes than the bound: left to RocksDB
        (20, 8, 3, 0),  # the walk is not over after 3 sweeps of 8 keys (31 in the DB)
        (20, 8, 4, 1),  # ... and is after 4: its 20 deletes count together
    ],
)
def test_a_walk_that_deleted_many_keys_compacts_the_partition(
    tmp_path: Any, compact_after: int, keys_per_sweep: int, sweeps: int, compactions: int
) -> None:
    import orjson
    from rocksdict import Rdict

    db = Rdict(str(tmp_path / "p1"))
    try:
        for i in range(30):
            db[orjson.dumps(f"d{i:02}")] = orjson.dumps([50.0 if i < 20 else 500.0])
        db[RocksStore.offset_key] = b"1234"
        sweeper = PartitionSweeper(  # type: ignore[arg-type]
            RocksTable(RocksStore({1: db})), last_ts_expiry, every_seconds=0.0,
            keys_per_sweep=keys_per_sweep, compact_after_deletes=compact_after,
        )  # fmt: skip
        empty = Rdict(str(tmp_path / "empty"))
        empty_memtable = empty.property_int_value(MEMTABLES)
        empty.close()
        for _ in range(sweeps):
            sweeper.maybe_sweep(1, watermark=100.0, tombstones=Sink())
        assert sweeper.compactions == compactions
        memtable = db.property_int_value(MEMTABLES)
        # compacted: puts and tombstones left the memtable (its memory back); else they are still there
        assert (memtable == empty_memtable) == bool(compactions)
        remaining = sorted(orjson.loads(k) for k, _ in db.items() if k != RocksStore.offset_key)
        assert remaining == [f"d{i}" for i in range(20, 30)]
        assert db[RocksStore.offset_key] == b"1234"
    finally:
        db.close()
