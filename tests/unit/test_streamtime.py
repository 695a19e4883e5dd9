"""The device stage's expiry watermark: the slowest input topic's stream time."""

from fraudapp.state.streamtime import MultiTopicStreamTime


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def flow(st: MultiTopicStreamTime, clock: Clock, seconds: float, batch: dict[str, float], step: float = 0.5) -> float | None:
    """Batches of `batch` every `step` seconds for `seconds` (a partition that keeps flowing)."""
    watermark = None
    for _ in range(int(seconds / step)):
        clock.now += step
        watermark = st.advance(0, batch)
    return watermark


def test_slowest_topic_holds_the_watermark_back() -> None:
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    # a backlog on clicks (old) and current re-keyed clicks: the backlog decides
    assert st.advance(0, {"clicks": 1_000.0, "rekeyed": 9_000.0}) == 1_000.0
    assert st.advance(0, {"rekeyed": 9_500.0}) == 1_000.0
    assert st.advance(0, {"clicks": 1_200.0}) == 1_200.0
    # partitions are independent
    assert st.advance(1, {"clicks": 5.0, "rekeyed": 7.0}) == 5.0


def test_unseen_topic_blocks_expiry_until_idle() -> None:
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    # only the re-keyed topic has spoken: clicks may still bring older events
    assert st.advance(0, {"rekeyed": 9_000.0}) is None
    assert flow(st, clock, 30, {"rekeyed": 9_050.0}) is None
    assert flow(st, clock, 31, {"rekeyed": 9_100.0}) == 9_100.0


def test_quiet_topic_gives_way_to_the_wall_clock() -> None:
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    st.advance(0, {"clicks": 9_000.0, "rekeyed": 8_000.0})
    assert flow(st, clock, 30, {"clicks": 9_030.0}) == 8_000.0
    assert flow(st, clock, 31, {"clicks": 9_060.0}) == 9_060.0  # rekeyed quiet for 61 s of flow


def test_a_stall_is_not_quiet() -> None:
    """Nothing came for minutes (a rebalance waiting for a dead member): the first batch
    after it, current re-keyed clicks only, must not find clicks idle; the clicks
    backlog that follows still has its windows."""
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    assert st.advance(0, {"clicks": 1_000.0, "rekeyed": 1_000.0}) == 1_000.0
    clock.now += 120
    assert st.advance(0, {"rekeyed": 2_500.0}) == 1_000.0
    assert st.advance(0, {"clicks": 1_050.0}) == 1_050.0


def test_sparse_traffic_still_expires() -> None:
    """A batch every two minutes: each gap counts little, but quiet adds up over batches."""
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    st.advance(0, {"clicks": 1_000.0, "rekeyed": 1_000.0})
    watermarks = []
    for i in range(1, 80):
        clock.now += 120
        watermarks.append(st.advance(0, {"clicks": 1_000.0 + 120 * i}))
    assert watermarks[0] == 1_000.0  # rekeyed not idle yet
    assert watermarks[-1] == 1_000.0 + 120 * 79  # quiet long enough: clicks alone


def test_a_partition_regained_after_a_rebalance_starts_over() -> None:
    """What this worker recorded before it lost the partition does not count: its lagging
    clicks (a dead worker's backlog) hold the watermark back again once they arrive."""
    clock = Clock()
    st = MultiTopicStreamTime(["clicks", "rekeyed"], idle_seconds=60, clock=clock)
    assert st.advance(0, {"clicks": 1_000.0, "rekeyed": 1_000.0}, epoch=1) == 1_000.0
    assert flow(st, clock, 70, {"rekeyed": 1_040.0}) == 1_040.0  # clicks idle: fine while we own it
    assert st.advance(0, {"rekeyed": 2_500.0}, epoch=3) is None  # new ownership: clicks not seen yet
    assert st.advance(0, {"clicks": 1_100.0}, epoch=3) == 1_100.0


def test_future_event_times_are_capped() -> None:
    clock = Clock()
    st = MultiTopicStreamTime(["clicks"], idle_seconds=60, clock=clock)
    assert st.advance(0, {"clicks": 1e12}) == clock.now + 300


def test_idle_wall_clock_does_not_stick(monkeypatch) -> None:
    """A quiet alert partition closes its windows by wall clock, but clicks of an old window
    that arrive afterwards are judged by their own event time (not closed on arrival)."""
    from fraudapp.state import streamtime

    now = [10_000.0]
    monkeypatch.setattr(streamtime.time, "time", lambda: now[0])
    marks = streamtime.Watermarks()
    assert marks.idle(0, 5.0) == 10_000.0  # never had an event: the wall clock stands in
    assert marks.advance(0, 9_700.0) == 9_700.0  # a window five minutes old stays open
    now[0] += 1
    assert marks.idle(0, 5.0) == 9_700.0  # still receiving
    now[0] += 10
    assert marks.idle(0, 5.0) == 10_011.0  # quiet: close it
