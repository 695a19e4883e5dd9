"""The traffic generator: determinism, population shares, realistic material, and the
truth checked against an independent brute force (here: a different formulation)."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.models import HARD_FRAUD_TYPES
from fraudapp.tooling.simulation import catalog
from fraudapp.tooling.simulation.generator import DEFAULT_MIX, SimConfig, generate, parse_mix
from fraudapp.tooling.simulation.mix import MixError, allocate
from fraudapp.tooling.simulation.populations import MALFORMED_KINDS, POPULATIONS
from fraudapp.tooling.simulation.truth import Expected, Rules, is_crawler, reference_labels
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
    assert [(i.key, i.emit) for i in again.inputs] == [(i.key, i.emit) for i in traffic.inputs]


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
    assert {t["population"] for t in traffic.truth} == set(DEFAULT_MIX)


def test_the_extended_mix_has_every_population() -> None:
    t = generate(SimConfig(count=3000, seed=7, mix=parse_mix("extended")))
    assert {r["population"] for r in t.truth} == set(POPULATIONS)


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


def _brute_force(clicks, entries, rules: Rules, stage_order=None):
    """A second, independent formulation: for input k, look at all inputs before it.

    `stage_order` (default: production order) is the order in which the stages keyed by
    session and by click_id see the inputs; a device's own clicks always count in
    production order (its partition's Kafka order, CONTRACT §4)."""
    rank = {k: r for r, k in enumerate(stage_order if stage_order is not None else range(len(clicks)))}
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
        # what the session and click_id stages saw before k: the device's own earlier
        # clicks, and the other devices' clicks that came first in `stage_order`
        staged_before = [j for j, p in enumerate(clicks) if p is not None and j != k and (
            j < k if p["device_id"] == c["device_id"] else rank[j] < rank[k])]
        hits = set()
        if blacklisted_ip(c["ip"]):
            hits.add("ip_blacklist")
        if any(e["kind"] == "device" and e["value"] == c["device_id"] for e in entries):
            hits.add("device_blacklist")
        same_device = [p for p in before if p["device_id"] == c["device_id"]]
        if len([p for p in same_device if c["ts"] - rules.click_spam_window <= p["ts"] <= c["ts"]]) >= rules.click_spam_threshold:
            hits.add("click_spam")
        if c.get("session_id") and c.get("url"):
            same = [clicks[j] for j in staged_before
                    if clicks[j].get("session_id") == c["session_id"] and clicks[j].get("url") == c["url"]]
            if 1 + len([p for p in same if c["ts"] - rules.session_url_window <= p["ts"] <= c["ts"]]) >= rules.session_url_threshold:
                hits.add("session_url_repeat")
        # the first click with an id is the original; every later one within the horizon repeats it
        first_j = min((j for j in staged_before if clicks[j]["click_id"] == c["click_id"]), key=rank.get, default=None)
        first = None if first_j is None else clicks[first_j]
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
    in_production_order = _brute_force(clicks, t.entries, Rules())
    for r, got in zip(t.truth, in_production_order, strict=True):
        assert set(r["hard"]) <= set(got) <= set(r["hard"]) | set(r["either"]), r


def _one_hop(clicks, order):
    """The click_id stage is one hop from the device stage: a device's clicks keep their order."""
    seen: dict[str, int] = {}
    for k in order:
        if clicks[k] is not None:
            dev = clicks[k]["device_id"]
            if seen.get(dev, -1) > k:
                return False
            seen[dev] = k
    return True


small_clicks = st.lists(
    st.builds(
        lambda dev, ts, cid, url: {"click_id": cid, "ts": 1e9 + ts, "device_id": dev, "ip": "24.30.1.1",
                                   "session_id": "s", "url": url},
        st.sampled_from(["a", "b", "c"]), st.sampled_from([0.0, 1.0, 5.0, 10.0, 12.0]),
        st.sampled_from(["x", "y", "z"]), st.sampled_from(["u", "v"]),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(small_clicks)
def test_either_order_labels_are_what_some_order_gives(clicks) -> None:
    """`hard`: fires in every order the stages may see the clicks in; `either`: in some
    only. The session stage may see other devices' clicks in any order; the click_id
    stage, one hop from the device stage, sees each device's clicks in their order."""
    orders = list(itertools.permutations(range(len(clicks))))
    session = [_brute_force(clicks, [], Rules(), o) for o in orders]
    dedup = [labels for labels, o in zip(session, orders, strict=True) if _one_hop(clicks, o)]
    for k, want in enumerate(reference_labels(clicks, [], Rules())):
        always, ever = set(), set()
        for rule, seen in (("session_url_repeat", session), ("duplicate_click", dedup), ("click_spam", session)):
            fired = [rule in labels[k] for labels in seen]
            always |= {rule} if all(fired) else set()
            ever |= {rule} if any(fired) else set()
        assert set(want.hard) == always
        assert set(want.either) == ever - always


@pytest.mark.parametrize(
    ("clicks", "hard", "either"),
    [
        # one device: its partition's order decides, exactly
        ([(0.0, "a"), (1.0, "a"), (2.0, "a")], [[], [], ["session_url_repeat"]], [[], [], []]),
        ([(0.0, "a"), (1.0, "a"), (10.0, "a")], [[], [], ["session_url_repeat"]], [[], [], []]),  # W earlier counts
        ([(0.0, "a"), (1.0, "a"), (10.001, "a")], [[], [], []], [[], [], []]),
        ([(2.0, "a"), (1.0, "a"), (0.0, "a")], [[], [], []], [[], [], []]),  # earlier-processed, later-stamped
        ([(0.0, "a")] * 4, [[], [], ["session_url_repeat"], ["session_url_repeat"]], [[]] * 4),
        # other devices' clicks count in either order, produced before or after
        ([(0.0, "a"), (1.0, "b"), (2.0, "c")], [[]] * 3, [[], [], ["session_url_repeat"]]),
        ([(2.0, "a"), (1.0, "b"), (0.5, "c")], [[]] * 3, [["session_url_repeat"], [], []]),  # produced later
        ([(0.0, "a"), (1.0, "a"), (2.0, "b")], [[]] * 3, [[], [], ["session_url_repeat"]]),
        ([(0.0, "a"), (1.0, "b"), (2.0, "a"), (3.0, "a")], [[], [], [], ["session_url_repeat"]],
         [[], [], ["session_url_repeat"], []]),
        ([(0.0, "a"), (30.0, "b"), (31.0, "c")], [[]] * 3, [[]] * 3),  # never N in one window
    ],
)
def test_session_rule_table(clicks: list[tuple[float, str]], hard: list[list[str]], either: list[list[str]]) -> None:
    inputs = [{"click_id": f"c{k}", "ts": 1e9 + t, "device_id": dev, "ip": "24.30.1.1", "session_id": "s",
               "url": "u"} for k, (t, dev) in enumerate(clicks)]
    rules = Rules(click_spam_threshold=100)  # this table is about sessions only
    assert reference_labels(inputs, [], rules) == [Expected(h, e) for h, e in zip(hard, either, strict=True)]


def test_click_spam_counts_duplicates_and_by_event_time() -> None:
    base = {"device_id": "d", "ip": "24.30.1.1"}
    clicks = [
        {**base, "click_id": "a", "ts": 100.0},
        {**base, "click_id": "a", "ts": 100.0},  # a resend: duplicate, and still a click
        {**base, "click_id": "b", "ts": 95.0},  # late: sees nothing stamped after it
        {**base, "click_id": "c", "ts": 105.0},
    ]
    assert [e.hard for e in reference_labels(clicks, [], Rules())] == [[], ["duplicate_click"], [], ["click_spam"]]


def test_resend_from_another_device_is_a_duplicate_in_either_order() -> None:
    def c(cid, ts, dev):
        return {"click_id": cid, "ts": ts, "device_id": dev, "ip": "24.30.1.1"}

    clicks = [c("x", 0.0, "a"), c("x", 1.0, "b"), c("x", 2.0, "a"), c("y", 3.0, "a"), c("y", 3.0, "a")]
    got = reference_labels(clicks, [], Rules(click_spam_threshold=100))
    assert [e.hard for e in got] == [[], [], ["duplicate_click"], [], ["duplicate_click"]]
    assert [e.either for e in got] == [["duplicate_click"], ["duplicate_click"], [], [], []]
