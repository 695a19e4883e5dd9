"""Agents: thin glue from topics to state, rules and outputs.

  clicks ──check_devices──▶ by_click_id ──check_duplicates──▶ by_session ──judge_clicks──▶ verdicts
     │ bad input → clicks-dlq                                               └─▶ by_scope ──raise_alerts──▶ fraud-alerts  (alert_stage.py)
  blacklist-updates ──apply_blacklist_updates──▶ blacklist (global table, every worker)
  rules ──apply_rule_sets──▶ rule-sets (global table) + rules-audit; judge_clicks ──▶ rules-shadow  (rules_stage.py)
  check_devices ──▶ clicks-by-entity ──count_entities──▶ reputation (global table, read by judge_clicks)  (reputation_stage.py)

Each stage owns the state keyed like its input topic, adds its features to the in-flight
record and forwards exactly one record per accepted input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import faust
import orjson

from fraudapp import metrics, tables
from fraudapp.alert_stage import alert_partials
from fraudapp.app import app, events, settings, topics
from fraudapp.batching import EventT, Outbox, TableCache
from fraudapp.blacklist_updates import parse_update
from fraudapp.expiry import PartitionSweeper
from fraudapp.models import Click, Features
from fraudapp.pipeline import InFlight, session_key, unpack
from fraudapp.reputation_stage import entity_items, reputation_of
from fraudapp.routing import reject, rekey, source_of
from fraudapp.rules.engine import judge
from fraudapp.rules.score import load_datacenter_ranges
from fraudapp.rules_stage import shadow_runs
from fraudapp.ruleset import Judging
from fraudapp.stage import Stage
from fraudapp.state.sliding import DedupEntry, DeviceWindows, SessionUrlWindows
from fraudapp.state.streamtime import MultiTopicStreamTime, Watermarks
from fraudapp.validate import Rejection, parse_click

s = settings

datacenter = load_datacenter_ranges(s.datacenter_ranges_path) if s.datacenter_ranges_path else None

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


def check_device_clicks(partition: int, group: list[EventT], windows: TableCache[str, DeviceWindows],
                        outbox: Outbox) -> dict[str, float]:  # fmt: skip
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
            rekey(outbox, event, topics.clicks_rekeyed, device_key)
            continue
        # The rule set in force now decides this click at every stage (its version travels
        # with it); the state keeps the deployment's windows, the largest any version may use.
        judging = tables.rule_sets.live.for_click(click.campaign_id, click.publisher_id)
        rules = judging.settings
        window = windows.get(click.device_id)
        features: dict[str, Any] = {}
        candidate = tables.rule_sets.shadow
        if candidate is not None:  # counted before this click is added, as `aggregate` does
            features["shadow"] = shadow_device_counts(window, click, candidate.version,
                                                      candidate.for_click(click.campaign_id, click.publisher_id))
        features |= {
            "rules_version": judging.version,
            "device_prior": window.aggregate(click.ts, s.click_spam_window_seconds, s.lateness_seconds,
                                             rules.click_spam_window_seconds),
        }
        if click.session_id and click.url:
            # the device's own share, in Kafka order (see state/sliding.py)
            features["session_own_prior"] = window.aggregate_session(
                click.session_id, click.url, click.ts, s.session_url_window_seconds, s.lateness_seconds,
                rules.session_url_window_seconds,
            )
        windows.put(click.device_id, window)
        newest_by_topic[msg.topic] = max(newest_by_topic.get(msg.topic, click.ts), click.ts)
        inflight = InFlight(click, source_of(event), time.time(), features)
        outbox.add_packed(topics.by_click_id, click.click_id.encode(), inflight.encode())
        if s.reputation:
            for key, item in entity_items(click):
                outbox.add_packed(topics.by_entity, key, item)
    return newest_by_topic


def shadow_device_counts(window: DeviceWindows, click: Click, version: int, judging: Judging) -> dict[str, Any]:
    """The device stage's counts under a candidate rule set's windows (read only)."""
    rules = judging.settings
    counts: dict[str, Any] = {"version": version,
                              "device_prior": window.clicks.count_prior(click.ts, rules.click_spam_window_seconds)}
    if click.session_id and click.url:
        counts["session_own_prior"] = window.count_session_prior(
            click.session_id, click.url, click.ts, rules.session_url_window_seconds)
    return counts


def expire_devices(partition: int, newest_by_topic: dict[str, float], _windows: TableCache[str, DeviceWindows],
                   outbox: Outbox) -> None:  # fmt: skip
    watermark = device_clock.advance(partition, newest_by_topic, app.consumer_generation_id)
    if watermark is not None:
        device_sweeper.maybe_sweep(partition, watermark, outbox)


device_stage = Stage(tables.device_clicks, DeviceWindows.from_json, check_device_clicks, expire_devices, s.batch_linger)


@app.agent(topics.device_input)
async def check_devices(stream: faust.StreamT[bytes]) -> None:
    """Validate, count the device's recent clicks (all, and per session and url), forward
    keyed by click_id."""
    await device_stage.run(stream)


def _unpacked(group: list[EventT]) -> Iterator[InFlight]:
    for event in group:
        yield from unpack(event.value)


def check_click_ids(partition: int, group: list[EventT], entries: TableCache[str, DedupEntry | None],
                    outbox: Outbox) -> float:  # fmt: skip
    newest = 0.0
    for inflight in _unpacked(group):
        click = inflight.click
        entry = entries.get(click.click_id)
        horizon = judging_of(inflight).settings.dedup_seconds
        duplicate_of, kept = DedupEntry.check(entry, click.ts, horizon)
        shadow = inflight.features.get("shadow")
        if shadow is not None and (candidate := shadow_judging_of(inflight)) is not None:
            # the live entry under the candidate's horizon (see shadow.py on exactness)
            shadow["duplicate_of"] = DedupEntry.check(entry, click.ts, candidate.settings.dedup_seconds)[0]
        if kept is not entry:
            entries.put(click.click_id, kept)
        inflight.features["duplicate_of"] = duplicate_of
        outbox.add_packed(topics.by_session, session_key(click), inflight.encode())
        newest = max(newest, click.ts)
    return newest


def expire_click_ids(partition: int, newest: float, _entries: TableCache[str, DedupEntry | None],
                     outbox: Outbox) -> None:  # fmt: skip
    dedup_sweeper.maybe_sweep(partition, dedup_marks.advance(partition, newest), outbox)


dedup_stage = Stage(tables.click_ids, DedupEntry.from_json, check_click_ids, expire_click_ids, s.batch_linger)


@app.agent(topics.by_click_id)
async def check_duplicates(stream: faust.StreamT[bytes]) -> None:
    """Remember each click_id's first acceptance; mark replays; forward keyed by session."""
    await dedup_stage.run(stream)


