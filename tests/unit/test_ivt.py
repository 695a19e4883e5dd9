"""Every verdict's IVT class (rules/ivt.py): by example through the engine, and by rule."""

from __future__ import annotations

from typing import Any

import pytest

from fraudapp.models import BlacklistEntry, Click, Features, Mouse
from fraudapp.rules.engine import judge
from fraudapp.rules.ivt import ivt_class
from fraudapp.rules.score import DatacenterRanges
from fraudapp.settings import Settings

HUMAN: dict[str, Any] = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36",
                         "fingerprint": "fp", "mouse": Mouse(30, 1500, 0.5)}
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("click", "features", "ivt"),
    [
        (Click("c1", NOW, "d1", "93.184.216.34", **HUMAN), Features(), None),  # clean
        (Click("c2", NOW, "d1", "93.184.216.34", user_agent="Googlebot/2.1"), Features(), "givt"),
        (Click("c3", NOW, "d1", "93.184.216.34", **HUMAN), Features(device_prior_in_window=5), "givt"),
        (Click("c4", NOW, "d1", "93.184.216.34", **HUMAN), Features(duplicate_of_ts=NOW - 1), "givt"),
        (Click("c5", NOW, "d1", "93.184.216.34", **HUMAN),
         Features(ip_entry=BlacklistEntry("ip", "93.184.216.34")), "givt"),
        # no hard hit, not human by fingerprint and behaviour: sophisticated
        (Click("c6", NOW, "d1", "10.0.0.1", mouse=Mouse(0, 0, 1.0)), Features(), "sivt"),
        # not human, from a data-center address: general (known data-center traffic)
        (Click("c7", NOW, "d1", "203.0.113.9", mouse=Mouse(0, 0, 1.0)), Features(), "givt"),
    ],
)
def test_each_verdict_says_its_ivt_class(click: Click, features: Features, ivt: str | None) -> None:
    datacenter = DatacenterRanges()
    datacenter.add("203.0.113.0/24", "example-cloud")
    verdict = judge(click, features, Settings(), NOW, datacenter=datacenter).to_dict()
    assert verdict["ivt"] == ivt, verdict
    assert (verdict["verdict"] == "fraud") == (ivt is not None)


@pytest.mark.parametrize(
    ("verdict", "fraud_types", "datacenter", "ivt"),
    [
        ("clean", [], True, None),
        ("suspicious", [], True, None),
        ("fraud", ["low_human_score"], False, "sivt"),
        ("fraud", ["low_human_score"], True, "givt"),
        ("fraud", ["session_url_repeat"], False, "givt"),
    ],
)
def test_ivt_class_by_rule(verdict: str, fraud_types: list[str], datacenter: bool, ivt: str | None) -> None:
    assert ivt_class(verdict, fraud_types, datacenter) == ivt
