"""Issue 19's populations: people behind shared public addresses (expected clean) and frauds
that pass per-device checks (expected fraud). Each is generated with its defining property,
deterministically, with an exact truth; and the evaluation reports every population's
verdict classes, shares adding up to 1."""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from fraudapp.tooling.evaluation import evaluate, index_outputs
from fraudapp.tooling.simulation import catalog
from fraudapp.tooling.simulation.generator import (
    DEFAULT_MIX,
    EXTENDED_MIX,
    EXTENDED_SHARE,
    ISSUE19_POPULATIONS,
    SimConfig,
    generate,
    parse_mix,
)
from fraudapp.tooling.simulation.populations import HUMAN_POPULATIONS, POPULATIONS, SLOW_BOT_LAG, SLOW_BOT_PERIOD
from fraudapp.tooling.simulation.truth import Rules
from tests.unit.test_simulation import _brute_force

pytestmark = pytest.mark.unit

SHARED_HUMANS = ("office_nat", "carrier_cgnat", "university", "vpn_exit")
FRAUDS = ("farm_rotating_ids", "proxy_farm", "emulator_farm", "slow_bot")
DATACENTER_TABLE = Path(__file__).resolve().parents[2] / "tables" / "datacenter_ranges.txt"


def clicks_of(population: str, count: int = 300, seed: int = 5, rate: float = 1.0) -> list[dict[str, Any]]:
    """`count` clicks of one population; `rate` clicks per second of event time (a low
    rate: a long span, so that sessions, farms and timers play out)."""
    t = generate(SimConfig(count=count, seed=seed, mix={population: 1.0}, event_rate=rate))
    assert {r["population"] for r in t.truth} == {population}
    return [orjson.loads(i.value) for i in t.inputs]


