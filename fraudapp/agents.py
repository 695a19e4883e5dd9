"""Agents: thin glue from topics to state, rules and outputs.

  clicks ──check_devices──▶ by_click_id ──check_duplicates──▶ by_session ──judge_clicks──▶ verdicts
     │ bad input → clicks-dlq                                               └─▶ by_scope ──raise_alerts──▶ fraud-alerts  (alert_stage.py)
  blacklist-updates ──apply_blacklist_updates──▶ blacklist (global table, every worker)

Each stage owns the state keyed like its input topic, adds its features to the in-flight
record and forwards exactly one record per accepted input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import faust
import orjson

from fraudapp import alerts as alert_rule
from fraudapp import metrics, tables
from fraudapp.app import app, events, settings, topics
from fraudapp.batching import EventT, Outbox, TableCache, batches, by_partition, in_partition_of
from fraudapp.blacklist_updates import parse_update
from fraudapp.deadletters import dead_letter
from fraudapp.expiry import PartitionSweeper
from fraudapp.models import Features
from fraudapp.pipeline import InFlight, session_key, unpack
from fraudapp.rules.engine import judge
from fraudapp.rules.score import load_datacenter_ranges
from fraudapp.state.sliding import DedupEntry, DeviceWindows, SessionUrlWindows
from fraudapp.state.streamtime import MultiTopicStreamTime, Watermarks
from fraudapp.validate import Rejection, parse_click

s = settings
# How long a busy stage waits for more events; bounds the latency batching adds per stage.
BATCH_LINGER = s.batch_linger_ms / 1000
SOURCE_HEADER = "fraudapp-source"

datacenter = load_datacenter_ranges(s.datacenter_ranges_path) if s.datacenter_ranges_path else None

alert_policy = alert_rule.AlertPolicy(
    window_seconds=s.alert_window_seconds,
    min_clicks=s.alert_min_clicks,
    fraud_ratio=s.alert_fraud_ratio,
    grace_seconds=s.alert_grace_seconds,
)


# A device's value serves click_spam and its own share of session_url_repeat.
DEVICE_WINDOW = max(s.click_spam_window_seconds, s.session_url_window_seconds)
device_sweeper = PartitionSweeper(
    tables.device_clicks, lambda _k, v: DeviceWindows.json_expires_at(v, DEVICE_WINDOW, s.lateness_seconds)
)
dedup_sweeper = PartitionSweeper(
    tables.click_ids, lambda _k, v: DedupEntry.json_expires_at(v, s.dedup_seconds, s.lateness_seconds)
)
session_sweeper = PartitionSweeper(
    tables.session_url_clicks,
    lambda _k, v: SessionUrlWindows.json_expires_at(v, s.session_url_window_seconds, s.lateness_seconds),
)
dedup_marks, session_marks = Watermarks(), Watermarks()
# clicks and clicks-by-device feed the same device windows: see state/streamtime.py
device_clock = MultiTopicStreamTime(topics.device_input.topics, idle_seconds=max(60.0, s.lateness_seconds))


def reject(outbox: Outbox, event: EventT, rejection: Rejection) -> None:
    msg = event.message
    record = dead_letter(
        rejection, topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key, value=msg.value
    )
    outbox.add(topics.dlq, msg.key, orjson.dumps(record))
    metrics.dead_letters.labels(rejection.error).inc()


def _source_of(event: EventT) -> tuple[str, int, int]:
    msg = event.message
    for name, value in msg.headers or ():
        if name == SOURCE_HEADER:
            topic, partition, offset = orjson.loads(value)
            return topic, partition, offset
    return msg.topic, msg.partition, msg.offset


def _dump(value: Any) -> Any:
    return value.to_json()


@app.agent(topics.device_input)
async def check_devices(stream: faust.StreamT[bytes]) -> None:
    """Validate, count the device's recent clicks (all, and per session and url), forward
    keyed by click_id."""
    outbox = Outbox(app)
    async for batch in batches(stream, BATCH_LINGER):
        for partition, group in by_partition(batch).items():
            with in_partition_of(group[-1]):
                windows: TableCache[str, DeviceWindows] = TableCache(
                    tables.device_clicks, DeviceWindows.from_json, _dump, partition, outbox
                )
                newest = 0.0
                newest_by_topic: dict[str, float] = {}
                for event in group:
                    msg = event.message
                    click = parse_click(event.value, s.max_click_bytes)
                    if isinstance(click, Rejection):
                        reject(outbox, event, click)
                        continue
                    device_key = click.device_id.encode()
                    if msg.key != device_key:
                        # Keyed otherwise (or not at all): move it to the device's partition first.
                        source = orjson.dumps([msg.topic, msg.partition, msg.offset])
                        outbox.add(topics.clicks_rekeyed, device_key, msg.value, {SOURCE_HEADER: source})
                        continue
                    window = windows.get(click.device_id)
                    features = {"device_prior": window.aggregate(click.ts, s.click_spam_window_seconds,
                                                                 s.lateness_seconds)}
                    if click.session_id and click.url:
                        # the device's own share, in Kafka order (see state/sliding.py)
                        features["session_own_prior"] = window.aggregate_session(
                            click.session_id, click.url, click.ts, s.session_url_window_seconds, s.lateness_seconds
                        )
                    windows.put(click.device_id, window)
                    newest = max(newest, click.ts)
                    newest_by_topic[msg.topic] = max(newest_by_topic.get(msg.topic, click.ts), click.ts)
                    inflight = InFlight(click, _source_of(event), time.time(), features)
                    outbox.add_packed(topics.by_click_id, click.click_id.encode(), inflight.encode())
                windows.flush()
                watermark = device_clock.advance(partition, newest_by_topic, app.consumer_generation_id)
                if watermark is not None:
                    device_sweeper.maybe_sweep(partition, watermark, outbox)
        await outbox.flush()


def _unpacked(group: list[EventT]) -> Iterator[InFlight]:
    for event in group:
        yield from unpack(event.value)


def _dedup(raw: float | None) -> DedupEntry | None:
    return DedupEntry.from_json(raw)


@app.agent(topics.by_click_id)
async def check_duplicates(stream: faust.StreamT[bytes]) -> None:
    """Remember each click_id's first acceptance; mark replays; forward keyed by session."""
    outbox = Outbox(app)
    async for batch in batches(stream, BATCH_LINGER):
        for partition, group in by_partition(batch).items():
            with in_partition_of(group[-1]):
                entries: TableCache[str, DedupEntry | None] = TableCache(tables.click_ids, _dedup, _dump, partition, outbox)
                newest = 0.0
                for inflight in _unpacked(group):
                    click = inflight.click
                    entry = entries.get(click.click_id)
                    duplicate_of, kept = DedupEntry.check(entry, click.ts, s.dedup_seconds)
                    if kept is not entry:
                        entries.put(click.click_id, kept)
                    inflight.features["duplicate_of"] = duplicate_of
                    outbox.add_packed(topics.by_session, session_key(click), inflight.encode())
                    newest = max(newest, click.ts)
                entries.flush()
                dedup_sweeper.maybe_sweep(partition, dedup_marks.advance(partition, newest), outbox)
        await outbox.flush()


