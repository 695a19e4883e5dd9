"""The agents without a broker (Faust's `test_context`): one stage's output feeds the next.

Topic sends are captured instead of produced; tables use the memory store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from fraudapp import agents
from fraudapp.app import app, settings
from fraudapp.batching import Outbox
from fraudapp.pipeline import InFlight, unpack
from fraudapp.routing import SOURCE_HEADER

Sent = list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def sent(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sent]:
    # pytest-asyncio 1.x has no event_loop fixture: bind the app to the running loop.
    app.loop = asyncio.get_running_loop()
    app.finalize()
    app.flow_control.resume()
    captured: Sent = []

    async def capture(outbox: Outbox) -> None:
        await outbox._pack()
        for topic, key, value, headers, partition in outbox.records:
            captured.append(
                (topic.get_topic_name(), {"key": key, "value": value, "headers": headers, "partition": partition})
            )
        outbox.records.clear()

    async def four_partitions(_outbox: Outbox, _topic: str) -> list[int]:
        return [0, 1, 2, 3]

    monkeypatch.setattr(Outbox, "flush", capture)
    monkeypatch.setattr(Outbox, "_partitions_of", four_partitions)
    yield captured


def of(sent: Sent, topic: str) -> list[dict[str, Any]]:
    return [kw for name, kw in sent if name == topic]


def items(sent: Sent, topic: str) -> list[InFlight]:
    """The in-flight clicks of a repartition topic (several per packed record)."""
    return [item for kw in of(sent, topic) for item in unpack(kw["value"])]


async def settled(count: Callable[[], int], expected: int, timeout: float = 10.0) -> None:
    """`put` returns once the stream holds the event; wait until the agent has handled it."""
    deadline = time.monotonic() + timeout
    while count() < expected:
        assert time.monotonic() < deadline, f"{count()} of {expected} outputs after {timeout} s"
        await asyncio.sleep(0.005)


async def run_pipeline(sent: Sent, raw_clicks: list[tuple[bytes | None, bytes]]) -> list[dict[str, Any]]:
    """clicks -> check_devices -> check_duplicates -> judge_clicks; returns the verdicts."""
    by_click_id = agents.topics.by_click_id.get_topic_name()
    by_session = agents.topics.by_session.get_topic_name()
    async with agents.check_devices.test_context() as stage:
        for key, value in raw_clicks:
            await stage.put(value, key=key)
        await settled(lambda: len(items(sent, by_click_id)) + len(of(sent, settings.topic_dlq)), len(raw_clicks))
    accepted = len(items(sent, by_click_id))
    async with agents.check_duplicates.test_context() as stage:
        for kw in of(sent, by_click_id):
            await stage.put(kw["value"], key=kw["key"], partition=kw["partition"])
        await settled(lambda: len(items(sent, by_session)), accepted)
    async with agents.judge_clicks.test_context() as stage:
        for kw in of(sent, by_session):
            await stage.put(kw["value"], key=kw["key"], partition=kw["partition"])
        await settled(lambda: len(of(sent, settings.topic_verdicts)), accepted)
    return [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_verdicts)]


def click(cid: str, device: str, ts: float, **extra: Any) -> tuple[bytes, bytes]:
    body = {"click_id": cid, "ts": ts, "device_id": device, "ip": "93.184.216.34",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36", "fingerprint": "fp",
            "mouse": {"moves": 12, "duration_ms": 900, "straightness": 0.5}, **extra}
    return device.encode(), orjson.dumps(body)


async def test_third_click_of_a_device_in_ten_seconds_is_spam(sent: Sent) -> None:
    t = time.time()
    verdicts = await run_pipeline(sent, [click(f"u{i}", "unit-dev-1", t + i) for i in range(3)])
    # clicks without a session are spread over the partitions of the judge stage: match by id
    by_id = {v["click_id"]: v for v in verdicts}
    assert [by_id[f"u{i}"]["fraud_types"] for i in range(3)] == [[], [], ["click_spam"]]
    assert by_id["u2"]["reasons"][0]["detail"] == "3rd click in 10 s (limit 2)"


async def test_replayed_click_is_a_duplicate(sent: Sent) -> None:
    t = time.time()
    replay = click("unit-dup", "unit-dev-2", t)
    verdicts = await run_pipeline(sent, [replay, replay])
    assert [v["fraud_types"] for v in verdicts] == [[], ["duplicate_click"]]


async def test_bad_input_goes_to_the_dead_letter_topic(sent: Sent) -> None:
    verdicts = await run_pipeline(sent, [(b"k", b"{oops"), (None, b"")])
    assert verdicts == []
    dead = [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_dlq)]
    assert [d["error"] for d in dead] == ["not_json", "empty"]
    assert dead[0]["value"] == "{oops" and dead[0]["key"] == "k"


async def test_click_keyed_otherwise_is_rekeyed_to_its_device(sent: Sent) -> None:
    _, value = click("unit-rekey", "unit-dev-3", time.time())
    rekeyed = agents.topics.clicks_rekeyed.get_topic_name()
    async with agents.check_devices.test_context() as stage:
        await stage.put(value, key=b"not-the-device")
        await settled(lambda: len(of(sent, rekeyed)), 1)
    (forwarded,) = of(sent, agents.topics.clicks_rekeyed.get_topic_name())
    assert forwarded["key"] == b"unit-dev-3" and forwarded["value"] == value
    assert SOURCE_HEADER in forwarded["headers"]


async def test_a_closed_window_with_enough_fraud_raises_one_alert(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> None:
    from fraudapp import alert_stage
    from fraudapp.alerts import Partial, encode_partial, window_start

    monkeypatch.setattr(alert_stage.alert_closer, "every_seconds", 0.0)  # close at every batch
    policy = alert_stage.alert_policy
    start = window_start(time.time() - 10 * policy.window_seconds, policy.window_seconds)
    fraud = Partial()
    for _ in range(policy.min_clicks):
        fraud.add("fraud", ["click_spam"], start + 1)
    later_ts = start + policy.window_seconds + policy.grace_seconds + 1  # moves the watermark past the grace
    later = Partial()
    later.add("clean", [], later_ts)
    alerts_topic = agents.topics.alerts.get_topic_name()
    async with alert_stage.raise_alerts.test_context() as stage:
        await stage.put(orjson.dumps(encode_partial(start, fraud)), key=b"campaign:c1", partition=0)
        await stage.put(orjson.dumps(encode_partial(window_start(later_ts, policy.window_seconds), later)),
                        key=b"campaign:c1", partition=0)  # fmt: skip
        await settled(lambda: len(of(sent, alerts_topic)), 1)
    (alert,) = [orjson.loads(kw["value"]) for kw in of(sent, alerts_topic)]
    assert (alert["scope"], alert["id"], alert["window_start"]) == ("campaign", "c1", start)
    assert (alert["clicks"], alert["fraud"], alert["top_fraud_types"]) == (
        policy.min_clicks, policy.min_clicks, {"click_spam": policy.min_clicks})


async def test_the_alert_tick_reaches_each_owned_alert_partition_through_the_outbox(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faust.types import TP

    from fraudapp import alert_stage

    scopes = agents.topics.alert_scopes.get_topic_name()
    owned = {TP(scopes, 1), TP(scopes, 3), TP(agents.topics.by_session.get_topic_name(), 0)}
    monkeypatch.setattr(app.assignor, "assigned_actives", lambda: owned)
    await alert_stage.tick_owned_partitions()
    ticks = of(sent, scopes)
    assert sorted(kw["partition"] for kw in ticks) == [1, 3]
    assert all("tick" in orjson.loads(kw["value"]) for kw in ticks)
