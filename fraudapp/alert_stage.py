"""The alert stage: judged clicks counted per campaign and publisher window (partials that
the verdict stage sends, `AlertPartials`); one alert per window and scope when it closes
(contract §5, rules in `fraudapp.alerts`).

  verdicts-by-scope ──raise_alerts──▶ fraud-alerts      (+ a 1 s tick per owned partition)
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from fraudapp import alerts as alert_rule
from fraudapp import metrics, tables
from fraudapp.app import app, settings, topics
from fraudapp.batching import EventT, Outbox, TableCache
from fraudapp.models import Click
from fraudapp.stage import Stage
from fraudapp.state.streamtime import Watermarks

alert_policy = alert_rule.AlertPolicy(
    window_seconds=settings.alert_window_seconds,
    min_clicks=settings.alert_min_clicks,
    fraud_ratio=settings.alert_fraud_ratio,
    grace_seconds=settings.alert_grace_seconds,
)


def policy_in_force() -> alert_rule.AlertPolicy:
    """The alert policy of the rule set in force when a window closes (its window size and
    grace are the deployment's: a rule set cannot change them, see ruleset.FIXED_SETTINGS)."""
    rules = tables.rule_sets.live.for_click(None, None).settings
    if (rules.alert_min_clicks, rules.alert_fraud_ratio) == (alert_policy.min_clicks, alert_policy.fraud_ratio):
        return alert_policy
    return alert_rule.AlertPolicy(alert_policy.window_seconds, rules.alert_min_clicks, rules.alert_fraud_ratio,
                                  alert_policy.grace_seconds)


class AlertPartials:
    """The verdict stage's judged clicks summed per (scope, window) over one batch: one
    record per scope and window goes to the alert stage, not one per click."""

    def __init__(self) -> None:
        self.partials: dict[tuple[str, float], alert_rule.Partial] = {}

    def add(self, click: Click, verdict: dict[str, Any]) -> None:
        start = alert_rule.window_start(click.ts, alert_policy.window_seconds)
        for scope in alert_rule.scope_keys(click.campaign_id, click.publisher_id):
            partial = self.partials.get((scope, start))
            if partial is None:
                partial = self.partials[(scope, start)] = alert_rule.Partial()
            partial.add(verdict["verdict"], verdict["fraud_types"], click.ts)

    def send(self, outbox: Outbox) -> None:
        partials, self.partials = self.partials, {}
        for (scope, start), partial in partials.items():
            outbox.add(topics.alert_scopes, scope.encode(), orjson.dumps(alert_rule.encode_partial(start, partial)))


alert_partials = AlertPartials()
alert_marks = Watermarks()


def count_alert_partials(partition: int, group: list[EventT], states: TableCache[str, dict[str, Any]],
                         _outbox: Outbox) -> float:  # fmt: skip
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
    return watermark


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
        policy = policy_in_force()
        for scope, state in states.stored_items():
            before = (len(state["open"]), len(state["closed"]))
            raised = alert_rule.close(state, scope, watermark, policy)
            for alert in raised:
                outbox.add(topics.alerts, alert["id"].encode(), orjson.dumps(alert))
                metrics.alerts.labels(alert["scope"]).inc()
            if alert_rule.is_empty(state):
                states.delete(scope)
            elif (len(state["open"]), len(state["closed"])) != before:
                states.put(scope, state)


def _alert_state(raw: dict[str, Any] | None) -> dict[str, Any]:
    return raw or alert_rule.initialize()


def _same(value: Any) -> Any:
    return value


alert_closer = AlertCloser()
alert_stage = Stage(
    tables.alert_windows, _alert_state, count_alert_partials, alert_closer.maybe_close, settings.batch_linger,
    dump=_same,
)


@app.agent(topics.alert_scopes)
async def raise_alerts(stream: faust.StreamT[bytes]) -> None:
    """Count judged clicks per campaign/publisher window; alert once when a window closes."""
    await alert_stage.run(stream)


# Ticks carry no state, and a timer has no input partition whose transaction they could join.
tick_outbox = Outbox(app, transactional=False)


async def tick_owned_partitions() -> None:
    """A tick into each alert partition this worker owns, so that quiet windows close."""
    name = topics.alert_scopes.get_topic_name()
    tick = orjson.dumps({"tick": time.time()})
    for tp in app.assignor.assigned_actives():
        if tp.topic == name:
            tick_outbox.add(topics.alert_scopes, b"__tick__", tick, partition=tp.partition)
    await tick_outbox.flush()


@app.timer(interval=1.0)
async def tick_alert_windows() -> None:
    await tick_owned_partitions()
