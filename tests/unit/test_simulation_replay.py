"""`fraudapp replay` file handling and verdict comparison (no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fraudapp.commands.replay import compare, load_items
from fraudapp.simulation.generator import SimConfig, generate

pytestmark = pytest.mark.unit


def test_load_items_keys_paces_and_keeps_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "clicks.jsonl"
    path.write_bytes(
        b'{"click_id":"a","ts":100.0,"device_id":"d1","ip":"1.2.3.4"}\n'
        b"not json\n"
        b"\n"
        b'{"click_id":"b","ts":99.0,"device_id":"d2","ip":"1.2.3.4"}\n'
        b'{"click_id":"c","ts":103.5,"device_id":"d1","ip":"1.2.3.4"}\n'
    )
    items, ids = load_items(str(path))
    assert [(k, e) for k, _, e, _ in items] == [(b"d1", 0.0), (None, 0.0), (b"d2", 0.0), (b"d1", 3.5)]
    assert items[1][1] == b"not json"  # sent as is: the detector dead-letters it
    assert ids == ["a", None, "b", "c"]


def test_simulate_out_file_replays_line_for_line(tmp_path: Path) -> None:
    traffic = generate(SimConfig(count=300, seed=4, mix={"humans": 0.9, "malformed": 0.1}))
    path = tmp_path / "clicks.jsonl"
    path.write_bytes(traffic.input_lines())
    items, _ = load_items(str(path))
    nonempty = [i for i in traffic.inputs if i.value.strip()]
    assert [v for _, v, _, _ in items] == [i.value for i in nonempty]


@pytest.mark.parametrize(
    ("old", "new", "changed", "unchanged", "missing"),
    [
        ([{"click_id": "a", "verdict": "clean", "fraud_types": []}],
         {"a": {"verdict": "clean", "fraud_types": []}}, 0, 1, 0),
        ([{"click_id": "a", "verdict": "clean", "fraud_types": []}],
         {"a": {"verdict": "fraud", "fraud_types": ["click_spam"]}}, 1, 0, 0),
        ([{"click_id": "a", "verdict": "fraud", "fraud_types": ["click_spam", "bot_user_agent"]}],
         {"a": {"verdict": "fraud", "fraud_types": ["bot_user_agent", "click_spam"]}}, 0, 1, 0),
        ([{"click_id": "a", "verdict": "clean", "fraud_types": []}], {}, 0, 0, 1),
    ],
)
def test_compare(old, new, changed, unchanged, missing) -> None:
    diff = compare(old, new)
    assert (len(diff["changed"]), diff["unchanged"], len(diff["missing"])) == (changed, unchanged, missing)
    orjson.dumps(diff)  # serialisable for --diff-out
