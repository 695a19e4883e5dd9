"""Contract §4 hard rules, one table per rule: (click, features, settings) -> hit detail or None."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fraudapp.models import HARD_FRAUD_TYPES, BlacklistEntry, Click, Features
from fraudapp.rules import (
    HARD_RULES,
    bot_user_agent,
    click_spam,
    device_blacklist,
    duplicate_click,
    ip_blacklist,
    session_url_repeat,
)
from fraudapp.rules.base import Rule, event_time, ordinal
from fraudapp.settings import Settings

S = Settings()
CLICK = Click(click_id="c1", ts=1732350000.5, device_id="d1", ip="203.0.113.7")
SESSION_CLICK = replace(CLICK, session_id="s1", url="https://shop.example/ad")

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def check(rule: Rule, click: Click, features: Features, expected: str | None, settings: Settings = S) -> None:
    hit = rule.apply(click, features, settings)
    if expected is None:
        assert hit is None
    else:
        assert hit is not None and hit.rule == rule.name
        assert hit.detail == expected


def test_rule_order_is_the_contract_order() -> None:
    assert tuple(r.name for r in HARD_RULES) == HARD_FRAUD_TYPES
    assert all(r.kind == "hard" for r in HARD_RULES)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (None, None),
        (
            BlacklistEntry("cidr", "203.0.113.0/24", reason="botnet"),
            "ip 203.0.113.7 in blacklisted range 203.0.113.0/24 (botnet)",
        ),
        (BlacklistEntry("ip", "203.0.113.7", reason="chargebacks"), "ip 203.0.113.7 is blacklisted (chargebacks)"),
        (BlacklistEntry("ip", "203.0.113.7"), "ip 203.0.113.7 is blacklisted"),
    ],
)
def test_ip_blacklist(entry: BlacklistEntry | None, expected: str | None) -> None:
    check(ip_blacklist.RULE, CLICK, Features(ip_entry=entry), expected)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (None, None),
        (BlacklistEntry("device", "d1", reason="emulator farm"), "device d1 is blacklisted (emulator farm)"),
        (BlacklistEntry("device", "d1"), "device d1 is blacklisted"),
    ],
)
def test_device_blacklist(entry: BlacklistEntry | None, expected: str | None) -> None:
    check(device_blacklist.RULE, CLICK, Features(device_entry=entry), expected)


@pytest.mark.parametrize(
    ("prior", "settings", "expected"),
    [
        (0, S, None),
        (1, S, None),
        (2, S, "3rd click in 10 s (limit 2)"),  # the contract's example
        (10, S, "11th click in 10 s (limit 2)"),
        (0, S.replace(click_spam_threshold=0), "1st click in 10 s (limit 0)"),
        (4, S.replace(click_spam_threshold=5, click_spam_window_seconds=0.5), None),
        (5, S.replace(click_spam_threshold=5, click_spam_window_seconds=0.5), "6th click in 0.5 s (limit 5)"),
    ],
)
def test_click_spam(prior: int, settings: Settings, expected: str | None) -> None:
    check(click_spam.RULE, CLICK, Features(device_prior_in_window=prior), expected, settings)


@pytest.mark.parametrize(
    ("click", "prior", "expected"),
    [
        (SESSION_CLICK, None, None),
        (SESSION_CLICK, 0, None),
        (SESSION_CLICK, 1, None),
        (SESSION_CLICK, 2, "3rd click on https://shop.example/ad in session s1 within 10 s (limit 3)"),
        (SESSION_CLICK, 20, "21st click on https://shop.example/ad in session s1 within 10 s (limit 3)"),
        (replace(SESSION_CLICK, url=None), 5, None),  # needs both fields
        (replace(SESSION_CLICK, session_id=None), 5, None),
        (replace(SESSION_CLICK, session_id=""), 5, None),
    ],
)
def test_session_url_repeat(click: Click, prior: int | None, expected: str | None) -> None:
    check(session_url_repeat.RULE, click, Features(session_url_prior_in_window=prior), expected)


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (None, None),
        (1732350000.5, "click_id c1 already accepted at ts 1732350000.5 (horizon 86400 s)"),
        (1732340000.0, "click_id c1 already accepted at ts 1732340000 (horizon 86400 s)"),
        (0.0, "click_id c1 already accepted at ts 0 (horizon 86400 s)"),
    ],
)
def test_duplicate_click(first: float | None, expected: str | None) -> None:
    check(duplicate_click.RULE, CLICK, Features(duplicate_of_ts=first), expected)


@pytest.mark.parametrize(
    ("user_agent", "signature"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (CHROME, None),
        (SAFARI_IOS, None),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "Ahrefs"),
        (CHROME.replace("Chrome/", "HeadlessChrome/"), "Headless"),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
            "PhantomJS/",
        ),
        ("python-requests/2.31.0", "python-requests"),
        ("curl/8.4.0", "curl"),
        ("Wget/1.21.4", "Wget"),
        ("Go-http-client/1.1", "Go-http-client"),
        # Not in crawlerdetect's list: left to the fingerprint score.
        ("Mozilla/5.0 Selenium", None),
        ("Mozilla/5.0 puppeteer", None),
    ],
)
def test_bot_user_agent(user_agent: str | None, signature: str | None) -> None:
    expected = None if signature is None else f"user agent matches crawler signature {signature!r}"
    check(bot_user_agent.RULE, replace(CLICK, user_agent=user_agent), Features(), expected)


def test_bot_user_agent_is_memoised() -> None:
    bot_user_agent.crawler_signature.cache_clear()
    for _ in range(3):
        bot_user_agent.crawler_signature("curl/8.4.0")
    assert bot_user_agent.crawler_signature.cache_info().hits == 2


@pytest.mark.parametrize(
    ("n", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"), (102, "102nd"), (111, "111th")]
)
def test_ordinal(n: int, text: str) -> None:
    assert ordinal(n) == text


def test_event_time() -> None:
    assert event_time(1732350000.5) == "1732350000.5"
    assert event_time(1732350000.0) == "1732350000"
    assert event_time(1.23456) == "1.235"
