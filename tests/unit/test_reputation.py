"""Reputation (state/reputation.py): EntityActivity against a brute-force reference,
its bounds (eviction, forgetting), entities, the index, and the stage that publishes it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp import reputation_stage, tables
from fraudapp.models import Summary, Window
from fraudapp.pipeline import pack
from fraudapp.state.reputation import (
    MAX_USER_AGENTS,
    EntityActivity,
    ReputationIndex,
    entities_of,
    network_of,
    user_agent_id,
)
from tests.unit.test_agents import Sent, sent, settled  # noqa: F401 - the fixture

FAST = settings(max_examples=150, deadline=None)
HORIZONS = (30.0, 120.0)
START = 1000.0
SPAN = 300.0  # clicks fall in [START, START + SPAN]
MEMORY = 400.0  # more than the span: nothing is forgotten
NO_EVICTION = 100  # more devices than the pool

Click = tuple[float, str, str, str | None]  # ts, device id, user agent id, publisher

# Multiples of 2.5 s: minute boundaries (1020, 1080, ...) and the horizons' starts
# (t - 30, t - 120) fall exactly on click times, so > against >= matters.
timestamps = st.integers(0, int(SPAN / 2.5)).map(lambda k: START + 2.5 * k)
clicks_strategy = st.lists(
    st.tuples(
        timestamps,
        st.sampled_from(["d1", "d2", "d3", "d4", "d5"]),
        st.sampled_from(["", "ua1", "ua2", "ua3"]),
        st.sampled_from([None, "p1", "p2", "p3"]),
    ),
    min_size=1,
    max_size=40,
)


def reference(clicks: list[Click], horizon: float) -> Window:
    """The window computed from the raw clicks, in the order they were added."""
    t = max(ts for ts, *_ in clicks)
    start = t - horizon
    devices = {d for ts, d, _, _ in clicks if ts > start}
    first = {d: min(ts for ts, dd, _, _ in clicks if dd == d) for d in devices}
    last_publisher: dict[str, str | None] = {}
    last_ts: dict[str, float] = {}
    for ts, d, _, publisher in clicks:  # in adding order: on equal ts the later one wins
        if d in devices and ts >= last_ts.get(d, float("-inf")):
            last_ts[d], last_publisher[d] = ts, publisher
    counts: dict[str, int] = {}
    for publisher in last_publisher.values():
        if publisher is not None:
            counts[publisher] = counts.get(publisher, 0) + 1
    top = min(counts, key=lambda p: (-counts[p], p)) if counts else None
    return Window(
        seconds=horizon,
        devices=len(devices),
        clicks=sum(1 for ts, *_ in clicks if (int(ts // 60) + 1) * 60 > start),
        user_agents=len({ua for ts, _, ua, _ in clicks if ua and ts > start}),
        new_devices=sum(1 for d in devices if first[d] > start),
        top_publisher=top,
        top_publisher_devices=counts[top] if top is not None else 0,
    )


def round_trip(activity: EntityActivity) -> EntityActivity:
    """Through the table's JSON, as the stage stores it between batches."""
    return EntityActivity.from_json(orjson.loads(orjson.dumps(activity.to_json())))


def run(clicks: list[Click], memory: float, max_devices: int, trips: list[bool] | None = None) -> EntityActivity:
    activity = EntityActivity.from_json(None)
    for i, (ts, device, user_agent, publisher) in enumerate(clicks):
        activity.add(ts, device, user_agent, publisher, memory, max_devices)
        if trips is not None and trips[i]:
            activity = round_trip(activity)
    return activity


@FAST
@given(clicks_strategy)
def test_windows_match_the_reference(clicks: list[Click]) -> None:
    summary = run(clicks, MEMORY, NO_EVICTION).summary("ip:x", HORIZONS)
    assert summary.entity == "ip:x"
    assert summary.t == max(ts for ts, *_ in clicks)
    assert summary.windows == tuple(reference(clicks, h) for h in HORIZONS)


