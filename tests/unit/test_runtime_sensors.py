"""FraudMonitor writes the same Prometheus series as faust-streaming's PrometheusMonitor
for the hooks it makes cheaper, also across a rebalance (which removes label children)."""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from prometheus_client import CollectorRegistry

from fraudapp.runtime.sensors import FraudMonitor


class Stream:
    shortlabel = "Stream: t-clicks-by-session"


class Owner:
    pass


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name.endswith(("_created", "_sum", "_bucket")):
                continue  # creation times and durations differ run to run; counts must not
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def drive(monitor: Any) -> None:
    stream = Stream()
    stream.task_owner = Owner()  # type: ignore[attr-defined]  # read by upstream's hook
    for rebalance in (False, True):
        if rebalance:
            monitor.on_rebalance_end(None, {"time_start": 0.0, "time_return": 0.0})
        for i, tp in enumerate([TP("clicks", 0), TP("clicks", 1), TP("t-clicks-by-session", 2)] * 3):
            message = ConsumerMessage(tp.topic, tp.partition, i, 0.0, 0, None, None, b"", None)
            monitor.track_tp_end_offset(tp, 100 + i)
            monitor.on_message_in(tp, i, message)
            state = monitor.on_stream_event_in(tp, i, stream, object())
            monitor.on_stream_event_out(tp, i, stream, object(), state)
            monitor.on_message_out(tp, i, message)


def test_the_series_are_upstreams() -> None:
    registries = []
    for cls in (PrometheusMonitor, FraudMonitor):
        registry = CollectorRegistry()
        drive(cls(metrics=FaustMetrics.create(registry, "faust")))
        registries.append(samples(registry))
    upstream, ours = registries
    assert ours == upstream
    assert ours[("faust_messages_received_per_topic_total", (("topic", "clicks"),))] == 6  # after the rebalance
    assert ours[("faust_events_runtime_ms_count", ())] == 18


def test_the_livelock_check_sees_each_partitions_last_event_like_upstreams() -> None:
    """Faust's livelock check (`verify_event_path`) reads `stream_inbound_time`: without it,
    a 30-minute soak logged "Stream has not started processing" 25,000 times."""
    upstream = PrometheusMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))
    ours = FraudMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))
    drive(upstream)
    drive(ours)
    assert set(ours.stream_inbound_time) == set(upstream.stream_inbound_time) == {
        TP("clicks", 0), TP("clicks", 1), TP("t-clicks-by-session", 2)}
