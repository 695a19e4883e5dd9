"""`fraudapp replay` file handling and verdict comparison (no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fraudapp.commands.evaluate import dump_verdicts
from fraudapp.commands.replay import Line, compare, load_items, new_by_line, recorded_by_line
from fraudapp.tooling.simulation.generator import SimConfig, generate
from fraudapp.tooling.simulation.kafkaio import Sent

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
    items, lines = load_items(str(path))
    assert [(k, e) for k, _, e in items] == [(b"d1", 0.0), (None, 0.0), (b"d2", 0.0), (b"d1", 3.5)]
    assert items[1][1] == b"not json"  # sent as is: the detector dead-letters it
    # The blank line is not sent but counted: lines keep their place in the file.
    assert lines == [Line(0, "a"), Line(1, None), Line(3, "b"), Line(4, "c")]


def test_simulate_out_file_replays_line_for_line(tmp_path: Path) -> None:
    traffic = generate(SimConfig(count=300, seed=4, mix={"humans": 0.9, "malformed": 0.1}))
    path = tmp_path / "clicks.jsonl"
    path.write_bytes(traffic.input_lines())
    items, lines = load_items(str(path))
    nonempty = [i for i in traffic.inputs if i.value.strip()]
    assert [v for _, v, _ in items] == [i.value for i in nonempty]
    # Line k of the file is input k, the truth's `i` (what --dump-verdicts records), the
    # empty inputs included: skipped, not sent, but counted.
    assert any(not i.value for i in traffic.inputs)
    assert [ln.index for ln in lines] == [i.index for i in nonempty]
    assert [t["i"] for t in traffic.truth] == list(range(len(traffic.inputs)))


CLEAN = ("clean", [])
DUP = ("fraud", ["duplicate_click"])
SPAM = ("fraud", ["click_spam"])
NONE = None  # no verdict: a malformed line (recorded) or no answer at all (new)
DEAD = "dead"  # new: the line was dead-lettered


def _click(cid: str, device: str = "d1") -> bytes:
    return orjson.dumps({"click_id": cid, "ts": 100.0, "device_id": device, "ip": "1.2.3.4"})


def _verdict(cid: str | None, outcome: tuple[str, list[str]], source: list) -> dict:
    return {"click_id": cid, "verdict": outcome[0], "fraud_types": outcome[1], "source": source}


def _replay_diff(tmp_path: Path, file: list[tuple], dump_line: bool = True, truth: bool = False) -> dict:
    """The comparison as `replay --compare` makes it, broker-free.

    `file` rows: (line bytes, recorded outcome or NONE, new outcome or NONE or DEAD). The
    original run put line i at clicks[1]@100+i, the replay puts item k at clicks[0]@k:
    nothing may depend on the two runs' positions agreeing.
    """
    path = tmp_path / "clicks.jsonl"
    path.write_bytes(b"".join(raw + b"\n" for raw, _, _ in file))
    items, lines = load_items(str(path))
    ids = {ln.index: ln.click_id for ln in lines}
    recorded = []
    for i, (_, before, _) in enumerate(file):
        if before is not NONE:
            v = _verdict(ids.get(i), before, ["clicks", 1, 100 + i])
            recorded.append({**v, "line": i} if dump_line else v)
    recorded.reverse()  # a dump is in the consumer's order, not the file's
    sent = [Sent(k, ("clicks", 0, k), 0.0) for k in range(len(items))]
    verdicts, dead = [], []
    for k, ln in enumerate(lines):
        after = file[ln.index][2]
        if after == DEAD:
            dead.append({"topic": "clicks", "partition": 0, "offset": k, "error": "not_json"})
        elif after is not NONE:
            verdicts.append(_verdict(ln.click_id, after, ["clicks", 0, k]))
    truth_records = [{"i": i, "topic": "clicks", "partition": 1, "offset": 100 + i} for i in range(len(file))]
    old, unpaired = recorded_by_line(recorded, lines, truth_records if truth else None)
    diff = compare(old, new_by_line(verdicts, dead, sent, lines), unpaired)
    orjson.dumps(diff)  # serialisable for --diff-out
    return diff


# (file rows, options, changed [(line, click_id)], missing [(line, click_id)], unchanged, unpaired)
COMPARE_CASES = {
    # A replayed click_id: its first line clean, its second a duplicate, in both runs.
    # Pairing by click_id paired both recorded verdicts with one new one: a phantom change.
    "duplicated click_id, same verdicts": (
        [(_click("a"), CLEAN, CLEAN), (_click("b"), CLEAN, CLEAN), (_click("a"), DUP, DUP)],
        {}, [], [], 3, []),
    "duplicated click_id, the other line is the duplicate now": (
        [(_click("a"), CLEAN, DUP), (_click("a", "d2"), DUP, CLEAN)],
        {}, [(0, "a"), (1, "a")], [], 0, []),
    "a real change": (
        [(_click("a"), CLEAN, CLEAN), (_click("b"), CLEAN, SPAM), (_click("c"), CLEAN, CLEAN)],
        {}, [(1, "b")], [], 2, []),
    "a missing new verdict": (
        [(_click("a"), CLEAN, CLEAN), (_click("b"), SPAM, NONE), (_click("c"), CLEAN, CLEAN)],
        {}, [], [(1, "b")], 2, []),
    "dead-lettered lines in between shift nothing": (
        [(b"not json", NONE, DEAD), (_click("a"), CLEAN, CLEAN), (b"", NONE, NONE), (b"[1]", NONE, DEAD),
         (_click("a"), DUP, DUP), (b'{"click_id": "x"}', NONE, DEAD), (_click("b"), SPAM, SPAM)],
        {}, [], [], 3, []),
    "dead-lettered lines, then a change": (
        [(b"not json", NONE, DEAD), (b"", NONE, NONE), (_click("a"), CLEAN, CLEAN), (_click("b"), CLEAN, SPAM)],
        {}, [(3, "b")], [], 1, []),
    "a recorded verdict now dead-lettered": (
        [(_click("a"), CLEAN, CLEAN), (_click("b"), CLEAN, DEAD)],
        {}, [(1, "b")], [], 1, []),
    "older dump without line, --truth pairs it": (
        [(_click("a"), CLEAN, CLEAN), (_click("a"), DUP, DUP), (_click("b"), CLEAN, SPAM)],
        {"dump_line": False, "truth": True}, [(2, "b")], [], 2, []),
    "older dump without line, no truth: a repeated click_id is left unpaired": (
        [(_click("a"), CLEAN, CLEAN), (_click("a"), DUP, DUP), (_click("b"), CLEAN, SPAM)],
        {"dump_line": False}, [(2, "b")], [], 0, ["a", "a"]),
}


@pytest.mark.parametrize(("file", "opts", "changed", "missing", "unchanged", "unpaired"),
                         list(COMPARE_CASES.values()), ids=list(COMPARE_CASES))
def test_compare_pairs_by_line(tmp_path: Path, file, opts, changed, missing, unchanged, unpaired) -> None:
    diff = _replay_diff(tmp_path, file, **opts)
    assert [(c["line"], c["click_id"]) for c in diff["changed"]] == changed
    assert [(m["line"], m["click_id"]) for m in diff["missing"]] == missing
    assert diff["unchanged"] == unchanged
    assert diff["unpaired"] == unpaired
    # A line whose recorded verdict could not be paired is answered now only.
    assert [n["click_id"] for n in diff["new_only"]] == unpaired
    assert diff["compared"] == unchanged + len(changed) + len(missing)


def test_compare_reports_before_and_after() -> None:
    diff = compare({4: {"click_id": "a", "verdict": "fraud", "fraud_types": ["click_spam", "bot_user_agent"]},
                    7: {"click_id": "b", "verdict": "clean", "fraud_types": []}},
                   {4: {"verdict": "fraud", "fraud_types": ["bot_user_agent", "click_spam"]},  # order: no change
                    7: {"verdict": "rejected", "fraud_types": [], "error": "invalid_ip"},
                    9: {"click_id": "c", "verdict": "suspicious", "fraud_types": []},  # answered now only
                    11: {"verdict": "rejected", "fraud_types": []}})  # dead-lettered both times: not reported
    assert diff["changed"] == [{"line": 7, "click_id": "b", "campaign_id": None,
                                "before": {"verdict": "clean", "fraud_types": []},
                                "after": {"verdict": "rejected", "fraud_types": []}}]
    assert diff["unchanged"] == 1
    assert diff["new_only"] == [{"line": 9, "click_id": "c", "after": {"verdict": "suspicious", "fraud_types": []}}]


def test_dump_verdicts_records_each_inputs_line(tmp_path: Path) -> None:
    truth = [{"i": 0, "topic": "clicks", "partition": 2, "offset": 7},
             {"i": 1, "topic": "clicks", "partition": 0, "offset": 3},
             {"i": 2, "topic": "clicks", "partition": 2, "offset": 8}]
    verdicts = [_verdict("b", CLEAN, ["clicks", 0, 3]), _verdict("a", CLEAN, ["clicks", 2, 7]),
                _verdict("z", CLEAN, ["clicks", 2, 99])]
    path = tmp_path / "v.jsonl"
    dump_verdicts(str(path), truth, verdicts)
    dumped = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [(v["click_id"], v.get("line")) for v in dumped] == [("b", 1), ("a", 0), ("z", None)]
    assert dumped[0]["source"] == ["clicks", 0, 3]  # the verdict itself is unchanged


def test_compare_keeps_order_dependent_changes_apart() -> None:
    """A change only in a type the recorded verdict lists under `either` is allowed by
    CONTRACT §4 (other devices' clicks in either order); any other difference is a change."""
    either = ["session_url_repeat"]
    diff = compare({1: {"click_id": "a", "verdict": "fraud", "fraud_types": ["session_url_repeat"], "either": either},
                    2: {"click_id": "b", "verdict": "fraud", "fraud_types": ["session_url_repeat", "click_spam"],
                        "either": either},
                    3: {"click_id": "c", "verdict": "fraud", "fraud_types": ["session_url_repeat"]}},
                   {1: {"verdict": "clean", "fraud_types": []},
                    2: {"verdict": "fraud", "fraud_types": ["session_url_repeat"]},
                    3: {"verdict": "clean", "fraud_types": []}})
    assert [c["line"] for c in diff["order_dependent"]] == [1]
    assert [c["line"] for c in diff["changed"]] == [2, 3]


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        # a farm hit on one side only: the reputation had or had not caught up
        ({"verdict": "fraud", "fraud_types": ["device_farm"]}, {"verdict": "clean", "fraud_types": []},
         "reputation_dependent"),
        # the network layer lowered the new score into suspicious
        ({"verdict": "clean", "fraud_types": []},
         {"verdict": "suspicious", "fraud_types": [], "layers": {"network": 40.0}}, "reputation_dependent"),
        ({"verdict": "suspicious", "fraud_types": [], "layers": {"network": 30.0}},
         {"verdict": "fraud", "fraud_types": ["low_human_score"], "layers": {"network": 0.0}}, "reputation_dependent"),
        # a hard type differs: a change, whatever the reputation did
        ({"verdict": "fraud", "fraud_types": ["click_spam", "device_farm"]},
         {"verdict": "fraud", "fraud_types": ["device_farm"]}, "changed"),
        # no reputation read on either side: a score change is a change
        ({"verdict": "clean", "fraud_types": [], "layers": {"network": None}},
         {"verdict": "suspicious", "fraud_types": [], "layers": {"network": None}}, "changed"),
    ],
)
def test_compare_keeps_reputation_dependent_changes_apart(before: dict, after: dict, kind: str) -> None:
    diff = compare({1: {"click_id": "a", **before}}, {1: after})
    assert [c["line"] for c in diff[kind]] == [1]
    assert diff["unchanged"] == 0


