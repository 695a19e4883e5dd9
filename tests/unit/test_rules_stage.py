"""The rule-set agent without a broker: what it keeps, refuses, ends and audits."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from fraudapp import rules_stage, tables
from fraudapp.app import settings
from fraudapp.ruleset import DEFAULT_NAME, SHADOW_NAME
from fraudapp.shadow import ShadowBatch, ShadowReport
from tests.unit.test_agents import Sent, of, sent, settled  # noqa: F401 - the fixture


def record(name: str, version: int | None, action: str | None = None, **extra: Any) -> dict[str, Any]:
    headers = [("fraudapp-actor", b"cli:ann@host")] + ([("fraudapp-action", action.encode())] if action else [])
    value = orjson.dumps({"version": version, **extra}) if version is not None else None
    return {"key": name.encode(), "value": value, "headers": headers}


@pytest.fixture
def fresh_rule_sets(monkeypatch: pytest.MonkeyPatch) -> Any:
    rule_sets = tables.rule_sets
    monkeypatch.setattr(rules_stage, "settings", dataclasses.replace(settings, rules_history=2))

    async def no_broker() -> None:
        pass

    monkeypatch.setattr(rules_stage, "declare_outputs", no_broker)
    for key in list(rule_sets.keys()):
        rule_sets.pop(key, None)
    rule_sets.__post_init__()
    yield rule_sets
    for key in list(rule_sets.keys()):
        rule_sets.pop(key, None)
    rule_sets.__post_init__()


async def test_changes_are_applied_refused_ended_and_audited(sent: Sent, fresh_rule_sets: Any) -> None:  # noqa: F811
    rule_sets = fresh_rule_sets
    steps = [
        record(DEFAULT_NAME, 1, "set", rules={"click_spam": {"threshold": 5}}),
        record(SHADOW_NAME, 1),  # not above the live version: refused
        record(SHADOW_NAME, 2, rules={"click_spam": {"threshold": 1}}),
        record(DEFAULT_NAME, 2, "promote", rules={"click_spam": {"threshold": 1}}),  # ends the shadow run
        record("other", 3),  # not an applied name
        record(DEFAULT_NAME, 3),
        record(DEFAULT_NAME, 4),  # history keeps 2: version 1 and 2 go
    ]
    async with rules_stage.apply_rule_sets.test_context() as agent:
        for step in steps:
            await agent.put(step["value"], key=step["key"], headers=step["headers"])
        await settled(lambda: len(of(sent, settings.topic_rules_audit)), len(steps))
    audit = [orjson.loads(kw["value"]) for kw in of(sent, settings.topic_rules_audit)]
    assert [(a["action"], a["name"], a["version"], a["accepted"]) for a in audit] == [
        ("set", DEFAULT_NAME, 1, True),
        ("shadow", SHADOW_NAME, 1, False),
        ("shadow", SHADOW_NAME, 2, True),
        ("promote", DEFAULT_NAME, 2, True),
        ("set", "other", None, False),
        ("set", DEFAULT_NAME, 3, True),
        ("set", DEFAULT_NAME, 4, True),
    ]
    assert all(a["by"] == "cli:ann@host" for a in audit)
    assert "version in force, 1" in audit[1]["reason"] and "only 'default'" in audit[4]["reason"]
    assert [a["shadow_ended"] for a in audit] == [None, None, None, 2, None, None, None]
    assert [a["live_version_before"] for a in audit] == [0, 1, 1, 1, 2, 2, 3]
    dead = [orjson.loads(kw["value"])["detail"] for kw in of(sent, settings.topic_dlq)]
    assert len(dead) == 2
    assert rule_sets.live.version == 4 and rule_sets.shadow is None
    assert [tables.history_version(key) for key, _ in rule_sets.history()] == [3, 4]
    # a click forwarded under an older version is still judged under it on this worker
    assert rule_sets.judging(2, None, None).settings.click_spam_threshold == 1


def test_a_report_adds_batches_up_per_version_with_a_few_examples_each() -> None:
    report = ShadowReport()
    clean = {"verdict": "clean", "fraud_types": [], "campaign_id": "c"}
    spam = {"verdict": "fraud", "fraud_types": ["click_spam"], "campaign_id": "c"}
    for _ in range(3):
        batch = ShadowBatch(7)
        for n in range(4):
            batch.add({**clean, "click_id": str(n)}, spam if n % 2 else clean)
        report.add(batch.record())
    report.add({"shadow_version": "7", "clicks": 100})  # not a version: ignored
    got = report.of(7)
    assert got is not None
    assert (got["clicks"], got["flipped"], got["flip_ratio"]) == (12, 6, 0.5)
    assert got["transitions"] == {"clean>fraud": 6}
    assert got["by"] == {"fraud_types": {"click_spam": {"gained": 6, "lost": 0}}, "campaigns": {"c": 6}}
    assert len(got["examples"]["click_spam"]["gained"]) == 5
    assert report.of(8) is None