@FAST
@given(st.data(), clicks_strategy)
def test_json_round_trips_mid_stream_change_nothing(data: st.DataObject, clicks: list[Click]) -> None:
    trips = data.draw(st.lists(st.booleans(), min_size=len(clicks), max_size=len(clicks)))
    plain = run(clicks, MEMORY, NO_EVICTION)
    tripped = run(clicks, MEMORY, NO_EVICTION, trips)
    assert tripped.summary("e", HORIZONS) == plain.summary("e", HORIZONS)
    assert tripped.summary("e", HORIZONS).windows == tuple(reference(clicks, h) for h in HORIZONS)
    assert round_trip(tripped).to_json() == plain.to_json()


@FAST
@given(clicks_strategy)
def test_forgetting_beyond_memory_changes_no_count_within_it(clicks: list[Click]) -> None:
    """Memory = the longest horizon (as the stage runs it): the clicks forgotten never
    counted in a horizon, except that a device whose earlier clicks were forgotten is new
    again (first click *remembered* in the horizon), so new_devices can only be higher."""
    memory = HORIZONS[-1]
    windows = run(clicks, memory, NO_EVICTION).summary("e", HORIZONS).windows
    for got, expected in zip(windows, (reference(clicks, h) for h in HORIZONS), strict=True):
        assert (got.devices, got.clicks, got.user_agents, got.top_publisher, got.top_publisher_devices) == (
            expected.devices, expected.clicks, expected.user_agents, expected.top_publisher,
            expected.top_publisher_devices)  # fmt: skip
        assert got.new_devices >= expected.new_devices


def test_a_device_last_seen_beyond_memory_comes_back_new() -> None:
    activity = EntityActivity.from_json(None)
    activity.add(1000.0, "d1", "", "p", 120.0, NO_EVICTION)
    activity.add(1200.0, "d2", "", "p", 120.0, NO_EVICTION)  # a new minute: d1 (1000 <= 1080) goes
    activity.add(1210.0, "d1", "", "p", 120.0, NO_EVICTION)
    assert activity.window(120.0).new_devices == 2


# --- bounds -----------------------------------------------------------------------------------


def test_the_least_recently_seen_devices_go_first() -> None:
    activity = EntityActivity.from_json(None)
    for i in range(6):
        activity.add(1000.0 + i, f"d{i}", "", "p", 600.0, 3)
    assert set(activity.devices) == {"d3", "d4", "d5"}
    activity.add(1010.0, "d3", "", "p", 600.0, 3)  # d3 is now the most recent
    activity.add(1011.0, "d6", "", "p", 600.0, 3)
    assert set(activity.devices) == {"d3", "d5", "d6"}
    activity.add(990.0, "d7", "", "p", 600.0, 3)  # late, so the least recent itself: it goes
    assert set(activity.devices) == {"d3", "d5", "d6"}


@pytest.mark.parametrize("max_devices", [1, 5, 20])
def test_device_counts_saturate_at_max_devices(max_devices: int) -> None:
    activity = EntityActivity.from_json(None)
    for i in range(50):
        activity.add(1000.0 + i * 0.5, f"d{i}", "", "p", 600.0, max_devices)
        window = activity.window(600.0)
        assert window.devices == min(i + 1, max_devices) == len(activity.devices)
        assert window.top_publisher_devices == window.devices
    assert window.clicks == 50  # clicks are not bounded by devices


def test_user_agents_are_bounded_keeping_the_most_recent() -> None:
    activity = EntityActivity.from_json(None)
    extra = 6
    for i in range(MAX_USER_AGENTS + extra):
        activity.add(1000.0 + i * 0.1, "d", f"ua{i}", "p", 600.0, NO_EVICTION)
    assert set(activity.user_agents) == {f"ua{i}" for i in range(extra, MAX_USER_AGENTS + extra)}
    assert activity.window(600.0).user_agents == MAX_USER_AGENTS


def test_devices_user_agents_and_minutes_older_than_memory_are_forgotten() -> None:
    activity = EntityActivity.from_json(None)
    activity.add(1000.0, "old", "ua-old", "p1", 120.0, NO_EVICTION)
    activity.add(1079.0, "edge", "ua-edge", "p1", 120.0, NO_EVICTION)
    activity.add(1200.0, "new", "ua-new", "p2", 120.0, NO_EVICTION)  # horizon 1080: the first two go
    assert set(activity.devices) == {"new"}
    assert set(activity.user_agents) == {"ua-new"}
    assert set(activity.minutes) == {20}
    assert activity.window(120.0) == Window(120.0, 1, 1, 1, 1, "p2", 1)
    activity.add(1050.0, "late", "ua-late", "p1", 120.0, NO_EVICTION)  # later than memory: not kept
    assert set(activity.devices) == {"new"} and set(activity.minutes) == {20}


