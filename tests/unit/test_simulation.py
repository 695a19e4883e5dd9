"""The traffic generator: determinism, population shares, realistic material, and the
truth checked against an independent brute force (here: a different formulation)."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
import pytest

from fraudapp.models import HARD_FRAUD_TYPES
from fraudapp.simulation import catalog
from fraudapp.simulation.generator import DEFAULT_MIX, MixError, SimConfig, allocate, generate, parse_mix
from fraudapp.simulation.populations import MALFORMED_KINDS, POPULATIONS
from fraudapp.simulation.truth import Rules, dependencies, is_crawler, reference_labels
from fraudapp.validate import Rejection, parse_click

pytestmark = pytest.mark.unit

CFG = SimConfig(count=3000, seed=7, start_ts=1_767_225_600.0)


@pytest.fixture(scope="module")
def traffic():
    return generate(CFG)


def test_same_seed_gives_byte_identical_traffic_and_truth(traffic) -> None:
    again = generate(CFG)
    assert again.input_lines() == traffic.input_lines()
    assert again.truth_lines() == traffic.truth_lines()
    assert orjson.dumps(again.entries) == orjson.dumps(traffic.entries)
    assert [(i.key, i.emit, i.after) for i in again.inputs] == [(i.key, i.emit, i.after) for i in traffic.inputs]


def test_another_seed_gives_other_traffic(traffic) -> None:
    other = generate(SimConfig(count=3000, seed=8, start_ts=CFG.start_ts))
    assert other.input_lines() != traffic.input_lines()


def test_population_shares_are_exact(traffic) -> None:
    counts = Counter(t["population"] for t in traffic.truth)
    assert sum(counts.values()) == CFG.count
    assert counts == Counter(allocate(CFG.count, DEFAULT_MIX))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("humans=3,click_spam=1", {"humans": 0.75, "click_spam": 0.25}),
        ("humans=1", {"humans": 1.0}),
        ("humans=0.5,replay=0,malformed=0.5", {"humans": 0.5, "malformed": 0.5}),
        ("", DEFAULT_MIX),
    ],
)
def test_parse_mix(text: str, expected: dict[str, float]) -> None:
    assert parse_mix(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["robots=1", "humans", "humans=x", "humans=-1", "humans=0"])
def test_parse_mix_rejects(text: str) -> None:
    with pytest.raises(MixError):
        parse_mix(text)


def test_allocate_sums_to_count() -> None:
    for count in (1, 7, 99, 1000):
        assert sum(allocate(count, DEFAULT_MIX).values()) == count


@pytest.mark.parametrize("population", sorted(POPULATIONS))
def test_each_population_alone(population: str) -> None:
    t = generate(SimConfig(count=200, seed=2, mix={population: 1.0}))
    assert len(t.inputs) == 200
    assert {r["population"] for r in t.truth} == {population}


def test_inputs_validate_as_the_truth_says(traffic) -> None:
    seen_errors = set()
    for inp, t in zip(traffic.inputs, traffic.truth, strict=True):
        parsed = parse_click(inp.value)
        if t["expected"] == "rejected":
            assert isinstance(parsed, Rejection) and parsed.error == t["error"], (t, parsed)
            seen_errors.add(parsed.error)
        else:
            assert not isinstance(parsed, Rejection), (t, parsed)
            assert parsed.click_id == t["click_id"]
            assert inp.key == parsed.device_id.encode()  # produced keyed by device
            # labels never travel in the click
            assert not {"population", "expected", "hard", "bot"} & set(orjson.loads(inp.value))
    assert seen_errors == set(MALFORMED_KINDS)


def test_every_hard_type_and_population_is_present(traffic) -> None:
    hard = Counter(ft for t in traffic.truth for ft in t["hard"])
    assert set(hard) == set(HARD_FRAUD_TYPES)
    assert {t["population"] for t in traffic.truth} == set(POPULATIONS)


def test_catalog_user_agents_are_what_they_claim() -> None:
    assert not any(is_crawler(ua) for ua in catalog.BROWSER_UAS + catalog.MOBILE_UAS + catalog.HEADLESS_UNDECLARED_UAS)
    assert all(is_crawler(ua) for ua in catalog.CRAWLER_UAS + catalog.HEADLESS_DECLARED_UAS)


def test_blacklist_zone_is_used_only_by_blacklisted_sources(traffic) -> None:
    import ipaddress

    for inp, t in zip(traffic.inputs, traffic.truth, strict=True):
        if t["expected"] == "rejected":
            continue
        ip = ipaddress.ip_address(orjson.loads(inp.value)["ip"])
        if ip in catalog.BLACKLIST_ZONE:
            assert "ip_blacklist" in t["hard"]


def test_out_of_order_and_replays_are_present(traffic) -> None:
    clicks = [orjson.loads(i.value) if t["expected"] != "rejected" else None
              for i, t in zip(traffic.inputs, traffic.truth, strict=True)]
    ts = [c["ts"] for c in clicks if c]
    assert any(b < a for a, b in itertools.pairwise(ts))  # production order is not ts order
    ids = Counter(c["click_id"] for c in clicks if c)
    assert any(n > 1 for n in ids.values())


def _brute_force(clicks, entries, rules: Rules):
    """A second, independent formulation: for input k, look at all inputs before it."""
    import ipaddress

    def blacklisted_ip(ip):
        a = ipaddress.ip_address(ip)
        for e in entries:
            if e["kind"] == "ip" and ipaddress.ip_address(e["value"]) == a:
                return True
            if e["kind"] == "cidr" and a in ipaddress.ip_network(e["value"]):
                return True
        return False

    out = []
    for k, c in enumerate(clicks):
        if c is None:
            out.append([])
            continue
        before = [p for p in clicks[:k] if p is not None]
        hits = set()
        if blacklisted_ip(c["ip"]):
            hits.add("ip_blacklist")
        if any(e["kind"] == "device" and e["value"] == c["device_id"] for e in entries):
            hits.add("device_blacklist")
        same_device = [p for p in before if p["device_id"] == c["device_id"]]
        if len([p for p in same_device if c["ts"] - rules.click_spam_window <= p["ts"] <= c["ts"]]) >= rules.click_spam_threshold:
            hits.add("click_spam")
        if c.get("session_id") and c.get("url"):
            same = [p for p in before if p.get("session_id") == c["session_id"] and p.get("url") == c["url"]]
            if 1 + len([p for p in same if c["ts"] - rules.session_url_window <= p["ts"] <= c["ts"]]) >= rules.session_url_threshold:
                hits.add("session_url_repeat")
        # the first click with an id is the original; every later one within the horizon repeats it
        first = next((p for p in before if p["click_id"] == c["click_id"]), None)
        if first is not None and abs(first["ts"] - c["ts"]) <= rules.dedup_seconds:
            hits.add("duplicate_click")
        if c.get("user_agent") and is_crawler(c["user_agent"]):
            hits.add("bot_user_agent")
        out.append(sorted(hits))
    return out


def test_truth_matches_independent_brute_force() -> None:
    t = generate(SimConfig(count=1500, seed=11))
    clicks = [orjson.loads(i.value) if r["expected"] != "rejected" else None
              for i, r in zip(t.inputs, t.truth, strict=True)]
    expected = _brute_force(clicks, t.entries, Rules())
    assert [sorted(r["hard"]) for r in t.truth] == expected


@pytest.mark.parametrize(
    ("times", "labels"),
    [
        ([0.0, 1.0, 2.0], [[], [], ["session_url_repeat"]]),
        ([0.0, 1.0, 10.0], [[], [], ["session_url_repeat"]]),  # exactly W earlier still counts
        ([0.0, 1.0, 10.001], [[], [], []]),
        ([2.0, 1.0, 0.0], [[], [], []]),  # earlier-processed but later-stamped: not counted
        ([0.0, 0.0, 0.0, 0.0], [[], [], ["session_url_repeat"], ["session_url_repeat"]]),
    ],
)
def test_session_rule_table(times: list[float], labels: list[list[str]]) -> None:
    clicks = [{"click_id": f"c{k}", "ts": 1e9 + t, "device_id": f"d{k}", "ip": "24.30.1.1", "session_id": "s",
               "url": "u"} for k, t in enumerate(times)]
    assert reference_labels(clicks, [], Rules()) == labels


def test_click_spam_counts_duplicates_and_by_event_time() -> None:
    base = {"device_id": "d", "ip": "24.30.1.1"}
    clicks = [
        {**base, "click_id": "a", "ts": 100.0},
        {**base, "click_id": "a", "ts": 100.0},  # a resend: duplicate, and still a click
        {**base, "click_id": "b", "ts": 95.0},  # late: sees nothing stamped after it
        {**base, "click_id": "c", "ts": 105.0},
    ]
    assert reference_labels(clicks, [], Rules()) == [[], ["duplicate_click"], [], ["click_spam"]]


def test_dependencies_hold_back_order_sensitive_groups_only() -> None:
    def c(i, ts, dev, session="s", url="u"):
        return {"click_id": f"c{i}", "ts": ts, "device_id": dev, "ip": "24.30.1.1", "session_id": session, "url": url}

    clicks = [c(0, 0.0, "a"), c(1, 1.0, "b"), c(2, 2.0, "a"),  # 3 in 10 s: chained
              c(3, 0.0, "a", "t"), c(4, 30.0, "a", "t"), c(5, 60.0, "b", "t"),  # never 3 in a window: free
              {**c(6, 3.0, "z", "other"), "click_id": "c3"}]  # resend of c3 from another device
    assert dependencies(clicks, Rules()) == [(), (0,), (1,), (), (), (), (3,)]
