"""Agents: thin glue from topics to state, rules and outputs.

  clicks ──check_devices──▶ by_click_id ──check_duplicates──▶ by_session ──judge_clicks──▶ verdicts
     │ bad input → clicks-dlq                                               └─▶ by_scope ──raise_alerts──▶ fraud-alerts
  blacklist-updates ──apply_blacklist_updates──▶ blacklist (global table, every worker)

Each stage owns the state keyed like its input topic, adds its features to the in-flight
record and forwards exactly one record per accepted input.
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from fraudapp import alerts as alert_rule
from fraudapp import metrics, tables
from fraudapp.app import app, events, settings
from fraudapp.blacklist_updates import parse_update
from fraudapp.deadletters import dead_letter
from fraudapp.models import Features
from fraudapp.pipeline import InFlight, session_key
from fraudapp.rules.engine import judge
from fraudapp.rules.score import load_datacenter_ranges
from fraudapp.state.expiry import PartitionSweeper, window_expires_at
from fraudapp.state.sliding import DedupEntry, SessionUrlWindows, SlidingTimestamps
from fraudapp.topics import declare
from fraudapp.validate import Rejection, parse_click

topics = declare(app, settings)
s = settings
SOURCE_HEADER = "fraudapp-source"
# A click stamped far in the future must not advance stream time and expire everyone's
# state: watermarks never run further than this ahead of the wall clock.
MAX_FUTURE_SKEW = 300.0

datacenter = load_datacenter_ranges(s.datacenter_ranges_path) if s.datacenter_ranges_path else None

alert_policy = alert_rule.AlertPolicy(
    window_seconds=s.alert_window_seconds,
    min_clicks=s.alert_min_clicks,
    fraud_ratio=s.alert_fraud_ratio,
    grace_seconds=s.alert_grace_seconds,
)


class Watermarks:
    """Newest event time seen per partition of one stage (stream time)."""

    def __init__(self) -> None:
        self._max: dict[int, float] = {}
        self._last_event_wall: dict[int, float] = {}

    def advance(self, partition: int, ts: float) -> float:
        now = time.time()
        ts = min(ts, now + MAX_FUTURE_SKEW)
        current = self._max.get(partition, ts)
        current = max(current, ts)
        self._max[partition] = current
        self._last_event_wall[partition] = now
        return current

    def idle(self, partition: int, idle_seconds: float) -> float:
        """Stream time of a partition that may have gone quiet: after `idle_seconds`
        without events, the wall clock stands in for it (so the last windows close)."""
        now = time.time()
        current = self._max.get(partition, 0.0)
        if now - self._last_event_wall.get(partition, 0.0) > idle_seconds:
            current = max(current, now)
            self._max[partition] = current
        return current


device_sweeper = PartitionSweeper(
    tables.device_clicks,
    lambda _k, v: SlidingTimestamps.json_expires_at(v, s.click_spam_window_seconds, s.lateness_seconds),
)
dedup_sweeper = PartitionSweeper(
    tables.click_ids, lambda _k, v: DedupEntry.json_expires_at(v, s.dedup_seconds, s.lateness_seconds)
)
session_sweeper = PartitionSweeper(
    tables.session_url_clicks,
    lambda _k, v: SessionUrlWindows.json_expires_at(v, s.session_url_window_seconds, s.lateness_seconds),
)
# Faust's windowed tables are swept by the same mechanism (see state/expiry.py for why).
window_sweepers = [
    PartitionSweeper(wrapper.table, window_expires_at(wrapper.table.window.expires))
    for wrapper in (tables.device_clicks_per_minute, tables.device_clicks_10s_hopping)
]
device_marks, dedup_marks, session_marks, alert_marks = Watermarks(), Watermarks(), Watermarks(), Watermarks()


async def reject(event: faust.types.EventT, rejection: Rejection) -> None:
    msg = event.message
    record = dead_letter(
        rejection, topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value
    )
    await topics.dlq.send(key=msg.key, value=orjson.dumps(record))
    metrics.dead_letters.labels(rejection.error).inc()


def _source_of(event: faust.types.EventT) -> tuple[str, int, int]:
    msg = event.message
    for name, value in msg.headers or ():
        if name == SOURCE_HEADER:
            topic, partition, offset = orjson.loads(value)
            return topic, partition, offset
    return msg.topic, msg.partition, msg.offset


@app.agent(topics.device_input)
async def check_devices(stream: faust.StreamT[bytes]) -> None:
    """Validate, count the device's recent clicks, forward keyed by click_id."""
    async for event in events(stream):
        msg = event.message
        click = parse_click(event.value, s.max_click_bytes)
        if isinstance(click, Rejection):
            await reject(event, click)
            continue
        device_key = click.device_id.encode()
        if msg.key != device_key:
            # Keyed otherwise (or not at all): move it to the device's partition first.
            source = orjson.dumps([msg.topic, msg.partition, msg.offset])
            await topics.clicks_rekeyed.send(key=device_key, value=msg.value, headers={SOURCE_HEADER: source})
            continue
        window = SlidingTimestamps.from_json(tables.device_clicks.get(click.device_id))
        prior = window.aggregate(click.ts, s.click_spam_window_seconds, s.lateness_seconds)
        tables.device_clicks[click.device_id] = window.to_json()
        tables.device_clicks_per_minute[click.device_id] += 1
        tables.device_clicks_10s_hopping[click.device_id] += 1
        inflight = InFlight(click, _source_of(event), time.time(), {"device_prior": prior})
        await topics.by_click_id.send(key=click.click_id.encode(), value=inflight.encode())
        watermark = device_marks.advance(msg.partition, click.ts)
        device_sweeper.maybe_sweep(msg.partition, watermark)
        for sweeper in window_sweepers:
            # these windows follow Kafka message time, not event time
            sweeper.maybe_sweep(msg.partition, msg.timestamp or watermark)