def by(clicks: list[dict[str, Any]], field: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for c in clicks:
        out[c.get(field)].append(c)
    return out


def datacenter_ranges() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for line in DATACENTER_TABLE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            nets.append(ipaddress.ip_network(line.split()[0]))
    return nets


def test_issue19_populations_are_all_registered() -> None:
    assert set(ISSUE19_POPULATIONS) == set(SHARED_HUMANS) | set(FRAUDS)
    assert set(ISSUE19_POPULATIONS) <= set(POPULATIONS)
    assert set(SHARED_HUMANS) <= HUMAN_POPULATIONS and not set(FRAUDS) & HUMAN_POPULATIONS
    assert not set(ISSUE19_POPULATIONS) & set(DEFAULT_MIX)  # the default traffic stays what it was


def test_extended_mix_is_the_default_plus_each_new_population() -> None:
    mix = parse_mix("extended")
    assert mix == EXTENDED_MIX and sum(mix.values()) == pytest.approx(1.0)
    assert set(mix) == set(DEFAULT_MIX) | set(ISSUE19_POPULATIONS)
    for name in ISSUE19_POPULATIONS:  # the default's proportions kept
        assert mix[name] / mix["humans"] == pytest.approx(EXTENDED_SHARE / DEFAULT_MIX["humans"])
    assert parse_mix("default") == DEFAULT_MIX


def test_shared_address_blocks_are_global_and_no_one_elses() -> None:
    dc = datacenter_ranges()
    assert dc, "no ranges read from tables/datacenter_ranges.txt"
    others = [ipaddress.ip_network(b) for b in catalog.RESIDENTIAL_BLOCKS] + [catalog.BLACKLIST_ZONE]
    blocks = [*catalog.OFFICE_BLOCKS, *catalog.CARRIER_BLOCKS, *catalog.UNIVERSITY_BLOCKS, *catalog.VPN_EXIT_BLOCKS]
    nets = [ipaddress.ip_network(b) for b in blocks]
    for net in nets:
        assert net.is_global and net.version == 4, net
        assert not any(net.overlaps(o) for o in dc if o.version == 4), f"{net} is in the datacenter table"
        assert not any(net.overlaps(o) for o in others), net
        # not even near the blacklist zone: the detector looks at the /24 around entries
        assert not net.supernet(new_prefix=16).overlaps(catalog.BLACKLIST_ZONE), net
    assert all(not a.overlaps(b) for k, a in enumerate(nets) for b in nets[k + 1:])


@pytest.mark.parametrize("population", ISSUE19_POPULATIONS)
def test_same_seed_same_traffic(population: str) -> None:
    def run(seed: int):
        return generate(SimConfig(count=400, seed=seed, mix={population: 1.0}, event_rate=2.0))

    a, b = run(3), run(3)
    assert a.input_lines() == b.input_lines() and a.truth_lines() == b.truth_lines()
    assert run(4).input_lines() != a.input_lines()


@pytest.mark.parametrize("population", ISSUE19_POPULATIONS)
def test_expected_class_follows_the_convention(population: str) -> None:
    t = generate(SimConfig(count=400, seed=9, mix={population: 1.0}, event_rate=2.0))
    for r in t.truth:
        if population in SHARED_HUMANS:
            # people: clean unless the truth's own hard rules say otherwise
            assert r["bot"] is False and r["expected"] == ("fraud" if r["hard"] else "clean"), r
        else:
            assert r["bot"] is True and r["expected"] == "fraud", r


def test_office_nat_is_hundreds_of_people_behind_one_ipv4() -> None:
    clicks = clicks_of("office_nat")
    ips = {c["ip"] for c in clicks}
    assert len(ips) == 1
    ip = ipaddress.ip_address(ips.pop())
    assert ip.version == 4 and ip.is_global
    devices = by(clicks, "device_id")
    assert len(devices) >= 50
    prints = {d: {c["fingerprint"] for c in cs} for d, cs in devices.items()}
    assert all(len(p) == 1 for p in prints.values())  # each device its own, stable fingerprint
    assert len({p for ps in prints.values() for p in ps}) == len(devices)
    assert all(c.get("mouse") and c["mouse"]["moves"] > 0 for c in clicks)  # workstations: a real mouse
    # a whole office: a few hundred workstations on its one address
    big = by(clicks_of("office_nat", count=1500, rate=1000.0), "ip")
    assert max(len({c["device_id"] for c in cs}) for cs in big.values()) >= 150


def test_carrier_cgnat_is_many_phones_over_one_public_slash24() -> None:
    clicks = clicks_of("carrier_cgnat")
    nets = {ipaddress.ip_network(c["ip"]).supernet(new_prefix=24) for c in clicks}
    assert len(nets) == 1
    net = nets.pop()
    assert net.is_global and not net.overlaps(ipaddress.ip_network("100.64.0.0/10"))
    assert any(net.subnet_of(ipaddress.ip_network(b)) for b in catalog.CARRIER_BLOCKS)
    devices = {c["device_id"] for c in clicks}
    ips = by(clicks, "ip")
    assert len(devices) >= 50 and len(ips) > 20
    assert any(len({c["device_id"] for c in cs}) > 1 for cs in ips.values())  # shared addresses
    assert all(c["user_agent"] in catalog.MOBILE_UAS and "mouse" not in c for c in clicks)


def test_university_is_many_people_over_one_slash16() -> None:
    clicks = clicks_of("university")
    nets = {ipaddress.ip_network(c["ip"]).supernet(new_prefix=16) for c in clicks}
    assert len(nets) == 1 and nets.pop().is_global
    ips = by(clicks, "ip")
    assert len({c["device_id"] for c in clicks}) >= 50 and len(ips) > 30
    assert max(len({c["device_id"] for c in cs}) for cs in ips.values()) > 5  # the Wi-Fi NAT


def test_vpn_exit_is_many_people_behind_a_handful_of_exits_outside_the_datacenter_table() -> None:
    clicks = clicks_of("vpn_exit")
    ips = {ipaddress.ip_address(c["ip"]) for c in clicks}
    assert 3 <= len(ips) <= 6
    dc = datacenter_ranges()
    assert all(ip.is_global and not any(ip in net for net in dc) for ip in ips)
    assert len({c["device_id"] for c in clicks}) >= 50


def test_farm_rotating_ids_reuses_fingerprints_over_few_addresses() -> None:
    t = generate(SimConfig(count=300, seed=5, mix={"farm_rotating_ids": 1.0}, event_rate=1.0))
    clicks = [orjson.loads(i.value) for i in t.inputs]
    assert len({c["ip"] for c in clicks}) <= 3  # one farm: its two or three lines
    devices = by(clicks, "device_id")
    prints = by(clicks, "fingerprint")
    assert len(devices) >= 5 * len(prints)  # each phone rotates through many ids
    assert all(len({c["device_id"] for c in cs}) > 1 for cs in prints.values())
    assert max(len(cs) for cs in devices.values()) <= 2  # an id clicks once or twice, then is reset
    assert len({c["user_agent"] for c in clicks}) == 1 and not any("mouse" in c for c in clicks)
    assert not any("click_spam" in r["hard"] for r in t.truth)


def test_proxy_farm_has_many_addresses_and_few_fingerprints() -> None:
    clicks = clicks_of("proxy_farm")
    devices = {c["device_id"] for c in clicks}
    prints = by(clicks, "fingerprint")
    ips = {ipaddress.ip_address(c["ip"]) for c in clicks}
    assert len(ips) >= 0.9 * len(devices) and all(ip.is_global for ip in ips)
    assert 20 * len(prints) <= len(devices)  # a few profiles of an anti-detect browser ...
    reused = [c for cs in prints.values() if len({c["device_id"] for c in cs}) >= 10 for c in cs]
    assert len(reused) >= 0.9 * len(clicks)  # ... reused across devices (but a new operation's first visits)
    assert all({c["user_agent"] for c in cs} and len({c["user_agent"] for c in cs}) == 1 for cs in prints.values())


def test_emulator_farm_is_distinct_devices_with_human_mice_on_few_addresses() -> None:
    clicks = clicks_of("emulator_farm")
    devices = by(clicks, "device_id")
    ips = {c["ip"] for c in clicks}
    assert len(ips) <= 4 and len(devices) >= 10 * len(ips)
    assert len({c["fingerprint"] for c in clicks}) == len(devices)  # each device a fingerprint of its own
    assert all(c["user_agent"] in catalog.BROWSER_UAS for c in clicks)
    mice = [c["mouse"] for c in clicks]
    for field in ("moves", "duration_ms", "straightness"):  # varied, as people's are
        values = [m[field] for m in mice]
        assert len(set(values)) >= 30 and max(values) >= 2 * min(values), field


def test_slow_bot_clicks_once_a_minute_per_device_without_mouse() -> None:
    clicks = clicks_of("slow_bot", count=300, rate=0.5)  # ten minutes of event time
    devices = by(clicks, "device_id")
    assert len(devices) >= 20
    for cs in devices.values():
        ts = sorted(c["ts"] for c in cs)
        assert len(ts) >= 9
        assert all(SLOW_BOT_PERIOD <= b - a <= SLOW_BOT_PERIOD + SLOW_BOT_LAG + 0.001 
                   for a, b in itertools.pairwise(ts))
        assert len({c["ip"] for c in cs}) == 1
    assert not any("mouse" in c or "fingerprint" in c for c in clicks)
    uas = Counter(c.get("user_agent") for c in clicks)
    assert None in uas and set(uas) - {None} <= set(catalog.BROWSER_UAS)


def test_truth_of_the_extended_mix_matches_the_brute_force() -> None:
    t = generate(SimConfig(count=1500, seed=12, mix=EXTENDED_MIX, event_rate=20.0))
    clicks = [orjson.loads(i.value) if r["expected"] != "rejected" else None
              for i, r in zip(t.inputs, t.truth, strict=True)]
    for r, got in zip(t.truth, _brute_force(clicks, t.entries, Rules()), strict=True):
        assert set(r["hard"]) <= set(got) <= set(r["hard"]) | set(r["either"]), r


def test_evaluation_reports_every_population_with_shares_adding_up_to_one() -> None:
    t = generate(SimConfig(count=2000, seed=3, mix=EXTENDED_MIX))
    truth = [{**r, "topic": "clicks", "partition": 0, "offset": r["i"], "produced_at": 100.0} for r in t.truth]
    classes = ("clean", "suspicious", "fraud")
    verdicts = [
        {"click_id": r["click_id"], "verdict": classes[r["i"] % 3], "fraud_types": list(r["hard"]), "score": 50.0,
         "detected_at": 100.01, "source": ["clicks", 0, r["i"]]}
        for r in truth if r["expected"] != "rejected" and r["i"] % 17  # some left unanswered
    ]
    dead = [{"error": r["error"], "topic": "clicks", "partition": 0, "offset": r["i"]}
            for r in truth if r["expected"] == "rejected"]
    report = evaluate(truth, index_outputs(verdicts, dead))
    pops = orjson.loads(orjson.dumps(report))["populations"]  # and it is JSON
    assert set(pops) == set(EXTENDED_MIX)
    for name, p in pops.items():
        assert p["kind"] == ("invalid" if name == "malformed" else "human" if name in HUMAN_POPULATIONS else "fraud")
        assert p["inputs"] == sum(r["population"] == name for r in truth)
        assert p["judged"] + sum(p["not_judged"].values()) == p["inputs"]
        if name == "malformed":
            assert p["judged"] == 0 and p["not_judged"]["rejected"] == p["inputs"]
            assert p["fraud"] is p["suspicious"] is p["clean"] is None
        else:
            assert p["judged"] > 0
            assert p["fraud"] + p["suspicious"] + p["clean"] == pytest.approx(1.0), name
    assert sum(p["not_judged"]["missing"] for p in pops.values()) == sum(1 for r in truth if r["expected"] != "rejected"
                                                                         and not r["i"] % 17)
    kinds = [p["kind"] for p in pops.values()]
    assert kinds == sorted(kinds, key=("human", "fraud", "invalid").index)  # humans first, marked