def test_json_expires_at_is_newest_plus_memory_plus_lateness() -> None:
    activity = EntityActivity.from_json(None)
    activity.add(1200.0, "d1", "", None, 120.0, NO_EVICTION)
    activity.add(1100.0, "d2", "", None, 120.0, NO_EVICTION)  # late: the newest stays 1200
    raw = orjson.loads(orjson.dumps(activity.to_json()))
    assert EntityActivity.json_expires_at(raw, 120.0, 60.0) == 1380.0


@pytest.mark.parametrize("raw", [None, {}])
def test_nothing_stored_is_an_empty_activity(raw: Any) -> None:
    activity = EntityActivity.from_json(raw)
    assert (activity.devices, activity.user_agents, activity.minutes, activity.newest, activity.published) == (
        {}, {}, {}, 0.0, False)  # fmt: skip
    assert activity.window(600.0) == Window(600.0, 0, 0, 0, 0, None, 0)


# --- entities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("198.51.100.7", "198.51.100.0/24"),
        ("198.51.100.255", "198.51.100.0/24"),
        ("8.8.8.8", "8.8.8.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2606:4700:10::6816:e0a", "2606:4700:10::/64"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),  # IPv4-mapped: its IPv4's /24
        ("::ffff:c633:6407", "198.51.100.0/24"),  # the same, written in hex
        ("nope", None),
        ("", None),
        ("1.2.3", None),
        ("1.2.3.256", None),
        ("198.51.100.0/24", None),  # a network, not an address
        (" 8.8.8.8", None),
        ("2001:db8::g", None),
    ],
)
def test_network_of(ip: str, network: str | None) -> None:
    assert network_of(ip) == network


@pytest.mark.parametrize(
    ("ip", "fingerprint", "entities"),
    [
        ("198.51.100.7", "f00d", ["ip:198.51.100.7", "net:198.51.100.0/24", "fp:f00d"]),
        ("198.51.100.7", None, ["ip:198.51.100.7", "net:198.51.100.0/24"]),
        ("198.51.100.7", "", ["ip:198.51.100.7", "net:198.51.100.0/24"]),
        ("2001:db8::1", "f", ["ip:2001:db8::1", "net:2001:db8::/64", "fp:f"]),
        ("garbage", "f", ["ip:garbage", "fp:f"]),
    ],
)
def test_entities_of(ip: str, fingerprint: str | None, entities: list[str]) -> None:
    assert entities_of(ip, fingerprint) == entities


def test_user_agent_id() -> None:
    assert user_agent_id(None) == user_agent_id("") == ""
    ua = user_agent_id("Mozilla/5.0")
    assert len(ua) == 8 and int(ua, 16) >= 0
    assert ua == user_agent_id("Mozilla/5.0") != user_agent_id("Mozilla/5.1")


# --- the index --------------------------------------------------------------------------------


def body(t: float, devices: int = 2) -> dict[str, Any]:
    return Summary("unused", t, (Window(600.0, devices, devices, 1, devices, "p", devices),)).to_json()


def test_older_summaries_never_replace_newer_ones_and_none_deletes() -> None:
    index = ReputationIndex()
    index.apply("ip:1.2.3.4", body(100.0, devices=3))
    index.apply("ip:1.2.3.4", body(50.0, devices=9))  # an older one, e.g. a changelog record coming back
    held = index.get("ip:1.2.3.4")
    assert held is not None and (held.entity, held.t, held.windows[0].devices) == ("ip:1.2.3.4", 100.0, 3)
    index.apply("ip:1.2.3.4", body(100.0, devices=4))  # the same time: the later write wins
    assert index.get("ip:1.2.3.4").windows[0].devices == 4  # type: ignore[union-attr]
    index.apply("ip:1.2.3.4", body(150.0, devices=5))
    assert index.get("ip:1.2.3.4").t == 150.0  # type: ignore[union-attr]
    assert "ip:1.2.3.4" in index and len(index) == 1
    index.apply("ip:1.2.3.4", None)
    assert index.get("ip:1.2.3.4") is None and "ip:1.2.3.4" not in index and len(index) == 0
    index.apply("ip:1.2.3.4", None)  # deleting what is not there
    index.apply("ip:1.2.3.4", body(10.0))  # after a deletion any summary is taken
    assert index.get("ip:1.2.3.4").t == 10.0  # type: ignore[union-attr]


