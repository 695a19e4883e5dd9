"""judge: hard rules first, in contract order; otherwise the score's verdict class."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fraudapp.models import SOFT_FRAUD_TYPE, BlacklistEntry, Click, Features, Mouse
from fraudapp.rules.engine import judge
from fraudapp.rules.score import DatacenterRanges
from fraudapp.settings import Settings

S = Settings()
NOW = 1732350000.51
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
# a phone: touch screens send no mouse, so "no mouse" alone is not the no-script signal
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
HUMAN = Click(
    "c1", 1732350000.5, "d1", "8.8.8.8", session_id="s1", url="https://ad.example/x", campaign_id="camp",
    publisher_id="pub", user_agent=CHROME, fingerprint="f00d", mouse=Mouse(12, 850, 0.72),
)
DC = DatacenterRanges()
DC.add("159.203.0.0/16", "digitalocean")


@pytest.mark.parametrize(
    ("click", "features", "verdict", "fraud_types", "score"),
    [
        (HUMAN, Features(), "clean", [], 100.0),
        # fingerprint 60, ip 30 (datacenter), no mouse: 45 -> suspicious
        (replace(HUMAN, ip="159.203.1.1", user_agent=PHONE, fingerprint=None, mouse=None), Features(), "suspicious", [], 45.0),
        # ip 100, fingerprint 20 (no UA), behaviour 20 (straight): 46.7 -> suspicious
        (replace(HUMAN, user_agent=None, mouse=Mouse(9, 900, 0.99)), Features(), "suspicious", [], 46.7),
        # ip 10 (private), fingerprint 0, behaviour 5 -> 5 -> fraud by score
        (
            replace(HUMAN, ip="10.0.0.1", user_agent=None, fingerprint=None, mouse=Mouse(0, 0, 0.0)),
            Features(),
            "fraud",
            [SOFT_FRAUD_TYPE],
            5.0,
        ),
        # ip 60 (near a blacklisted address), fingerprint 60, no mouse: 60 -> suspicious
        (replace(HUMAN, user_agent=PHONE, mouse=None, fingerprint=None), Features(ip_near_blacklisted=True), "suspicious", [], 60.0),
        # exactly at the clean threshold (100, 10, 100 -> 70): not above -> suspicious
        (replace(HUMAN, user_agent="Mozilla/5.0 Selenium"), Features(), "suspicious", [], 70.0),
        # a hard hit wins over a perfect score
        (HUMAN, Features(device_prior_in_window=2), "fraud", ["click_spam"], 100.0),
        # several hits, in HARD_FRAUD_TYPES order whatever the features' order
        (
            replace(HUMAN, user_agent="curl/8.4.0"),
            Features(
                duplicate_of_ts=1.0,
                session_url_prior_in_window=2,
                device_prior_in_window=5,
                device_entry=BlacklistEntry("device", "d1"),
                ip_entry=BlacklistEntry("ip", "8.8.8.8"),
            ),
            "fraud",
            ["ip_blacklist", "device_blacklist", "click_spam", "session_url_repeat", "duplicate_click", "bot_user_agent"],
            70.0,
        ),
    ],
)
def test_verdict_classes(click: Click, features: Features, verdict: str, fraud_types: list[str], score: float) -> None:
    v = judge(click, features, S, NOW, datacenter=DC)
    assert v.verdict == verdict
    assert v.fraud_types == fraud_types
    assert v.fraud_type == (fraud_types[0] if fraud_types else None)
    assert v.score == score
    assert set(v.layers) == {"ip", "fingerprint", "behaviour", "network"}
    assert v.detected_at == NOW
    assert (v.click_id, v.device_id, v.ip, v.ts, v.campaign_id, v.publisher_id) == (
        click.click_id, click.device_id, click.ip, click.ts, click.campaign_id, click.publisher_id,
    )
    if verdict == "clean":
        assert v.reasons == []
    else:
        assert all(set(r) == {"rule", "detail"} and r["detail"] for r in v.reasons)
    if fraud_types and fraud_types != [SOFT_FRAUD_TYPE]:
        assert [r["rule"] for r in v.reasons] == fraud_types


@pytest.mark.parametrize(
    ("clean_above", "suspicious_above", "verdict"),
    [(70, 40, "suspicious"), (44.9, 40, "clean"), (45, 40, "suspicious"), (80, 45, "fraud"), (80, 44.9, "suspicious")],
)
def test_thresholds_come_from_settings(clean_above: float, suspicious_above: float, verdict: str) -> None:
    click = replace(HUMAN, ip="159.203.1.1", user_agent=PHONE, fingerprint=None, mouse=None)  # score 45
    settings = S.replace(score_clean_above=clean_above, score_suspicious_above=suspicious_above)
    assert judge(click, Features(), settings, NOW, datacenter=DC).verdict == verdict


def test_soft_reason_names_the_layers() -> None:
    click = replace(HUMAN, ip="10.0.0.1", user_agent=None, fingerprint=None, mouse=Mouse(0, 0, 0.0))
    (reason,) = judge(click, Features(), S, NOW).reasons
    assert reason == {
        "rule": "low_human_score",
        "detail": "score 5 not above 40: ip 10 (not a global address); "
        "fingerprint 0 (no user agent, no fingerprint); behaviour 5 (no mouse movement)",
    }


def test_suspicious_reason() -> None:
    click = replace(HUMAN, ip="159.203.1.1", user_agent=PHONE, fingerprint=None, mouse=None)
    (reason,) = judge(click, Features(), S, NOW, datacenter=DC).reasons
    assert reason["rule"] == "score"
    assert reason["detail"] == (
        "score 45 not above 70: ip 30 (digitalocean datacenter range); "
        "fingerprint 60 (no fingerprint); behaviour n/a (no mouse telemetry)"
    )


def test_verdict_serialises() -> None:
    body = judge(HUMAN, Features(device_prior_in_window=2), S, NOW).to_dict()
    assert body["fraud_type"] == "click_spam"
    assert body["reasons"] == [{"rule": "click_spam", "detail": "3rd click in 10 s (limit 2)"}]
    assert body["layers"] == {"ip": 100.0, "fingerprint": 100.0, "behaviour": 100.0, "network": None}
