"""The soft score's three layers, as defined in fraudapp/rules/score.py's docstring."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.models import Click, ClickReputation, Features, Mouse, Scores, Summary, Window
from fraudapp.rules.score import (
    DatacenterRanges,
    behaviour_layer,
    explain,
    fingerprint_layer,
    ip_layer,
    load_datacenter_ranges,
    network_layer,
    score,
)

REPO = Path(__file__).resolve().parents[2]
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
HUMAN = Click("c1", 1.0, "d1", "8.8.8.8", user_agent=CHROME, fingerprint="f00d", mouse=Mouse(12, 850, 0.72))


def _dc() -> DatacenterRanges:
    ranges = DatacenterRanges()
    ranges.add("159.203.0.0/16", "digitalocean")
    ranges.add("2a01:4f8::/32", "hetzner")
    return ranges


@pytest.mark.parametrize(
    ("ip", "near", "with_dc", "expected"),
    [
        ("8.8.8.8", False, True, 100.0),
        ("2606:4700::1", False, True, 100.0),
        ("10.1.2.3", False, True, 10.0),  # private
        ("127.0.0.1", False, True, 10.0),  # loopback
        ("100.64.0.1", False, True, 10.0),  # CGNAT
        ("203.0.113.7", False, True, 10.0),  # documentation
        ("2001:db8::1", False, True, 10.0),  # documentation
        ("fe80::1", False, True, 10.0),  # link-local
        ("239.1.1.1", False, True, 10.0),  # multicast
        ("::ffff:8.8.8.8", False, True, 100.0),  # IPv4-mapped: judged as its IPv4
        ("::ffff:10.0.0.1", False, True, 10.0),
        ("159.203.1.1", False, True, 30.0),  # datacenter
        ("159.203.1.1", False, False, 100.0),  # no ranges loaded: no datacenter signal
        ("2a01:4f8:1::1", False, True, 30.0),
        ("8.8.8.8", True, True, 60.0),  # near a blacklisted address
        ("159.203.1.1", True, True, 0.0),  # datacenter and near: clamped at 0
        ("10.0.0.1", True, True, 0.0),
    ],
)
def test_ip_layer(ip: str, near: bool, with_dc: bool, expected: float) -> None:
    value, _ = ip_layer(replace(HUMAN, ip=ip), Features(ip_near_blacklisted=near), _dc() if with_dc else None)
    assert value == expected


def test_ip_layer_unparseable_is_no_data() -> None:
    assert ip_layer(replace(HUMAN, ip="nope"), Features())[0] is None


@pytest.mark.parametrize(
    ("user_agent", "fingerprint", "expected"),
    [
        (CHROME, "f", 100.0),
        (CHROME, None, 60.0),  # fingerprint missing: moderate
        (None, "f", 20.0),  # user agent missing: low
        ("  ", "f", 20.0),
        (None, None, 0.0),
        (CHROME.replace("Chrome/", "HeadlessChrome/"), "f", 10.0),
        ("Mozilla/5.0 PhantomJS/2.1", "f", 10.0),
        ("Mozilla/5.0 (X11) Selenium/4.0", "f", 10.0),
        ("Mozilla/5.0 puppeteer", "f", 10.0),
        ("python-requests/2.31", "f", 10.0),
        ("curl/8.4.0", None, 0.0),
    ],
)
def test_fingerprint_layer(user_agent: str | None, fingerprint: str | None, expected: float) -> None:
    assert fingerprint_layer(replace(HUMAN, user_agent=user_agent, fingerprint=fingerprint))[0] == expected


SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.4 Safari/605.1.15")
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148"


@pytest.mark.parametrize(
    ("user_agent", "fingerprint", "mouse", "expected", "no_script"),
    [
        (CHROME, None, None, 30.0, True),  # a desktop browser where no script ran
        (SAFARI_MAC, None, None, 30.0, True),  # ua-parser names Macs, still desktops
        (CHROME, None, Mouse(12, 850, 0.72), 60.0, False),  # the mouse script ran
        (CHROME, "f", None, 100.0, False),  # the fingerprint script ran
        (IPHONE, None, None, 60.0, False),  # phones send no mouse
        (IPAD, None, None, 60.0, False),  # nor tablets
        (None, None, None, 0.0, False),  # no User-Agent: no desktop to speak of
    ],
)
def test_no_script_signal_is_for_desktop_browsers_only(
    user_agent: str | None, fingerprint: str | None, mouse: Mouse | None, expected: float, no_script: bool
) -> None:
    value, notes = fingerprint_layer(replace(HUMAN, user_agent=user_agent, fingerprint=fingerprint, mouse=mouse))
    assert value == expected
    assert ("no script signals from a desktop browser" in notes) is no_script
    # FRAUDAPP_SCORE_NO_SCRIPT=false: for trackers that send neither field
    off, off_notes = fingerprint_layer(replace(HUMAN, user_agent=user_agent, fingerprint=fingerprint, mouse=mouse),
                                       no_script=False)
    assert off == (expected + 30.0 if no_script else expected)
    assert "no script signals from a desktop browser" not in off_notes


@pytest.mark.parametrize(
    ("mouse", "expected"),
    [
        (None, None),  # no telemetry: layer left out
        (Mouse(0, 2000, 0.5), 5.0),  # no movement: very low
        (Mouse(5, 300, 0.3), 100.0),  # human-like, at every edge
        (Mouse(40, 5000, 0.95), 100.0),
        (Mouse(12, 850, 0.98), 20.0),  # ruler-straight
        (Mouse(12, 850, 1.0), 20.0),
        (Mouse(12, 99, 0.7), 20.0),  # too quick
        (Mouse(12, 200, 0.7), 60.0),  # halfway on the duration ramp
        (Mouse(12, 850, 0.965), 60.0),  # halfway on the straightness ramp
        (Mouse(1, 850, 0.7), 36.0),  # one move: 20 + 80 * 1/5
        (Mouse(12, 850, 0.0), 60.0),  # erratic jitter
        (Mouse(12, 850, 0.15), 80.0),
    ],
)
def test_behaviour_layer(mouse: Mouse | None, expected: float | None) -> None:
    value, _ = behaviour_layer(mouse)
    assert value == (None if expected is None else pytest.approx(expected))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 1000),
    st.integers(0, 100_000),
    st.floats(0, 1),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_layers_are_bounded_and_deterministic(
    moves: int, duration: int, straightness: float, ua: bool, fp: bool, near: bool
) -> None:
    click = replace(
        HUMAN, user_agent=CHROME if ua else None, fingerprint="f" if fp else None, mouse=Mouse(moves, duration, straightness)
    )
    first = score(click, Features(ip_near_blacklisted=near), _dc())
    assert first == score(click, Features(ip_near_blacklisted=near), _dc())
    for value in (first.ip, first.fingerprint, first.behaviour):
        assert value is not None and 0.0 <= value <= 100.0
    assert 0.0 <= first.score <= 100.0


def test_score_is_the_mean_of_available_layers() -> None:
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    scores, notes = explain(replace(HUMAN, ip="10.0.0.1", user_agent=phone, mouse=None, fingerprint=None), Features())
    assert scores == Scores(ip=10.0, fingerprint=60.0, behaviour=None)
    assert scores.score == 35.0
    assert notes == {"ip": ["not a global address"], "fingerprint": ["no fingerprint"], "behaviour": ["no mouse telemetry"],
                     "network": []}


def _rep(kind: str, devices: int, top: str | None = "pub", top_devices: int | None = None,
         user_agents: int = 3) -> Summary:  # fmt: skip
    """A summary whose first (10 min) window has these counts; the hour's has 100 devices."""
    first = Window(600.0, devices, devices, user_agents, devices, top, devices if top_devices is None else top_devices)
    entity = {"ip": "ip:8.8.8.8", "net": "net:8.8.8.0/24", "fp": "fp:f00d"}[kind]
    return Summary(entity, 1.0, (first, replace(first, seconds=3600.0, devices=100)))


