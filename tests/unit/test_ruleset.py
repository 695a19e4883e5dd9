"""fraudapp/ruleset.py: a rule set document, checked whole by field path, resolved per click
(the set, then the publisher's override, then the campaign's), the environment as version 0."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.models import HARD_FRAUD_TYPES, Features
from fraudapp.rules.engine import judge
from fraudapp.ruleset import SETTING_OF, WINDOW_SETTINGS, RuleSetError, parse, version_zero
from fraudapp.settings import Settings
from tests.unit.test_engine import HUMAN, NOW

# windows up to an hour: the deployment's state horizon, which no rule set may exceed
ENV = Settings.from_env({"FRAUDAPP_CLICK_SPAM_THRESHOLD": "4", "FRAUDAPP_CLICK_SPAM_WINDOW_SECONDS": "3600"})


def spam(threshold: int | None = None, window: float | None = None, enabled: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if threshold is not None:
        body["threshold"] = threshold
    if window is not None:
        body["window_seconds"] = window
    if enabled is not None:
        body["enabled"] = enabled
    return {"rules": {"click_spam": body}}


DOC = {
    "name": "default", "version": 7,
    **spam(threshold=5),
    "overrides": {
        "publisher": {"pub-1": spam(threshold=8, window=20)},
        "campaign": {"camp-1": spam(threshold=2), "camp-off": spam(enabled=False)},
    },
}


@pytest.mark.parametrize(
    ("campaign", "publisher", "threshold", "window", "click_spam_on"),
    [
        (None, None, 5, 3600.0, True),  # the set's own value over the environment's 4
        ("camp-x", "pub-x", 5, 3600.0, True),  # no override for either
        (None, "pub-1", 8, 20.0, True),  # the publisher's
        ("camp-1", "pub-1", 2, 20.0, True),  # the campaign's threshold wins; the publisher's window stays
        ("camp-1", None, 2, 3600.0, True),
        ("camp-off", None, 5, 3600.0, False),
    ],
)
def test_a_click_is_judged_under_its_campaign_then_publisher_then_the_set(
    campaign: str | None, publisher: str | None, threshold: int, window: float, click_spam_on: bool
) -> None:
    judging = parse(DOC, ENV).for_click(campaign, publisher)
    assert judging.settings.click_spam_threshold == threshold
    assert judging.settings.click_spam_window_seconds == window
    assert ("click_spam" in judging.enabled) is click_spam_on
    assert judging.version == 7
    assert judging.settings.session_url_threshold == ENV.session_url_threshold  # not in the document: the env's


def test_the_environment_is_version_zero() -> None:
    zero = version_zero(ENV)
    judging = zero.for_click("any", "any")
    assert judging.version == 0
    assert judging.settings == ENV
    assert judging.enabled == frozenset(HARD_FRAUD_TYPES) | {"device_farm"}
    assert parse({"version": 0}, ENV).for_click("a", "b") == judging


@pytest.mark.parametrize(
    ("rules", "enabled", "limits"),
    [
        ({}, True, (5, 8, 20, 0.9)),
        ({"device_farm": {"enabled": False}}, False, (5, 8, 20, 0.9)),
        ({"device_farm": {"fingerprint_devices": 3, "address_devices": 12, "network_devices": 40,
                          "publisher_share": 0.75}}, True, (3, 12, 40, 0.75)),
    ],
)
def test_a_rule_set_tunes_and_switches_device_farm(rules: dict, enabled: bool, limits: tuple) -> None:
    judging = parse({"version": 1, "rules": rules}, ENV).for_click("a", "b")
    assert ("device_farm" in [r.name for r in judging.farm_rules()]) is enabled
    s = judging.settings
    assert (s.farm_fingerprint_devices, s.farm_address_devices, s.farm_network_devices,
            s.farm_publisher_share) == limits


def test_device_farm_limits_are_checked() -> None:
    with pytest.raises(RuleSetError) as err:
        parse({"version": 1, "rules": {"device_farm": {"fingerprint_devices": 1, "publisher_share": 1.5}}}, ENV)
    assert [path for path, _ in err.value.errors] == ["rules.device_farm.fingerprint_devices",
                                                      "rules.device_farm.publisher_share"]


@pytest.mark.parametrize(
    ("document", "paths"),
    [
        ({}, [""]),  # no version
        ({"version": -1}, ["version"]),
        ({"version": 1, "rules": {"click_spam": {"threshold": 0}}}, ["rules.click_spam.threshold"]),
        ({"version": 1, "rules": {"click_spam": {"window_seconds": 0}}}, ["rules.click_spam.window_seconds"]),
        ({"version": 1, "rules": {"click_spam": {"treshold": 3}}}, ["rules.click_spam"]),  # a typo is not ignored
        ({"version": 1, "rules": {"no_such_rule": {}}}, ["rules"]),
        ({"version": 1, "rules": {"ip_blacklist": {"enabled": "no"}}}, ["rules.ip_blacklist.enabled"]),
        ({"version": 1, "score": {"clean_above": 101}}, ["score.clean_above"]),
        ({"version": 1, "alerts": {"fraud_ratio": 0}}, ["alerts.fraud_ratio"]),
        ({"version": 1, "overrides": {"campaign": {"c": {"alerts": {}}}}}, ["overrides.campaign.c"]),
        ({"version": 1, "overrides": {"campaign": {"c": spam(threshold=0)}}},
         ["overrides.campaign.c.rules.click_spam.threshold"]),
        # several at once, each by its path
        ({"version": "1", "rules": {"session_url_repeat": {"threshold": 1.5}}},
         ["rules.session_url_repeat.threshold", "version"]),
        # tiers: checked after the schema, on every level as it applies to clicks
        ({"version": 1, "score": {"clean_above": 30, "suspicious_above": 50}}, ["score"]),
        ({"version": 1, "overrides": {"publisher": {"p": {"score": {"suspicious_above": 80}}}}},
         ["overrides.publisher.p.score"]),  # 80 over the environment's clean_above 70
        ([], [""]),
        # state is kept for the environment's windows: a rule set may not look further back
        ({"version": 1, "rules": {"session_url_repeat": {"window_seconds": 11}}},
         ["rules.session_url_repeat.window_seconds"]),
        ({"version": 1, "overrides": {"campaign": {"c": {"rules": {"duplicate_click": {"horizon_seconds": 90000}}}}}},
         ["overrides.campaign.c.rules.duplicate_click.horizon_seconds"]),
        ({"version": 1, "alerts": {"window_seconds": 30}}, ["alerts.window_seconds"]),  # open windows: fixed size
    ],
)
def test_an_invalid_document_is_rejected_whole_with_every_field_path(document: Any, paths: list[str]) -> None:
    with pytest.raises(RuleSetError) as raised:
        parse(document, ENV)
    assert sorted({path for path, _ in raised.value.errors}) == sorted(paths)
    assert str(raised.value)  # one line naming them


def test_a_disabled_rule_does_not_fire_for_that_campaign_only() -> None:
    ruleset = parse(DOC, ENV)
    features = Features(device_prior_in_window=6)  # over every threshold above

    def fraud_types(campaign: str) -> list[str]:
        judging = ruleset.for_click(campaign, None)
        click = replace(HUMAN, campaign_id=campaign)
        return judge(click, features, judging.settings, NOW, rules=judging.hard_rules()).fraud_types

    assert fraud_types("camp-1") == ["click_spam"]
    assert fraud_types("camp-off") == []


# --- against a brute-force reference ------------------------------------------------------

ids = st.sampled_from(["a", "b", "c"])
thresholds = st.one_of(st.none(), st.integers(1, 50))
windows = st.one_of(st.none(), st.floats(0.5, 3600, allow_nan=False))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    def level() -> dict[str, Any]:
        return spam(threshold=draw(thresholds), window=draw(windows), enabled=draw(st.one_of(st.none(), st.booleans())))

    return {
        "version": draw(st.integers(1, 10**6)),
        **level(),
        "overrides": {
            "campaign": {key: level() for key in draw(st.sets(ids))},
            "publisher": {key: level() for key in draw(st.sets(ids))},
        },
    }


def reference(document: dict[str, Any], key: str, campaign: str | None, publisher: str | None, default: Any) -> Any:
    """The most specific level that sets `key` of click_spam: campaign, publisher, the set."""
    overrides = document["overrides"]
    levels = [overrides["campaign"].get(campaign or ""), overrides["publisher"].get(publisher or ""), document]
    for level in levels:
        if level is not None and key in level["rules"]["click_spam"]:
            return level["rules"]["click_spam"][key]
    return default


@settings(max_examples=300, deadline=None)
@given(documents(), st.one_of(st.none(), ids), st.one_of(st.none(), ids))
def test_for_click_matches_the_reference(document: dict[str, Any], campaign: str | None, publisher: str | None) -> None:
    judging = parse(document, ENV).for_click(campaign, publisher)
    assert judging.settings.click_spam_threshold == reference(document, "threshold", campaign, publisher,
                                                              ENV.click_spam_threshold)
    assert judging.settings.click_spam_window_seconds == reference(document, "window_seconds", campaign, publisher,
                                                                   ENV.click_spam_window_seconds)
    assert ("click_spam" in judging.enabled) == reference(document, "enabled", campaign, publisher, True)


@settings(max_examples=200, deadline=None)
@given(documents())
def test_state_is_kept_for_the_largest_window_any_click_is_judged_under(document: dict[str, Any]) -> None:
    ruleset = parse(document, ENV)
    largest = ruleset.largest_windows()
    judged = [ruleset.for_click(c, p).settings for c in (None, "a", "b", "c") for p in (None, "a", "b", "c")]
    for name in WINDOW_SETTINGS:
        assert largest[name] == max(float(getattr(s, name)) for s in judged)


@settings(max_examples=200, deadline=None)
@given(documents())
def test_the_written_out_document_judges_every_click_the_same(document: dict[str, Any]) -> None:
    ruleset = parse(document, ENV)
    # every value written out: the env no longer matters (but for the state horizon)
    again = parse(ruleset.document(), Settings(click_spam_window_seconds=3600.0))
    for campaign in (None, "a", "b", "c"):
        for publisher in (None, "a", "b", "c"):
            one, two = ruleset.for_click(campaign, publisher), again.for_click(campaign, publisher)
            assert {f: getattr(one.settings, f) for f in SETTING_OF.values()} == {
                f: getattr(two.settings, f) for f in SETTING_OF.values()
            }
            assert (one.enabled, one.version) == (two.enabled, two.version)


def test_the_readme_example_is_a_valid_rule_set() -> None:
    from pathlib import Path

    import orjson

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("```json", text.index("**Rule sets**")) + len("```json")
    ruleset = parse(orjson.loads(text[start:text.index("```", start)]), Settings())
    judging = ruleset.for_click("c-17", "pub-9")
    assert judging.settings.click_spam_threshold == 6
    assert "session_url_repeat" not in judging.enabled
