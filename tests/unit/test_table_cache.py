"""batching.TableCache on a real RocksDB partition: each touched key read once and
written back once per flush, a deletion as a tombstone, every write's changelog record
handed to the outbox in write order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from rocksdict import Options, Rdict

from fraudapp.batching import TableCache

OFFSET_KEY = b"__faust\x00offset__"


class Changelogs:
    def __init__(self) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []

    def changelog(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        self.records.append((partition, key, value))


@pytest.fixture
def db(tmp_path: Path) -> Rdict:
    rdict = Rdict(str(tmp_path / "p2"), Options(raw_mode=True))
    yield rdict
    rdict.close()


def table_on(db: Rdict) -> Any:
    store = SimpleNamespace(use_rocksdict=True, offset_key=OFFSET_KEY, _db_for_partition=lambda partition: db)
    return SimpleNamespace(data=store)


def counts(raw: dict[str, int] | None) -> dict[str, int]:
    return dict(raw or {})


def test_writes_once_per_flush_and_reads_back(db: Rdict) -> None:
    outbox = Changelogs()
    cache: TableCache[str, dict[str, int]] = TableCache(table_on(db), counts, dict, 2, outbox)  # type: ignore[arg-type]
    for n in range(3):
        value = cache.get("a")
        value["n"] = n
        cache.put("a", value)
    cache.put("b", {"n": 9})
    assert db.get(b'"a"') is None, "nothing reaches RocksDB before the flush"
    cache.flush()
    assert orjson.loads(db[b'"a"']) == {"n": 2} and orjson.loads(db[b'"b"']) == {"n": 9}
    assert sorted(outbox.records) == [
        (2, b'"a"', b'{"n":2}'),
        (2, b'"b"', b'{"n":9}'),
    ]
    assert TableCache(table_on(db), counts, dict, 2, Changelogs()).get("a") == {"n": 2}  # type: ignore[arg-type]


def test_delete_is_a_tombstone_and_reads_as_new(db: Rdict) -> None:
    db[b'"gone"'] = b'{"n":1}'
    outbox = Changelogs()
    cache: TableCache[str, dict[str, int]] = TableCache(table_on(db), counts, dict, 0, outbox)  # type: ignore[arg-type]
    assert cache.get("gone") == {"n": 1}
    cache.delete("gone")
    assert cache.get("gone") == {}, "a deleted key reads as never written"
    cache.flush()
    assert db.get(b'"gone"') is None
    assert outbox.records == [(0, b'"gone"', None)]


def test_put_after_delete_keeps_the_new_value(db: Rdict) -> None:
    outbox = Changelogs()
    cache: TableCache[str, dict[str, int]] = TableCache(table_on(db), counts, dict, 0, outbox)  # type: ignore[arg-type]
    cache.delete("k")
    cache.put("k", {"n": 5})
    cache.flush()
    assert orjson.loads(db[b'"k"']) == {"n": 5} and outbox.records == [(0, b'"k"', b'{"n":5}')]


def test_stored_items_are_the_flushed_ones_without_fausts_offset_key(db: Rdict) -> None:
    db[OFFSET_KEY] = b"41"
    db[b'"x"'] = b'{"n":1}'
    cache: TableCache[str, dict[str, int]] = TableCache(table_on(db), counts, dict, 0, Changelogs())  # type: ignore[arg-type]
    cache.put("y", {"n": 2})
    assert dict(cache.stored_items()) == {"x": {"n": 1}}
    cache.flush()
    assert dict(cache.stored_items()) == {"x": {"n": 1}, "y": {"n": 2}}
