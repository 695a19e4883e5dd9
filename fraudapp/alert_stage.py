"""The alert stage: judged clicks counted per campaign and publisher window (partials from
the verdict stage, `fraudapp.agents.judge_clicks`); one alert per window and scope when it
closes (contract §5, rules in `fraudapp.alerts`).

  verdicts-by-scope ──raise_alerts──▶ fraud-alerts      (+ a 1 s tick per owned partition)
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from fraudapp import alerts as alert_rule
from fraudapp import metrics, tables
from fraudapp.agents import BATCH_LINGER, alert_policy
from fraudapp.app import app, topics
from fraudapp.batching import Outbox, TableCache, batches, by_partition, in_partition_of
from fraudapp.state.streamtime import Watermarks

alert_marks = Watermarks()


@app.agent(topics.alert_scopes)
async def raise_alerts(stream: faust.StreamT[bytes]) -> None:
    """Count judged clicks per campaign/publisher window; alert once when a window closes."""
    outbox = Outbox(app)
    async for batch in batches(stream, BATCH_LINGER):
        for partition, group in by_partition(batch).items():
            with in_partition_of(group[-1]):
                states: TableCache[str, dict[str, Any]] = TableCache(
                    tables.alert_windows, _alert_state, _same, partition, outbox
                )
                watermark = 0.0
                for event in group:
                    record = orjson.loads(event.value)
                    if "tick" in record:
                        watermark = max(watermark, alert_marks.idle(partition, alert_policy.grace_seconds))
                        continue
                    start, partial = alert_rule.decode_partial(record)
                    scope = event.key.decode()
                    state = states.get(scope)
                    alert_rule.aggregate_partial(state, start, partial)
                    states.put(scope, state)
                    watermark = max(watermark, alert_marks.advance(partition, partial.newest_ts))
                states.flush()
                alert_closer.maybe_close(partition, watermark, states, outbox)
        await outbox.flush()


def _alert_state(raw: dict[str, Any] | None) -> dict[str, Any]:
    return raw or alert_rule.initialize()


def _same(value: Any) -> Any:
    return value


class AlertCloser:
    """Closes due alert windows of a partition, at most once per `every_seconds`; the alerts
    and the windows' new state go out with the batch (`outbox`), in its transaction."""

    def __init__(self, every_seconds: float = 0.5) -> None:
        self.every_seconds = every_seconds
        self._next_run: dict[int, float] = {}

    def maybe_close(self, partition: int, watermark: float, states: TableCache[str, dict[str, Any]],
                    outbox: Outbox) -> None:  # fmt: skip
        now = time.monotonic()
        if now < self._next_run.get(partition, 0.0):
            return
        self._next_run[partition] = now + self.every_seconds
        for scope, state in states.stored_items():
            before = (len(state["open"]), len(state["closed"]))
            raised = alert_rule.close(state, scope, watermark, alert_policy)
            for alert in raised:
                outbox.add(topics.alerts, alert["id"].encode(), orjson.dumps(alert))
                metrics.alerts.labels(alert["scope"]).inc()
            if alert_rule.is_empty(state):
                states.delete(scope)
            elif (len(state["open"]), len(state["closed"])) != before:
                states.put(scope, state)
        states.flush()


alert_closer = AlertCloser()


@app.timer(interval=1.0)
async def tick_alert_windows() -> None:
    """A tick into each alert partition this worker owns, so that quiet windows close."""
    name = topics.alert_scopes.get_topic_name()
    for tp in app.assignor.assigned_actives():
        if tp.topic == name:
            await topics.alert_scopes.send(
                key=b"__tick__", value=orjson.dumps({"tick": time.time()}), partition=tp.partition
            )