@app.agent(topics.by_click_id)
async def check_duplicates(stream: faust.StreamT[bytes]) -> None:
    """Remember each click_id's first acceptance; mark replays; forward keyed by session."""
    async for event in events(stream):
        inflight = InFlight.decode(event.value)
        click = inflight.click
        entry = DedupEntry.from_json(tables.click_ids.get(click.click_id))
        duplicate_of, kept = DedupEntry.check(entry, click.ts, s.dedup_seconds)
        if kept is not entry:
            tables.click_ids[click.click_id] = kept.to_json()
        inflight.features["duplicate_of"] = duplicate_of
        await topics.by_session.send(key=session_key(click), value=inflight.encode())
        partition = event.message.partition
        dedup_sweeper.maybe_sweep(partition, dedup_marks.advance(partition, click.ts))


@app.agent(topics.by_session)
async def judge_clicks(stream: faust.StreamT[bytes]) -> None:
    """Count the session's clicks on the URL, apply the rules, write the verdict."""
    async for event in events(stream):
        inflight = InFlight.decode(event.value)
        click = inflight.click
        session_prior = None
        if click.session_id and click.url:
            windows = SessionUrlWindows.from_json(tables.session_url_clicks.get(click.session_id))
            session_prior = windows.aggregate(click.url, click.ts, s.session_url_window_seconds, s.lateness_seconds)
            tables.session_url_clicks[click.session_id] = windows.to_json()
        now = time.time()
        index = tables.blacklist.index
        features = Features(
            device_prior_in_window=inflight.features["device_prior"],
            session_url_prior_in_window=session_prior,
            duplicate_of_ts=inflight.features["duplicate_of"],
            ip_entry=index.match_ip(click.ip, now),
            device_entry=index.match_device(click.device_id, now),
            ip_near_blacklisted=index.near_ip(click.ip, now),
        )
        verdict = judge(click, features, s, now, datacenter=datacenter)
        body = verdict.to_dict()
        body["source"] = inflight.source
        await topics.verdicts.send(key=click.device_id.encode(), value=orjson.dumps(body))
        for scope in alert_rule.scope_keys(click.campaign_id, click.publisher_id):
            record = {"ts": click.ts, "verdict": verdict.verdict, "fraud_types": verdict.fraud_types}
            await topics.alert_scopes.send(key=scope.encode(), value=orjson.dumps(record))
        record_verdict_metrics(body, inflight.received_at, now)
        partition = event.message.partition
        session_sweeper.maybe_sweep(partition, session_marks.advance(partition, click.ts))