def judge_session_clicks(partition: int, group: list[EventT], sessions: TableCache[str, SessionUrlWindows],
                         outbox: Outbox) -> float:  # fmt: skip
    newest = 0.0
    for inflight in _unpacked(group):
        click = inflight.click
        session_prior = None
        judging = judging_of(inflight)
        shadow = inflight.features.get("shadow")
        # a candidate the duplicate stage's worker did not know (it restarted) is left out
        candidate = shadow_judging_of(inflight) if shadow is not None and "duplicate_of" in shadow else None
        if click.session_id and click.url:
            windows = sessions.get(click.session_id)
            if candidate is not None:
                assert shadow is not None
                shadow["session_prior"] = shadow.get("session_own_prior", 0) + windows.count_prior(
                    click.url, click.ts, candidate.settings.session_url_window_seconds, exclude_device=click.device_id)
            others = windows.aggregate(
                click.url, click.ts, s.session_url_window_seconds, s.lateness_seconds, click.device_id,
                judging.settings.session_url_window_seconds,
            )
            sessions.put(click.session_id, windows)
            session_prior = inflight.features.get("session_own_prior", 0) + others
        body = judge_click(inflight, session_prior, judging, candidate)
        outbox.add(topics.verdicts, click.device_id.encode(), orjson.dumps(body))
        alert_partials.add(click, body)
        newest = max(newest, click.ts)
    return newest


def expire_sessions(partition: int, newest: float, _sessions: TableCache[str, SessionUrlWindows],
                    outbox: Outbox) -> None:  # fmt: skip
    session_sweeper.maybe_sweep(partition, session_marks.advance(partition, newest), outbox)


judge_stage = Stage(
    tables.session_url_clicks, SessionUrlWindows.from_json, judge_session_clicks, expire_sessions, s.batch_linger,
    end_batch=lambda outbox: (alert_partials.send(outbox), shadow_runs.send(outbox)),
)


@app.agent(topics.by_session)
async def judge_clicks(stream: faust.StreamT[bytes]) -> None:
    """Add the session's other devices' clicks on the URL, apply the rules, write the verdict."""
    await judge_stage.run(stream)


def judging_of(inflight: InFlight) -> Judging:
    """The rule set version the device stage took for this click (version 0 for a click
    forwarded before rule sets travelled with it)."""
    click = inflight.click
    return tables.rule_sets.judging(inflight.features.get("rules_version", 0), click.campaign_id, click.publisher_id)


def shadow_judging_of(inflight: InFlight) -> Judging | None:
    """The candidate rule set the device stage took for this click, if any."""
    click = inflight.click
    shadow = inflight.features.get("shadow")
    if shadow is None:
        return None
    return tables.rule_sets.shadow_judging(shadow["version"], click.campaign_id, click.publisher_id)


def judge_click(inflight: InFlight, session_prior: int | None, judging: Judging,
                candidate: Judging | None = None) -> dict[str, Any]:  # fmt: skip
    """The verdict under the live set; with a candidate, its verdict too, for the shadow run."""
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
        reputation=reputation_of(click),
    )
    verdict = judge(click, features, judging.settings, now, datacenter=datacenter, rules=judging.hard_rules(),
                    farm_rules=judging.farm_rules(), rules_version=judging.version)
    body = verdict.to_dict()
    body["source"] = inflight.source
    shadow = inflight.features.get("shadow")
    if candidate is not None and shadow is not None:
        shadow_features = replace(
            features, device_prior_in_window=shadow["device_prior"], session_url_prior_in_window=(
                shadow.get("session_prior") if session_prior is not None else None),
            duplicate_of_ts=shadow.get("duplicate_of"))
        other = judge(click, shadow_features, candidate.settings, now, datacenter=datacenter,
                      rules=candidate.hard_rules(), farm_rules=candidate.farm_rules(), rules_version=candidate.version)
        shadow_runs.add(candidate.version, body, other.to_dict(), inflight.source)
    record_verdict_metrics(body, inflight.received_at, now)
    return body


def record_verdict_metrics(verdict: dict[str, Any], received_at: float, now: float) -> None:
    metrics.verdicts.labels(verdict["verdict"]).inc()
    for reason in verdict["reasons"]:
        metrics.rule_hits.labels(reason["rule"]).inc()
    if verdict["verdict"] == "fraud":
        metrics.ivt.labels(verdict["ivt"]).inc()
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
