"""device_farm (rules/device_farm.py) on hand-made reputation, alone and through judge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fraudapp.models import Click, ClickReputation, Features, Mouse, Summary, Window
from fraudapp.rules import device_farm
from fraudapp.rules.engine import judge
from fraudapp.settings import Settings

S = Settings()  # fingerprint 5, address 8, network 20 devices; share 90 %
NOW = 1732350000.51
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
CLICK = Click(
    "c1",
    1732350000.5,
    "d1",
    "93.184.216.34",
    session_id="s1",
    url="https://ad.example/x",
    campaign_id="camp",
    publisher_id="pub",
    user_agent=CHROME,
    fingerprint="f00d",
    mouse=Mouse(12, 850, 0.72),
)


def summary(entity: str, devices: int, top: str | None = "pub", top_devices: int | None = None,
            user_agents: int = 3, longer: int | None = None) -> Summary:  # fmt: skip
    """A summary of the first window (10 min), and of an hour with `longer` devices."""
    first = Window(600.0, devices, 4 * devices, user_agents, devices, top,
                   devices if top_devices is None else top_devices)  # fmt: skip
    hour = replace(first, seconds=3600.0, devices=devices if longer is None else longer)
    return Summary(entity, CLICK.ts, (first, hour))


def fp(devices: int, **kw: Any) -> Summary:
    return summary("fp:f00d", devices, **kw)


def ip(devices: int, **kw: Any) -> Summary:
    return summary("ip:93.184.216.34", devices, **kw)


def net(devices: int, **kw: Any) -> Summary:
    return summary("net:93.184.216.0/24", devices, **kw)


@pytest.mark.parametrize(
    ("reputation", "publisher", "detail"),
    [
        (ClickReputation(), "pub", None),
        # the fingerprint: 5 devices, whatever they click for
        (ClickReputation(fingerprint=fp(5, top="other")), "pub", "5 devices with fingerprint f00d in 10 min (limit 5)"),
        (
            ClickReputation(fingerprint=fp(12, top=None, top_devices=0)),
            "pub",
            "12 devices with fingerprint f00d in 10 min (limit 5)",
        ),
        (ClickReputation(fingerprint=fp(4)), "pub", None),
        (ClickReputation(fingerprint=fp(4, longer=50)), "pub", None),  # only the first window counts
        # the address: 8 devices, >= 90 % of them for the click's publisher
        (
            ClickReputation(ip=ip(8)),
            "pub",
            "8 devices on 93.184.216.34 in 10 min, 100% of them clicking for pub (limits 8 devices, 90%)",
        ),
        (
            ClickReputation(ip=ip(10, top_devices=9)),
            "pub",
            "10 devices on 93.184.216.34 in 10 min, 90% of them clicking for pub (limits 8 devices, 90%)",
        ),
        (ClickReputation(ip=ip(8)), "other", None),  # a farm, but not the click's publisher's
        (ClickReputation(ip=ip(8)), None, None),
        (ClickReputation(ip=ip(7)), "pub", None),  # too few devices
        (ClickReputation(ip=ip(10, top_devices=8)), "pub", None),  # 80 %: too spread
        (ClickReputation(ip=ip(300, top_devices=40, user_agents=64)), "pub", None),  # an office
        (ClickReputation(ip=ip(300, top_devices=40, user_agents=64), network=net(900, top_devices=100)), "pub", None),
        (ClickReputation(ip=ip(8, top=None, top_devices=0)), None, None),  # no publishers at all
        # the network: 20 devices
        (
            ClickReputation(network=net(20, top_devices=19)),
            "pub",
            "20 devices on 93.184.216.0/24 in 10 min, 95% of them clicking for pub (limits 20 devices, 90%)",
        ),
        (ClickReputation(ip=ip(3), network=net(19)), "pub", None),
        (ClickReputation(network=net(20, top="other", top_devices=20)), "pub", None),
        # the fingerprint is looked at first
        (
            ClickReputation(ip=ip(8), network=net(20), fingerprint=fp(6)),
            "pub",
            "6 devices with fingerprint f00d in 10 min (limit 5)",
        ),
    ],
)
def test_device_farm(reputation: ClickReputation, publisher: str | None, detail: str | None) -> None:
    hit = device_farm.apply(replace(CLICK, publisher_id=publisher), Features(reputation=reputation), S)
    assert (hit.detail if hit is not None else None) == detail
    if hit is not None:
        assert hit.rule == "device_farm"


def test_limits_come_from_settings() -> None:
    strict = replace(S, farm_fingerprint_devices=3, farm_address_devices=4, farm_publisher_share=0.75)
    assert device_farm.apply(CLICK, Features(reputation=ClickReputation(fingerprint=fp(3))), strict) is not None
    hit = device_farm.apply(CLICK, Features(reputation=ClickReputation(ip=ip(4, top_devices=3))), strict)
    assert hit is not None and hit.detail.endswith("(limits 4 devices, 75%)")
    assert device_farm.apply(CLICK, Features(reputation=ClickReputation(ip=ip(4, top_devices=3))), S) is None


@pytest.mark.parametrize(
    ("features", "fraud_types", "ivt"),
    [
        (Features(reputation=ClickReputation(fingerprint=fp(5))), ["device_farm"], "sivt"),
        (Features(reputation=ClickReputation(ip=ip(9))), ["device_farm"], "sivt"),
        # hard rules first, in their order, then device_farm
        (
            Features(device_prior_in_window=2, duplicate_of_ts=1.0, reputation=ClickReputation(fingerprint=fp(5))),
            ["click_spam", "duplicate_click", "device_farm"],
            "givt",
        ),
        (Features(device_prior_in_window=2), ["click_spam"], "givt"),
        (Features(reputation=ClickReputation(ip=ip(2))), [], None),  # a shared address: clean, no network layer
    ],
)
def test_judge(features: Features, fraud_types: list[str], ivt: str | None) -> None:
    v = judge(CLICK, features, S, NOW)
    assert v.fraud_types == fraud_types
    assert v.verdict == ("fraud" if fraud_types else "clean")
    assert v.ivt == ivt
    assert [r["rule"] for r in v.reasons] == fraud_types
    # the network layer only appears to lower a score: here, exactly for the farms
    assert (v.layers["network"] is not None) == ("device_farm" in fraud_types)


def test_judge_reason_and_network_layer_of_a_farm() -> None:
    v = judge(CLICK, Features(reputation=ClickReputation(fingerprint=fp(5))), S, NOW)
    assert v.reasons == [{"rule": "device_farm", "detail": "5 devices with fingerprint f00d in 10 min (limit 5)"}]
    assert v.layers["network"] == 40.0  # 4 other devices on the fingerprint: -60 at most
    assert v.score == 85.0  # (100 + 100 + 100 + 40) / 4: the rule, not the score, makes it fraud
