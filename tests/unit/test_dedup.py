"""Contract §4 duplicate_click: DedupEntry against a brute-force reference.

Reference: a click is a duplicate iff a click with the same id was accepted earlier (in
processing order) as an original — not itself a duplicate — and their event times are
at most the horizon apart. The one-float state must agree for every click at most
`lateness` behind the newest click of its id (lateness <= horizon), and across
persistence.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.state.sliding import DedupEntry, is_duplicate

FAST = settings(max_examples=200, deadline=None)
HORIZON = 10.0

ids = st.sampled_from(["a", "b", "c"])


def reference(events: list[tuple[str, float]], horizon: float) -> list[bool]:
    originals: list[tuple[str, float]] = []
    out = []
    for click_id, ts in events:
        dup = any(i == click_id and abs(ts - t) <= horizon for i, t in originals)
        if not dup:
            originals.append((click_id, ts))
        out.append(dup)
    return out


def run(
    events: list[tuple[str, float]], horizon: float, persist: bool = False
) -> list[float | None]:
    table: dict[str, float] = {}
    out = []
    for click_id, ts in events:
        raw = table.get(click_id)
        if persist and raw is not None:
            raw = orjson.loads(orjson.dumps(raw))
        entry = DedupEntry.from_json(raw)
        duplicate_of, kept = DedupEntry.check(entry, ts, horizon)
        table[click_id] = kept.to_json()
        out.append(duplicate_of)
    return out


@st.composite
def in_lateness_events(draw: st.DrawFn, lateness: float) -> list[tuple[str, float]]:
    """Per click_id, event times at most `lateness` behind that id's newest click."""
    steps = draw(st.lists(st.tuples(ids, st.sampled_from([0.0, 0.5, 5.0, 9.5, 10.0, 10.5, 25.0]), st.integers(0, 4)), max_size=40))
    newest: dict[str, float] = {}
    out = []
    for click_id, advance, quarter in steps:
        now = newest.get(click_id, 1000.0) + advance
        newest[click_id] = now
        out.append((click_id, now - lateness * quarter / 4))
    return out


@FAST
@given(st.data(), st.sampled_from([0.0, 2.0, 5.0, HORIZON]))
def test_matches_reference_within_lateness(data: st.DataObject, lateness: float) -> None:
    events = data.draw(in_lateness_events(lateness))
    got = run(events, HORIZON)
    assert [g is not None for g in got] == reference(events, HORIZON)
    for (_, ts), first in zip(events, got):
        if first is not None:
            assert abs(ts - first) <= HORIZON


@FAST
@given(st.lists(st.tuples(ids, st.integers(0, 200).map(lambda q: q / 4)), max_size=40))
def test_persistence_changes_nothing(events: list[tuple[str, float]]) -> None:
    assert run(events, HORIZON, persist=True) == run(events, HORIZON)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0.0, 0.0], [None, 0.0]),  # a replay at the same time
        ([0.0, 10.0], [None, 0.0]),  # exactly the horizon apart: duplicate
        ([0.0, 10.5], [None, None]),  # beyond the horizon: a new original
        ([0.0, 8.0, 16.0], [None, 0.0, None]),  # a duplicate does not refresh the entry
        ([0.0, 10.5, 12.0], [None, None, 10.5]),  # the newer original holds the id
        ([5.0, 0.0], [None, 5.0]),  # out of order within the horizon: still a duplicate
        ([20.0, 5.0, 20.0], [None, None, 20.0]),  # an older original never replaces a newer one
    ],
)
def test_examples(times: list[float], expected: list[float | None]) -> None:
    assert run([("x", t) for t in times], HORIZON) == expected


def test_helpers() -> None:
    assert not is_duplicate(None, 5.0, HORIZON)
    assert is_duplicate(0.0, -10.0, HORIZON)
    assert DedupEntry(3.0).expires_at(HORIZON, 60.0) == 73.0
    assert DedupEntry.json_expires_at(3.0, HORIZON, 60.0) == 73.0
    assert DedupEntry.json_expires_at(None, HORIZON, 60.0) == float("-inf")
    assert DedupEntry.from_json(None) is None
