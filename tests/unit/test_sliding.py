"""Contract §4 windows: SlidingTimestamps and SessionUrlWindows against a brute-force reference.

Reference: given every event in processing order, an event's count is the number of
events processed before it whose event time lies in [ts - W, ts]. The state must match
it exactly for every event at most `lateness` behind the key's newest event, whatever the
disorder, and give the same answers when persisted (to_json -> JSON -> from_json)
between events. Times are multiples of 1/4 s so edges (ts - W exactly) are hit often and
float arithmetic is exact.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.state.sliding import DeviceWindows, SessionUrlWindows, SlidingTimestamps

FAST = settings(max_examples=200, deadline=None)

windows = st.sampled_from([0.0, 1.0, 2.5, 10.0])
latenesses = st.sampled_from([0.0, 0.5, 5.0, 60.0])
advances = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 2.5, 5.0, 9.75, 10.0, 10.25, 30.0, 100.0])


def reference_counts(times: list[float], window: float) -> list[int]:
    return [sum(1 for t in times[:i] if ts - window <= t <= ts) for i, ts in enumerate(times)]


def within_lateness(times: list[float], lateness: float) -> list[bool]:
    """Whether each event is at most `lateness` behind the newest event up to it."""
    flags, newest = [], float("-inf")
    for ts in times:
        newest = max(newest, ts)
        flags.append(ts >= newest - lateness)
    return flags


@st.composite
def in_lateness_sequences(draw: st.DrawFn, lateness: float) -> list[float]:
    """Event times whose disorder stays within `lateness` of the newest event."""
    steps = draw(st.lists(st.tuples(advances, st.integers(0, 4)), max_size=40))
    now, out = 1_700_000_000.0, []
    for advance, quarter in steps:
        now += advance
        out.append(now - lateness * quarter / 4)
    return out


@st.composite
def any_sequences(draw: st.DrawFn) -> list[float]:
    """Arbitrary disorder, including events far later than any lateness."""
    return draw(st.lists(st.integers(0, 800).map(lambda q: 1_700_000_000.0 + q / 4), max_size=40))


def run(times: list[float], window: float, lateness: float, persist_at: set[int] = frozenset()) -> list[int]:
    state = SlidingTimestamps.initialize()
    out = []
    for i, ts in enumerate(times):
        if i in persist_at:
            state = SlidingTimestamps.from_json(orjson.loads(orjson.dumps(state.to_json())))
        out.append(state.aggregate(ts, window, lateness))
    return out


@FAST
@given(st.data(), windows, latenesses)
def test_exact_within_lateness(data: st.DataObject, window: float, lateness: float) -> None:
    times = data.draw(in_lateness_sequences(lateness))
    assert run(times, window, lateness) == reference_counts(times, window)


@FAST
@given(any_sequences(), windows, latenesses)
def test_exact_for_in_lateness_events_lower_bound_otherwise(times: list[float], window: float, lateness: float) -> None:
    got = run(times, window, lateness)
    want = reference_counts(times, window)
    for g, w, exact in zip(got, want, within_lateness(times, lateness)):
        assert g == w if exact else g <= w


@FAST
@given(any_sequences(), windows, latenesses, st.data())
def test_persisting_between_events_changes_nothing(
    times: list[float], window: float, lateness: float, data: st.DataObject
) -> None:
    persist_at = set(data.draw(st.lists(st.integers(0, max(len(times) - 1, 0)), max_size=5)))
    assert run(times, window, lateness, persist_at) == run(times, window, lateness)
    assert run(times, window, lateness, set(range(len(times)))) == run(times, window, lateness)


@FAST
@given(any_sequences(), windows, latenesses)
def test_state_is_bounded_and_sorted(times: list[float], window: float, lateness: float) -> None:
    state = SlidingTimestamps()
    for ts in times:
        state.aggregate(ts, window, lateness)
        assert state.times == sorted(state.times)
        assert state.max_ts is not None
        assert all(t >= state.max_ts - window - lateness for t in state.times)
    if times:
        assert state.max_ts == max(times)
        assert state.expires_at(window, lateness) == max(times) + window + lateness
        assert SlidingTimestamps.json_expires_at(state.to_json(), window, lateness) == state.expires_at(window, lateness)


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([0.0, 5.0, 10.0], 10.0, [0, 1, 2]),  # exactly ts - W counts
        ([0.0, 10.25], 10.0, [0, 0]),  # just outside
        ([3.0, 3.0, 3.0], 10.0, [0, 1, 2]),  # equal timestamps count
        ([5.0, 1.0, 3.0], 10.0, [0, 0, 1]),  # later event time processed earlier is not counted
        ([0.0, 1.0, 2.0, 3.0], 0.0, [0, 0, 0, 0]),
    ],
)
def test_examples(times: list[float], window: float, expected: list[int]) -> None:
    assert run(times, window, 60.0) == expected


def test_too_late_event_is_judged_not_stored() -> None:
    state = SlidingTimestamps()
    state.aggregate(100.0, 10.0, 5.0)
    assert state.aggregate(50.0, 10.0, 5.0) == 0
    assert state.times == [100.0]
    assert state.result(100.0, 10.0) == 1


def test_from_json_of_nothing() -> None:
    assert SlidingTimestamps.from_json(None).times == []
    assert SlidingTimestamps().expires_at(10, 60) == float("-inf")
    assert SlidingTimestamps.json_expires_at(None, 10, 60) == float("-inf")


# -- per-session, per-url windows --------------------------------------------------------

urls = st.sampled_from(["https://a.example/x", "https://a.example/y", "u3"])


def reference_url_counts(events: list[tuple[str, float]], window: float) -> list[int]:
    return [
        sum(1 for u, t in events[:i] if u == url and ts - window <= t <= ts)
        for i, (url, ts) in enumerate(events)
    ]


def run_session(
    events: list[tuple[str, float]], window: float, lateness: float, persist_at: set[int] = frozenset()
) -> list[int]:
    state = SessionUrlWindows.initialize()
    out = []
    for i, (url, ts) in enumerate(events):
        if i in persist_at:
            state = SessionUrlWindows.from_json(orjson.loads(orjson.dumps(state.to_json())))
        out.append(state.aggregate(url, ts, window, lateness))
    return out


@FAST
@given(st.data(), windows, latenesses)
def test_session_urls_exact_within_lateness(data: st.DataObject, window: float, lateness: float) -> None:
    times = data.draw(in_lateness_sequences(lateness))
    events = [(data.draw(urls), ts) for ts in times]
    assert run_session(events, window, lateness) == reference_url_counts(events, window)


@FAST
@given(st.data(), any_sequences(), windows, latenesses)
def test_session_urls_any_disorder(data: st.DataObject, times: list[float], window: float, lateness: float) -> None:
    events = [(data.draw(urls), ts) for ts in times]
    got = run_session(events, window, lateness)
    want = reference_url_counts(events, window)
    for g, w, exact in zip(got, want, within_lateness(times, lateness)):
        assert g == w if exact else g <= w
    persist_at = set(data.draw(st.lists(st.integers(0, max(len(events) - 1, 0)), max_size=5)))
    assert run_session(events, window, lateness, persist_at) == got
    assert run_session(events, window, lateness, set(range(len(events)))) == got


@FAST
@given(st.data(), any_sequences(), windows, latenesses)
def test_session_state_is_bounded(data: st.DataObject, times: list[float], window: float, lateness: float) -> None:
    state = SessionUrlWindows()
    for i, ts in enumerate(times):
        state.aggregate(data.draw(urls), ts, window, lateness)
        assert state.max_ts == max(times[: i + 1])
        for held in state.urls.values():
            held_times = [t for t, _device in held]
            assert held_times and held_times == sorted(held_times)
            assert all(t >= state.max_ts - window - lateness for t in held_times)
    if times:
        assert state.max_ts == max(times)
        assert state.expires_at(window, lateness) == max(times) + window + lateness
        assert SessionUrlWindows.json_expires_at(state.to_json(), window, lateness) == state.expires_at(window, lateness)


def test_session_examples() -> None:
    state = SessionUrlWindows()
    assert [state.aggregate("u", t, 10, 60) for t in (0.0, 1.0, 10.0, 10.5)] == [0, 1, 2, 2]
    assert state.aggregate("other", 10.5, 10, 60) == 0
    assert state.result("u", 10.5, 10) == 3
    assert SessionUrlWindows.from_json(None).to_json() == {"max": None, "urls": {}}
    assert SessionUrlWindows.json_expires_at(None, 10, 60) == float("-inf")


# -- a session counted in two places: own device in Kafka order, other devices in any ------

session_clicks = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["s1", "s2"]), urls,
              st.integers(0, 120).map(lambda q: 1_700_000_000.0 + q / 4)),
    max_size=30,
)


@FAST
@given(session_clicks, st.randoms(use_true_random=False), st.sampled_from([2, 3, 4]))
def test_session_count_split_between_device_and_session_state(clicks, rnd, threshold: int) -> None:
    """The device stage sees each device's clicks in production order; the session stage
    sees them in any order (here: a random one, persisted at random points). Their sum is
    a label the contract allows: every `hard` one, nothing outside `hard` + `either`."""
    from fraudapp.tooling.simulation.truth import Rules, reference_labels

    window, lateness = 10.0, 60.0
    devices: dict[str, DeviceWindows] = {}
    own = []
    for device, session, url, ts in clicks:
        state = devices.setdefault(device, DeviceWindows())
        state.aggregate(ts, 10.0, lateness)
        own.append(state.aggregate_session(session, url, ts, window, lateness))
        if rnd.random() < 0.3:
            devices[device] = DeviceWindows.from_json(orjson.loads(orjson.dumps(state.to_json())))
    arrival = list(range(len(clicks)))
    rnd.shuffle(arrival)
    sessions: dict[str, SessionUrlWindows] = {}
    others = [0] * len(clicks)
    for k in arrival:
        device, session, url, ts = clicks[k]
        state = sessions.setdefault(session, SessionUrlWindows())
        others[k] = state.aggregate(url, ts, window, lateness, device)
        if rnd.random() < 0.3:
            sessions[session] = SessionUrlWindows.from_json(orjson.loads(orjson.dumps(state.to_json())))
    inputs = [{"click_id": f"c{k}", "ts": ts, "device_id": d, "ip": "24.30.1.1", "session_id": s, "url": u}
              for k, (d, s, u, ts) in enumerate(clicks)]
    rules = Rules(click_spam_threshold=1000, session_url_threshold=threshold, session_url_window=window,
                  lateness=lateness)
    for k, want in enumerate(reference_labels(inputs, [], rules)):
        fired = own[k] + others[k] + 1 >= threshold
        assert ("session_url_repeat" in want.hard) <= fired <= ("session_url_repeat" in want.hard + want.either)


def test_device_windows_json_forms() -> None:
    state = DeviceWindows()
    assert state.to_json() == []
    state.aggregate(5.0, 10, 60)
    assert state.to_json() == [5.0]  # no session clicks: the compact form
    assert DeviceWindows.from_json([5.0]).clicks.times == [5.0]
    state.aggregate(6.0, 10, 60)
    assert state.aggregate_session("s", "u", 6.0, 10, 60) == 0
    assert state.to_json() == {"t": [5.0, 6.0], "s": [["s", "u", [6.0]]]}
    again = DeviceWindows.from_json(orjson.loads(orjson.dumps(state.to_json())))
    assert again.aggregate_session("s", "u", 7.0, 10, 60) == 1
    assert DeviceWindows.json_expires_at(state.to_json(), 10, 60) == 76.0
    assert DeviceWindows.json_expires_at([5.0], 10, 60) == 75.0
    assert DeviceWindows.json_expires_at(None, 10, 60) == float("-inf")


def test_session_windows_count_other_devices_and_read_the_old_form() -> None:
    state = SessionUrlWindows()
    assert [state.aggregate("u", t, 10, 60, d) for t, d in ((0.0, "a"), (1.0, "b"), (2.0, "a"))] == [0, 1, 1]
    assert state.result("u", 2.0, 10) == 3
    old = SessionUrlWindows.from_json({"max": 2.0, "urls": {"u": [1.0, 2.0]}})
    assert old.count_prior("u", 2.0, 10, exclude_device="a") == 2


# --- a rule set that changes the window mid-stream (issue 20) ---------------------------
# State keeps the deployment's window (the largest any version may use); each event is
# counted over the window of the version in force when it is judged.


@FAST
@given(st.data(), st.sampled_from([2.5, 10.0]), latenesses, st.sampled_from([0.0, 1.0, 2.5, 10.0]),
       st.sampled_from([0.0, 1.0, 2.5, 10.0]))  # fmt: skip
def test_exact_when_the_window_changes_at_a_random_point(data: st.DataObject, window: float, lateness: float,
                                                         before: float, after: float) -> None:  # fmt: skip
    times = data.draw(in_lateness_sequences(lateness))
    change = data.draw(st.integers(0, len(times)))
    spans = [min(before if i < change else after, window) for i in range(len(times))]
    state, device, sessions = SlidingTimestamps.initialize(), DeviceWindows.initialize(), SessionUrlWindows()
    counts, device_counts, session_counts = [], [], []
    for ts, span in zip(times, spans, strict=True):
        counts.append(state.aggregate(ts, window, lateness, within=span))
        device_counts.append(device.aggregate(ts, window, lateness, within=span))
        session_counts.append(sessions.aggregate("u", ts, window, lateness, within=span))
    expected = [sum(1 for t in times[:i] if ts - span <= t <= ts) for i, (ts, span) in enumerate(zip(times, spans,
                                                                                                   strict=True))]
    assert counts == expected
    assert device_counts == expected
    assert session_counts == expected
