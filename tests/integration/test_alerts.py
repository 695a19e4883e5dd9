"""Contract §5 on the real broker: one alert per campaign/publisher window, not one per click."""

from __future__ import annotations

import time

from tests.integration.conftest import Cluster, consume_json, produce_clicks

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def test_one_alert_per_window_and_scope(fraud_cluster: Cluster) -> None:
    fraud_cluster.start_worker("w1", FRAUDAPP_ALERT_GRACE_SECONDS="1")
    start = (time.time() // 60 - 5) * 60  # a whole window, five minutes ago
    clicks = []
    for i in range(30):
        spam = i < 12  # one device clicking 12 times: the last 10 are click_spam
        clicks.append(
            {
                "click_id": f"a{i}",
                "ts": start + 1 + i,
                "device_id": "hammer" if spam else f"human{i}",
                "ip": "93.184.216.34",
                "user_agent": UA,
                "fingerprint": f"fp{i}",
                "mouse": {"moves": 30, "duration_ms": 1500, "straightness": 0.5},
                "campaign_id": "summer",
                "publisher_id": "pub-9",
            }
        )
    # a quiet campaign in the same window: below ALERT_MIN_CLICKS, never alerts
    clicks += [dict(c, click_id=f"q{i}", campaign_id="quiet", publisher_id=None) for i, c in enumerate(clicks[:5])]
    produce_clicks(fraud_cluster, clicks)
    verdicts = consume_json(fraud_cluster, "verdicts", len(clicks), timeout=60)
    fraud = sum(1 for v in verdicts if v["verdict"] == "fraud" and v["campaign_id"] == "summer")
    assert fraud == 10

    alerts = consume_json(fraud_cluster, "fraud-alerts", 2, timeout=60)
    # nothing more comes for that window, however long we look
    alerts += consume_json(fraud_cluster, "fraud-alerts", 3, timeout=4)[len(alerts):]
    assert sorted((a["scope"], a["id"]) for a in alerts) == [("campaign", "summer"), ("publisher", "pub-9")]
    for alert in alerts:
        assert alert["window_start"] == start and alert["window_end"] == start + 60
        assert alert["clicks"] == 30 and alert["fraud"] == 10
        assert alert["ratio"] == round(10 / 30, 4)
        assert alert["top_fraud_types"] == {"click_spam": 10}
