"""Random traffic produced at full speed, no producer waiting for a verdict, through real
workers: every verdict is one the brute-force reference allows in partition order
(CONTRACT §4) — every `hard` label fired, nothing outside `hard` + `either` — with one
worker and with two.

The traffic is dense where order matters: devices repeat URLs within their sessions, some
sessions span devices, clicks are resent by the same device and by another one, and event
times run out of order (within the lateness). Seeds are fixed (`FRAUDAPP_ORDER_SEED` picks
another one) so that a failure reproduces.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import pytest

from fraudapp.pipeline import partition_of
from fraudapp.tooling.simulation.truth import Rules, check_lateness, reference_labels
from tests.integration.conftest import Cluster, consume_json, produce_clicks

pytestmark = pytest.mark.integration

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def random_traffic(seed: int, count: int, t0: float) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    devices = [f"d{k}" for k in range(60)]
    own_session = {d: f"s-{d}" for d in devices}
    shared = [f"shared{k}" for k in range(8)]  # sessions that span devices
    urls = ["https://ads.example/a", "https://ads.example/b", "https://ads.example/c"]
    clicks: list[dict[str, Any]] = []
    for i in range(count):
        device = rnd.choice(devices[: 10 + i * 50 // count])  # a few hot devices early on
        ts = round(t0 + i * 0.05 - rnd.random() * 4, 3)  # up to 4 s out of order
        if clicks and rnd.random() < 0.04:  # a resend: mostly the same device, sometimes another
            prev = rnd.choice(clicks[-200:])
            click = dict(prev)
            if rnd.random() < 0.3:
                click["device_id"] = device
            clicks.append(click)
            continue
        click = {"click_id": f"c{seed}-{i}", "ts": ts, "device_id": device, "ip": f"93.184.{i % 200}.{i % 250 + 1}",
                 "user_agent": BOT if rnd.random() < 0.03 else UA, "fingerprint": f"fp-{device}",
                 "mouse": {"moves": 20, "duration_ms": 900, "straightness": 0.5}}
        r = rnd.random()
        if r < 0.6:
            click.update(session_id=own_session[device], url=rnd.choice(urls))
        elif r < 0.8:
            click.update(session_id=rnd.choice(shared), url=rnd.choice(urls))
        clicks.append(click)
    check_lateness(clicks, Rules())
    return clicks


def positions(clicks: list[dict[str, Any]], partitions: int) -> list[tuple[int, int]]:
    """(partition, offset) of each click as produced keyed by device_id into fresh topics
    (Kafka's default partitioner, offsets in production order)."""
    next_offset: Counter[int] = Counter()
    out = []
    for click in clicks:
        partition = partition_of(click["device_id"].encode(), partitions)
        out.append((partition, next_offset[partition]))
        next_offset[partition] += 1
    return out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers", [1, 2], ids=["one worker", "two workers"])
def test_verdicts_match_the_reference_on_traffic_produced_at_full_speed(fraud_cluster: Cluster, workers: int) -> None:
    import time

    seed = int(os.environ.get("FRAUDAPP_ORDER_SEED", "16")) + workers
    for k in range(workers):
        fraud_cluster.start_worker(f"w{k + 1}")
    clicks = random_traffic(seed, 3000, time.time() - 300)
    produce_clicks(fraud_cluster, clicks)  # at full speed, nobody waits for a verdict
    verdicts = consume_json(fraud_cluster, "verdicts", len(clicks), timeout=180)
    assert len(verdicts) == len(clicks), f"{len(verdicts)} verdicts for {len(clicks)} clicks"
    by_position = {(v["source"][1], v["source"][2]): v for v in verdicts}
    assert len(by_position) == len(clicks), "an input answered twice"
    expected = reference_labels(clicks, [], Rules())
    wrong, fired = [], Counter()
    for i, (click, want, pos) in enumerate(zip(clicks, expected, positions(clicks, fraud_cluster.partitions),
                                               strict=True)):
        verdict = by_position[pos]
        assert verdict["click_id"] == click["click_id"], (i, pos)
        got = set(verdict["fraud_types"]) - {"low_human_score"}
        fired.update(got)
        if not set(want.hard) <= got <= set(want.hard) | set(want.either):
            wrong.append((i, click["device_id"], click.get("session_id"), want, sorted(got)))
    assert not wrong, f"seed {seed}: {len(wrong)} verdicts outside the reference, first: {wrong[:5]}"
    # the traffic exercised every order-sensitive rule
    for rule in ("click_spam", "session_url_repeat", "duplicate_click", "bot_user_agent"):
        assert fired[rule] > 10, (rule, fired)
    strict = sum("session_url_repeat" in e.hard for e in expected)
    assert strict > 50, f"only {strict} same-device session repeats: the traffic does not test Kafka order"
