"""Contract §5: one alert per scope window, only past min clicks and above the fraud ratio."""

from __future__ import annotations

import pytest

from fraudapp import alerts

POLICY = alerts.AlertPolicy(window_seconds=60, min_clicks=20, fraud_ratio=0.30, grace_seconds=5)


def run(clicks: int, fraud: int, start: float = 1200.0) -> list[dict]:
    state = alerts.initialize()
    for i in range(clicks):
        verdict = "fraud" if i < fraud else "clean"
        alerts.aggregate(state, start + i * 0.1, verdict, ["click_spam"] if verdict == "fraud" else [], POLICY)
    return alerts.close(state, "campaign:c1", start + 60 + 5.01, POLICY)


@pytest.mark.parametrize(
    ("clicks", "fraud", "alerted"),
    [
        (20, 7, True),  # 0.35 > 0.30
        (20, 6, False),  # exactly 0.30 does not exceed
        (19, 19, False),  # too few clicks
        (100, 31, True),
        (100, 30, False),
    ],
)
def test_threshold(clicks: int, fraud: int, alerted: bool) -> None:
    raised = run(clicks, fraud)
    assert bool(raised) is alerted
    if raised:
        (alert,) = raised
        assert alert["scope"] == "campaign" and alert["id"] == "c1"
        assert (alert["clicks"], alert["fraud"]) == (clicks, fraud)
        assert alert["window_start"] == 1200.0 and alert["window_end"] == 1260.0
        assert alert["top_fraud_types"] == {"click_spam": fraud}


def test_window_stays_open_until_grace_passes() -> None:
    state = alerts.initialize()
    for i in range(30):
        alerts.aggregate(state, 1200.0 + i, "fraud", ["bot_user_agent"], POLICY)
    assert alerts.close(state, "publisher:p", 1264.9, POLICY) == []
    assert len(alerts.close(state, "publisher:p", 1265.0, POLICY)) == 1
    # closed once: a later close or a late click cannot raise it again
    assert alerts.close(state, "publisher:p", 1400.0, POLICY) == []
    assert alerts.aggregate(state, 1210.0, "fraud", ["bot_user_agent"], POLICY) is False


def test_scope_keys() -> None:
    assert alerts.scope_keys("c", "p") == ["campaign:c", "publisher:p"]
    assert alerts.scope_keys(None, "p") == ["publisher:p"]
    assert alerts.scope_keys(None, None) == []
