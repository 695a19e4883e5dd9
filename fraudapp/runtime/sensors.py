"""Faust's Prometheus sensor hooks at a fraction of their cost per message and event.

faust-streaming 0.15.3's `PrometheusMonitor` runs, for every message and every event of
every stage, the base `Monitor`'s bookkeeping (running totals, per-message timestamps,
deques, a stream and task lookup by weak reference) and looks its metrics' label children
up by name (`labels(...)`, which also normalises the stream's label with a regular
expression per event). Measured on this machine: ~19 µs per message through the four hot
hooks. fraudapp reads none of the base bookkeeping but `stream_inbound_time`, which Faust's
own livelock check needs; the series on /metrics (the dashboard's
`faust_messages_received_per_topic_total`, `faust_events_runtime_ms`,
`faust_topic_partition_end_offset`, ...) stay the same, with label children kept per topic,
partition and stream. Checked against faust-streaming 0.15.3 and prometheus-client 0.26 (fraudapp/runtime/versions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from time import monotonic
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor


def use_cheaper_hooks(app: Any) -> None:
    """Replace the PrometheusMonitor `setup_prometheus_sensors` installed with a
    FraudMonitor on the same metrics."""
    app.monitor = FraudMonitor(metrics=app.monitor._metrics)


class FraudMonitor(PrometheusMonitor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._per_topic: dict[str, Any] = {}
        self._per_partition: dict[Any, Any] = {}
        self._end_offsets: dict[Any, Any] = {}
        self._per_stream: dict[Any, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        m = self._metrics
        m.messages_received.inc()
        m.active_messages.inc()
        child = self._per_topic.get(tp.topic)
        if child is None:
            child = self._per_topic[tp.topic] = m.messages_received_per_topics.labels(topic=tp.topic)
        child.inc()
        child = self._per_partition.get(tp)
        if child is None:
            child = self._per_partition[tp] = m.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition
            )
        child.set(offset)

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self._metrics.active_messages.dec()

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, float]:
        m = self._metrics
        m.total_events.inc()
        m.total_active_events.inc()
        child = self._per_stream.get(stream)
        if child is None:
            child = self._per_stream[stream] = m.total_events_per_stream.labels(
                stream=f"stream.{self._stream_label(stream)}.events"
            )
        child.inc()
        now = monotonic()
        # Faust's livelock check reads this: without it every busy partition logged "Stream
        # has not started processing" each few seconds after 5 minutes (30-min soak, 6 Dec)
        self.stream_inbound_time[tp] = now
        return {"time_in": now}

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: dict[str, float] | None = None) -> None:  # fmt: skip
        m = self._metrics
        m.total_active_events.dec()
        if state is not None:
            m.events_runtime_latency.observe((monotonic() - state["time_in"]) * 1000.0)

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        child = self._end_offsets.get(tp)
        if child is None:
            child = self._end_offsets[tp] = self._metrics.topic_partition_end_offset.labels(
                topic=tp.topic, partition=tp.partition
            )
        child.set(offset)

    def _clear_partition_related_metrics(self) -> None:
        # upstream removes the topics' and partitions' label children at a rebalance: new ones then
        self._per_topic.clear()
        self._per_partition.clear()
        self._end_offsets.clear()
        super()._clear_partition_related_metrics()


def count_sent(monitor: Any, per_topic: Mapping[str, int]) -> None:
    """Records produced past Faust's `Topic.send` (the stages' outboxes) counted in Faust's
    own `faust_topic_messages_sent_total{topic="topic.<name>"}`, which otherwise counts only
    what goes through `Topic.send`: the dashboard's messages-sent panel covers every topic."""
    sent = getattr(getattr(monitor, "_metrics", None), "topic_messages_sent", None)  # PrometheusMonitor
    if sent is None:
        return
    for topic, count in per_topic.items():
        sent.labels(topic=f"topic.{topic}").inc(count)