def _sessions(raw: dict[str, Any] | None) -> SessionUrlWindows:
    return SessionUrlWindows.from_json(raw)


@app.agent(topics.by_session)
async def judge_clicks(stream: faust.StreamT[bytes]) -> None:
    """Add the session's other devices' clicks on the URL, apply the rules, write the verdict."""
    outbox = Outbox(app)
    async for batch in batches(stream, BATCH_LINGER):
        partials: dict[tuple[str, float], alert_rule.Partial] = {}
        for partition, group in by_partition(batch).items():
            with in_partition_of(group[-1]):
                sessions: TableCache[str, SessionUrlWindows] = TableCache(
                    tables.session_url_clicks, _sessions, _dump, partition, outbox
                )
                newest = 0.0
                for inflight in _unpacked(group):
                    click = inflight.click
                    session_prior = None
                    if click.session_id and click.url:
                        windows = sessions.get(click.session_id)
                        others = windows.aggregate(
                            click.url, click.ts, s.session_url_window_seconds, s.lateness_seconds, click.device_id
                        )
                        sessions.put(click.session_id, windows)
                        session_prior = inflight.features.get("session_own_prior", 0) + others
                    body = judge_click(inflight, session_prior)
                    outbox.add(topics.verdicts, click.device_id.encode(), orjson.dumps(body))
                    start = alert_rule.window_start(click.ts, alert_policy.window_seconds)
                    for scope in alert_rule.scope_keys(click.campaign_id, click.publisher_id):
                        partial = partials.get((scope, start))
                        if partial is None:
                            partial = partials[(scope, start)] = alert_rule.Partial()
                        partial.add(body["verdict"], body["fraud_types"], click.ts)
                    newest = max(newest, click.ts)
                sessions.flush()
                session_sweeper.maybe_sweep(partition, session_marks.advance(partition, newest), outbox)
        for (scope, start), partial in partials.items():
            outbox.add(topics.alert_scopes, scope.encode(), orjson.dumps(alert_rule.encode_partial(start, partial)))
        await outbox.flush()


def judge_click(inflight: InFlight, session_prior: int | None) -> dict[str, Any]:
    click = inflight.click
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
    body = judge(click, features, s, now, datacenter=datacenter).to_dict()
    body["source"] = inflight.source
    record_verdict_metrics(body, inflight.received_at, now)
    return body


def record_verdict_metrics(verdict: dict[str, Any], received_at: float, now: float) -> None:
    metrics.verdicts.labels(verdict["verdict"]).inc()
    for reason in verdict["reasons"]:
        metrics.rule_hits.labels(reason["rule"]).inc()
    if verdict["verdict"] == "fraud":
        for fraud_type in verdict["fraud_types"]:
            metrics.fraud_types.labels(fraud_type).inc()
    metrics.decision_latency.observe(max(0.0, now - verdict["ts"]))
    metrics.processing_latency.observe(max(0.0, now - received_at))


@app.agent(topics.blacklist_updates)
async def apply_blacklist_updates(stream: faust.StreamT[bytes]) -> None:
    """Apply add/remove entries to the global blacklist table (and this worker's index)."""
    outbox = Outbox(app)
    async for event in events(stream):
        update = parse_update(event.value, now=time.time())
        if isinstance(update, Rejection):
            reject(outbox, event, update)
            await outbox.flush()
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