@pytest.mark.parametrize(
    ("reputation", "expected", "notes"),
    [
        (ClickReputation(), None, []),  # no entity seen with two devices: left out of the mean
        # a shared address whose people click as people do: nothing lowered
        (ClickReputation(ip=_rep("ip", 300, top_devices=30, user_agents=40)), None, []),
        (ClickReputation(network=_rep("net", 900, top_devices=900, user_agents=1)), None, []),  # not read
        # -20 per other device on the fingerprint, at most -60
        (ClickReputation(fingerprint=_rep("fp", 1)), None, []),
        (ClickReputation(fingerprint=_rep("fp", 2)), 80.0, ["fingerprint shared by 2 devices"]),
        (ClickReputation(fingerprint=_rep("fp", 3)), 60.0, ["fingerprint shared by 3 devices"]),
        (ClickReputation(fingerprint=_rep("fp", 4)), 40.0, ["fingerprint shared by 4 devices"]),
        (ClickReputation(fingerprint=_rep("fp", 50)), 40.0, ["fingerprint shared by 50 devices"]),
        # -60 x share: >= 3 devices on the address, >= 50 % of them for the click's publisher
        (ClickReputation(ip=_rep("ip", 3)), 40.0, ["3 of 3 devices on the address clicking for pub"]),
        (ClickReputation(ip=_rep("ip", 4, top_devices=2)), 70.0, ["2 of 4 devices on the address clicking for pub"]),
        (ClickReputation(ip=_rep("ip", 4, top_devices=1)), None, []),  # 25 %
        (ClickReputation(ip=_rep("ip", 2)), None, []),  # too few devices
        (ClickReputation(ip=_rep("ip", 4, top="other")), None, []),  # not the click's publisher
        # -30: >= 10 devices on the address with one User-Agent
        (ClickReputation(ip=_rep("ip", 10, top="other", user_agents=1)), 70.0,
         ["10 devices on the address with one user agent"]),
        (ClickReputation(ip=_rep("ip", 9, top="other", user_agents=1)), None, []),
        (ClickReputation(ip=_rep("ip", 10, top="other", user_agents=2)), None, []),
        # all of them: -60 - 60 - 30, clamped at 0
        (ClickReputation(ip=_rep("ip", 12, user_agents=1), fingerprint=_rep("fp", 12)), 0.0,
         ["fingerprint shared by 12 devices", "12 of 12 devices on the address clicking for pub",
          "12 devices on the address with one user agent"]),
    ],
)
def test_network_layer(reputation: ClickReputation, expected: float | None, notes: list[str]) -> None:
    click = replace(HUMAN, publisher_id="pub")
    assert network_layer(click, reputation) == (expected, notes)
    assert explain(click, Features(reputation=reputation))[0].network == expected


def test_load_datacenter_ranges(tmp_path: Path) -> None:
    path = tmp_path / "dc.txt"
    path.write_text("# comment\n\n10.0.0.0/8 big\n10.1.0.0/16 small  # trailing\n2001:db8::/32\n")
    ranges = load_datacenter_ranges(path)
    assert len(ranges) == 3
    assert ranges.provider("10.1.2.3") == "small"
    assert ranges.provider("10.2.0.1") == "big"
    assert ranges.provider("2001:db8::5") == "datacenter"
    assert ranges.provider("11.0.0.1") is None and ranges.provider("bad") is None
    assert "10.2.0.1" in ranges and "11.0.0.1" not in ranges
    path.write_text("10.0.0.0/8\nnot-a-cidr x\n")
    with pytest.raises(ValueError, match=":2:"):
        load_datacenter_ranges(path)


def test_shipped_sample_ranges_load() -> None:
    ranges = load_datacenter_ranges(REPO / "tables" / "datacenter_ranges.txt")
    assert len(ranges) > 50
    assert ranges.provider("159.203.1.1") == "digitalocean"
    assert ranges.provider("8.8.8.8") is None