def test_dump_verdicts_carries_the_truths_either_types(tmp_path: Path) -> None:
    truth = [{"i": 0, "topic": "clicks", "partition": 0, "offset": 0, "either": ["session_url_repeat"]},
             {"i": 1, "topic": "clicks", "partition": 0, "offset": 1, "either": []}]
    path = tmp_path / "v.jsonl"
    dump_verdicts(str(path), truth, [_verdict("a", CLEAN, ["clicks", 0, 0]), _verdict("b", CLEAN, ["clicks", 0, 1])])
    dumped = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [v.get("either") for v in dumped] == [["session_url_repeat"], None]


def test_changes_split_by_fraud_type_and_campaign() -> None:
    """What `replay --rules` reports: per fraud type the inputs that gained or lost it, per
    campaign the inputs that changed."""
    spam = {"verdict": "fraud", "fraud_types": ["click_spam"]}
    clean = {"verdict": "clean", "fraud_types": []}
    old = {1: {"click_id": "a", "campaign_id": "c1", **spam}, 2: {"click_id": "b", "campaign_id": "c1", **spam},
           3: {"click_id": "c", "campaign_id": "c2", **clean}, 4: {"click_id": "d", "campaign_id": "c2", **spam}}
    new = {1: clean, 2: clean, 3: {"verdict": "fraud", "fraud_types": ["bot_user_agent", "click_spam"]}, 4: spam}
    by = compare(old, new)["by"]
    assert by["fraud_types"] == {"bot_user_agent": {"gained": 1, "lost": 0}, "click_spam": {"gained": 1, "lost": 2}}
    assert by["campaigns"] == {"c1": 2, "c2": 1}