def test_of_click_maps_entities_to_fields_and_ignores_stale_summaries() -> None:
    index = ReputationIndex()
    index.apply("ip:198.51.100.7", body(1000.0, devices=2))
    index.apply("net:198.51.100.0/24", body(1000.0, devices=3))
    index.apply("fp:f00d", body(1000.0, devices=4))
    index.apply("ip:198.51.100.8", body(1000.0, devices=5))  # another address of the network
    rep = index.of_click("198.51.100.7", "f00d", 1100.0, 600.0)
    assert rep
    assert rep.ip is not None and (rep.ip.entity, rep.ip.windows[0].devices) == ("ip:198.51.100.7", 2)
    assert rep.network is not None and (rep.network.entity, rep.network.windows[0].devices) == (
        "net:198.51.100.0/24", 3)  # fmt: skip
    assert rep.fingerprint is not None and (rep.fingerprint.entity, rep.fingerprint.windows[0].devices) == (
        "fp:f00d", 4)  # fmt: skip
    # without a fingerprint, on another address of the network
    rep = index.of_click("198.51.100.9", None, 1100.0, 600.0)
    assert (rep.ip, rep.fingerprint) == (None, None) and rep.network is not None
    # a summary older than memory before the click says nothing
    assert index.of_click("198.51.100.7", "f00d", 1599.0, 600.0).ip is not None
    stale = index.of_click("198.51.100.7", "f00d", 1600.0, 600.0)
    assert (stale.ip, stale.network, stale.fingerprint) == (None, None, None) and not stale
    # a late click (older than the summary) still reads it
    assert index.of_click("198.51.100.7", "f00d", 900.0, 600.0).ip is not None
    assert not index.of_click("203.0.113.1", "other", 1100.0, 600.0)


# --- the stage, without a broker ----------------------------------------------------------------


async def test_an_entity_is_published_once_seen_with_two_devices(sent: Sent) -> None:  # noqa: F811
    run_id = uuid.uuid4().hex[:8]
    lone, pair = f"fp:lone-{run_id}", f"fp:pair-{run_id}"
    t = time.time()
    items = [
        [lone, t, "dev-a", "", "p1"],
        [lone, t + 1, "dev-a", "", "p1"],  # the same device again
        [pair, t, "dev-b", "ua1", "p1"],
        [pair, t + 1, "dev-c", "ua1", "p2"],
    ]
    index = tables.reputation.index
    try:
        async with reputation_stage.count_entities.test_context() as stage:
            await stage.put(pack([orjson.dumps(item) for item in items]), key=pair.encode(), partition=0)
            await settled(lambda: int(pair in index), 1)
            assert lone not in index
            summary = index.get(pair)
            assert summary is not None and summary.t == t + 1
            first = summary.windows[0]
            assert (first.devices, first.clicks, first.user_agents, first.new_devices) == (2, 2, 1, 2)
            # a lone entity stays a local sighting; a shared one is in the changelogged table
            assert lone not in tables.entity_activity and lone in tables.entity_sightings
            assert EntityActivity.from_json(tables.entity_activity[pair]).published is True
            assert pair not in tables.entity_sightings
            # a second device on the lone entity publishes it too
            await stage.put(pack([orjson.dumps([lone, t + 2, "dev-d", "", "p1"])]), key=lone.encode(), partition=0)
            await settled(lambda: int(lone in index), 1)
            assert index.get(lone).windows[-1].devices == 2  # type: ignore[union-attr]
            assert lone in tables.entity_activity and lone not in tables.entity_sightings
    finally:
        index.apply(lone, None)
        index.apply(pair, None)
