"""BlacklistIndex against brute force over random ip/cidr sets, removals and TTLs.

Reference: the active entries (expires_at None or > now) as `ipaddress` objects; a match
is the exact IP entry if one is active, else the active range with the longest prefix
containing the address. `near_ip` is any active ip/cidr entry overlapping the address's
/24 (IPv4) or /64 (IPv6).
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudapp.models import BlacklistEntry
from fraudapp.state.blacklist_index import BlacklistIndex, entry_key, normalise_value

FAST = settings(max_examples=200, deadline=None)

# Small address spaces so that ranges overlap and /24 (/64) neighbourhoods are shared.
v4_addrs = st.tuples(st.integers(0, 3), st.integers(0, 255)).map(lambda p: f"10.0.{p[0]}.{p[1]}")
v6_addrs = st.tuples(st.integers(0, 3), st.integers(0, 255)).map(lambda p: f"2001:db8:0:{p[0]}::{p[1]:x}")
v4_cidrs = st.tuples(v4_addrs, st.sampled_from([16, 22, 23, 24, 25, 28, 31, 32])).map(lambda p: f"{p[0]}/{p[1]}")
v6_cidrs = st.tuples(v6_addrs, st.sampled_from([48, 62, 63, 64, 100, 120, 127, 128])).map(lambda p: f"{p[0]}/{p[1]}")
expiries = st.sampled_from([None, 5.0, 10.0, 15.0])
nows = st.sampled_from([0.0, 5.0, 7.0, 12.0, 20.0])

adds = st.one_of(
    st.tuples(st.just("ip"), st.one_of(v4_addrs, v6_addrs), expiries),
    st.tuples(st.just("cidr"), st.one_of(v4_cidrs, v6_cidrs), expiries),
)
ops = st.lists(st.tuples(st.sampled_from(["add", "add", "add", "remove"]), adds), max_size=30)
queries = st.lists(st.tuples(st.one_of(v4_addrs, v6_addrs), nows), min_size=1, max_size=20)


def ref_match(entries: dict[str, BlacklistEntry], ip: str, now: float) -> BlacklistEntry | None:
    addr = ipaddress.ip_address(ip)
    active = [e for e in entries.values() if e.active(now)]
    for e in active:
        if e.kind == "ip" and ipaddress.ip_address(e.value) == addr:
            return e
    ranges = [
        (ipaddress.ip_network(e.value).prefixlen, e)
        for e in active
        if e.kind == "cidr" and addr in ipaddress.ip_network(e.value)
    ]
    return max(ranges, key=lambda p: p[0])[1] if ranges else None


def ref_near(entries: dict[str, BlacklistEntry], ip: str, now: float) -> bool:
    addr = ipaddress.ip_address(ip)
    around = ipaddress.ip_network(f"{ip}/{24 if addr.version == 4 else 64}", strict=False)
    for e in entries.values():
        if not e.active(now):
            continue
        net = ipaddress.ip_network(e.value, strict=False)
        if net.version == addr.version and net.overlaps(around):
            return True
    return False


@FAST
@given(ops, queries)
def test_matches_brute_force(operations: list, probes: list[tuple[str, float]]) -> None:
    index = BlacklistIndex()
    reference: dict[str, BlacklistEntry] = {}
    for op, (kind, value, expires_at) in operations:
        key = entry_key(kind, value)
        if op == "add":
            stored = index.add(BlacklistEntry(kind, value, reason=key, expires_at=expires_at))
            reference[key] = stored
            assert stored.value == normalise_value(kind, value)
        else:
            removed = index.remove(kind, value)
            assert removed == reference.pop(key, None)
        assert len(index) == len(reference)
    for ip, now in probes:
        assert index.match_ip(ip, now) == ref_match(reference, ip, now), (ip, now)
        assert index.near_ip(ip, now) == ref_near(reference, ip, now), (ip, now)
        # Without a clock, TTLs are ignored.
        assert index.near_ip(ip) == ref_near(reference, ip, float("-inf")), ip
    assert sorted(entry_key(e.kind, e.value) for e in index) == sorted(reference)


def test_overlapping_ranges_are_independent() -> None:
    index = BlacklistIndex()
    index.add(BlacklistEntry("cidr", "10.0.0.0/8", reason="wide"))
    index.add(BlacklistEntry("cidr", "10.1.0.0/16", reason="narrow", expires_at=100.0))
    assert index.match_ip("10.1.2.3", 0).reason == "narrow"
    assert index.match_ip("10.1.2.3", 100.0).reason == "wide"  # expired: falls back
    assert index.remove("cidr", "10.1.0.0/16").reason == "narrow"
    assert index.match_ip("10.1.2.3", 0).reason == "wide"
    assert index.remove("cidr", "10.1.0.0/16") is None
    index.add(BlacklistEntry("cidr", "10.1.0.0/16", reason="narrow"))
    index.remove("cidr", "10.0.0.0/8")
    assert index.match_ip("10.1.2.3", 0).reason == "narrow"
    assert index.match_ip("10.2.0.1", 0) is None


def test_exact_ip_wins_over_range() -> None:
    index = BlacklistIndex()
    index.add(BlacklistEntry("cidr", "203.0.113.0/24", reason="range"))
    index.add(BlacklistEntry("ip", "203.0.113.7", reason="exact"))
    assert index.match_ip("203.0.113.7", 0).reason == "exact"
    assert index.match_ip("203.0.113.8", 0).reason == "range"


@pytest.mark.parametrize(
    ("kind", "value", "normalised"),
    [
        ("ip", " 203.0.113.7 ", "203.0.113.7"),
        ("ip", "2001:DB8:0:0::1", "2001:db8::1"),
        ("ip", "::ffff:10.0.0.1", "10.0.0.1"),
        ("cidr", "10.1.2.3/8", "10.0.0.0/8"),  # host bits set: normalised, not rejected
        ("cidr", "2001:db8::1/32", "2001:db8::/32"),
        ("cidr", "::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("cidr", "10.0.0.1", "10.0.0.1/32"),
        ("device", "Dev-1", "Dev-1"),
        ("wallet", "0xABC", "0xABC"),
    ],
)
def test_normalisation(kind: str, value: str, normalised: str) -> None:
    assert normalise_value(kind, value) == normalised
    assert entry_key(kind, value) == f"{kind}:{normalised}"


@pytest.mark.parametrize(
    ("kind", "value"),
    [("ip", "10.0.0.0/8"), ("ip", "nope"), ("cidr", "10.0.0.0/33"), ("device", ""), ("colour", "red")],
)
def test_invalid_values(kind: str, value: str) -> None:
    with pytest.raises(ValueError):
        entry_key(kind, value)
    assert BlacklistIndex().remove(kind, value) is None


def test_ipv4_mapped_addresses_match_their_ipv4_entries() -> None:
    index = BlacklistIndex()
    index.add(BlacklistEntry("ip", "10.0.0.1"))
    index.add(BlacklistEntry("cidr", "192.0.2.0/24"))
    assert index.match_ip("::ffff:10.0.0.1", 0) is not None
    assert index.match_ip("::ffff:192.0.2.9", 0) is not None
    assert index.near_ip("::ffff:10.0.0.200")


def test_devices_wallets_and_lookup() -> None:
    index = BlacklistIndex()
    index.add(BlacklistEntry("device", "d1", reason="r", expires_at=10.0))
    index.add(BlacklistEntry("wallet", "w1"))
    assert index.match_device("d1", 9.9).reason == "r"
    assert index.match_device("d1", 10.0) is None
    assert index.match_device("d2", 0) is None
    assert index.match_wallet("w1", 1e12) is not None
    assert index.get("device", "d1").reason == "r"
    assert index.get("ip", "not an ip") is None
    assert index.match_ip("garbage", 0) is None and not index.near_ip("garbage")
    assert len(index) == 2
    assert index.remove("wallet", "w1") is not None and len(index) == 1


def test_near_ip() -> None:
    index = BlacklistIndex()
    index.add(BlacklistEntry("ip", "198.51.100.7"))
    index.add(BlacklistEntry("cidr", "2001:db8:1:2::/64"))
    assert index.near_ip("198.51.100.200")
    assert not index.near_ip("198.51.101.7")
    assert index.near_ip("2001:db8:1:2:ffff::1")
    assert not index.near_ip("2001:db8:1:3::1")