def record_verdict_metrics(verdict: dict[str, Any], received_at: float, now: float) -> None:
    metrics.verdicts.labels(verdict["verdict"]).inc()
    for reason in verdict["reasons"]:
        metrics.rule_hits.labels(reason["rule"]).inc()
    if verdict["verdict"] == "fraud":
        for fraud_type in verdict["fraud_types"]:
            metrics.fraud_types.labels(fraud_type).inc()
    metrics.decision_latency.observe(max(0.0, now - verdict["ts"]))
    metrics.processing_latency.observe(max(0.0, now - received_at))


@app.agent(topics.alert_scopes)
async def raise_alerts(stream: faust.StreamT[bytes]) -> None:
    """Count judged clicks per campaign/publisher window; alert once when a window closes."""
    async for event in events(stream):
        partition = event.message.partition
        record = orjson.loads(event.value)
        scope = event.key.decode()
        if "tick" in record:
            watermark = alert_marks.idle(partition, alert_policy.grace_seconds)
        else:
            state = tables.alert_windows.get(scope) or alert_rule.initialize()
            alert_rule.aggregate(state, record["ts"], record["verdict"], record["fraud_types"], alert_policy)
            tables.alert_windows[scope] = state
            watermark = alert_marks.advance(partition, record["ts"])
        await alert_closer.maybe_close(partition, watermark)


class AlertCloser:
    """Closes due alert windows of a partition, at most once per `every_seconds`."""

    def __init__(self, every_seconds: float = 0.5) -> None:
        self.every_seconds = every_seconds
        self._next_run: dict[int, float] = {}

    async def maybe_close(self, partition: int, watermark: float) -> None:
        now = time.monotonic()
        if now < self._next_run.get(partition, 0.0):
            return
        self._next_run[partition] = now + self.every_seconds
        for scope, state in _alert_items(partition):
            before = (len(state["open"]), len(state["closed"]))
            raised = alert_rule.close(state, scope, watermark, alert_policy)
            for alert in raised:
                await topics.alerts.send(key=alert["id"].encode(), value=orjson.dumps(alert))
                metrics.alerts.labels(alert["scope"]).inc()
            if alert_rule.is_empty(state):
                del tables.alert_windows[scope]
            elif (len(state["open"]), len(state["closed"])) != before:
                tables.alert_windows[scope] = state


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


def _alert_items(partition: int) -> list[tuple[str, dict[str, Any]]]:
    store = tables.alert_windows.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return list(tables.alert_windows.items())
    db = dbs.get(partition)
    if db is None:
        return []
    offset_key = getattr(store, "offset_key", None)
    return [(orjson.loads(k), orjson.loads(v)) for k, v in db.items() if k != offset_key]


@app.agent(topics.blacklist_updates)
async def apply_blacklist_updates(stream: faust.StreamT[bytes]) -> None:
    """Apply add/remove entries to the global blacklist table (and this worker's index)."""
    async for event in events(stream):
        update = parse_update(event.value, now=time.time())
        if isinstance(update, Rejection):
            await reject(event, update)
            continue
        key, entry = update
        if entry is None:
            if key in tables.blacklist:
                del tables.blacklist[key]
            tables.blacklist.index_apply(key, None)
        else:
            tables.blacklist[key] = entry
            tables.blacklist.index_apply(key, entry)
        metrics.blacklist_entries.set(len(tables.blacklist.index))
