"""In-memory index over the blacklist's entries (CONTRACT §4): what the rules look up.

The blacklist table holds `BlacklistEntry` values under `entry_key(kind, value)`; this index
answers per click in O(prefix length): exact IPs in a dict, CIDR ranges in one radix trie
per address family (pytricia, longest-prefix match), devices and wallets in dicts.

* Overlapping ranges are independent trie nodes: removing one never removes another, and
  a lookup walks from the longest matching prefix to shorter ones, so an expired
  (TTL) more-specific range falls back to an active wider one.
* An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is treated as its IPv4 address, in
  entries and lookups alike.
* Values are normalised (`normalise_value`): IPs to their compressed text, CIDRs to their
  network (``10.1.2.3/8`` -> ``10.0.0.0/8``; host bits are allowed, as in
  ``ipaddress.ip_network(strict=False)``). Devices are compared verbatim; wallets in their
  chain's compared form (addresses.py: EVM addresses in lower case).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Literal

import pytricia

from fraudapp.addresses import canonical
from fraudapp.models import BlacklistEntry

Kind = Literal["ip", "cidr", "device", "wallet"]
KINDS: tuple[str, ...] = ("ip", "cidr", "device", "wallet")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Neighbourhood of `near_ip`: a typical customer / hosting allocation per family.
NEAR_PREFIX_V4 = 24
NEAR_PREFIX_V6 = 64


@lru_cache(maxsize=65536)  # click IPs repeat; parsing is the costly part of a lookup
def _address(text: str) -> IPAddress:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _network(text: str) -> IPNetwork:
    net = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}")
    return net


def normalise_value(kind: str, value: str) -> str:
    """Canonical text of an entry's value; ValueError when invalid for its kind."""
    if kind == "ip":
        return _address(value.strip()).compressed
    if kind == "cidr":
        return _network(value).compressed
    if kind == "wallet":
        return canonical(value)
    if kind == "device":
        if not value:
            raise ValueError(f"empty {kind}")
        return value
    raise ValueError(f"unknown blacklist kind {kind!r} (expected one of {', '.join(KINDS)})")


def entry_key(kind: str, value: str) -> str:
    """Table key of an entry: ``"<kind>:<normalised value>"``; ValueError when invalid."""
    return f"{kind}:{normalise_value(kind, value)}"


@lru_cache(maxsize=65536)  # once per address, not per click: building a network costs ~5 µs
def _near_network(ip: IPAddress) -> str:
    prefix = NEAR_PREFIX_V4 if ip.version == 4 else NEAR_PREFIX_V6
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False).compressed


class BlacklistIndex:
    def __init__(self) -> None:
        self._ips: dict[str, BlacklistEntry] = {}
        self._tries: dict[int, pytricia.PyTricia] = {4: pytricia.PyTricia(32), 6: pytricia.PyTricia(128)}
        self._cidrs: dict[str, BlacklistEntry] = {}
        self._devices: dict[str, BlacklistEntry] = {}
        self._wallets: dict[str, BlacklistEntry] = {}
        # near_ip: /24 (/64) network -> entries (ips and ranges at least that long) in it
        self._near: dict[str, dict[str, BlacklistEntry]] = {}

    # -- updates ------------------------------------------------------------------------
    def add(self, entry: BlacklistEntry) -> BlacklistEntry:
        """Insert or replace; returns the stored (normalised) entry. ValueError if invalid."""
        value = normalise_value(entry.kind, entry.value)
        if value != entry.value:
            entry = replace(entry, value=value)
        key = f"{entry.kind}:{value}"
        if entry.kind == "ip":
            self._ips[value] = entry
            self._near.setdefault(_near_network(_address(value)), {})[key] = entry
        elif entry.kind == "cidr":
            net = _network(value)
            self._tries[net.version][value] = entry
            self._cidrs[value] = entry
            if net.prefixlen >= (NEAR_PREFIX_V4 if net.version == 4 else NEAR_PREFIX_V6):
                self._near.setdefault(_near_network(net.network_address), {})[key] = entry
        elif entry.kind == "device":
            self._devices[value] = entry
        else:
            self._wallets[value] = entry
        return entry

    def remove(self, kind: str, value: str) -> BlacklistEntry | None:
        """Remove one entry; returns it, or None when absent (or the value is invalid)."""
        try:
            value = normalise_value(kind, value)
        except ValueError:
            return None
        key = f"{kind}:{value}"
        if kind == "ip":
            removed = self._ips.pop(value, None)
            if removed is not None:
                self._forget_near(_near_network(_address(value)), key)
            return removed
        if kind == "cidr":
            removed = self._cidrs.pop(value, None)
            if removed is not None:
                net = _network(value)
                del self._tries[net.version][value]
                self._forget_near(_near_network(net.network_address), key)
            return removed
        if kind == "device":
            return self._devices.pop(value, None)
        return self._wallets.pop(value, None)

    def _forget_near(self, network: str, key: str) -> None:
        bucket = self._near.get(network)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self._near[network]

    # -- lookups ------------------------------------------------------------------------
    def match_ip(self, ip: str, now: float) -> BlacklistEntry | None:
        """The active entry covering `ip`: an exact IP first, else the longest active range."""
        try:
            addr = _address(ip)
        except ValueError:
            return None
        text = addr.compressed
        exact = self._ips.get(text)
        if exact is not None and exact.active(now):
            return exact
        return self._match_range(addr.version, text, now)

    def _match_range(self, version: int, text: str, now: float) -> BlacklistEntry | None:
        trie = self._tries[version]
        prefix = trie.get_key(text)
        while prefix is not None:
            entry = trie[prefix]
            if entry.active(now):
                return entry
            prefix = trie.parent(prefix)
        return None

    def match_device(self, device_id: str, now: float) -> BlacklistEntry | None:
        entry = self._devices.get(device_id)
        return entry if entry is not None and entry.active(now) else None

    def match_wallet(self, wallet: str, now: float) -> BlacklistEntry | None:
        entry = self._wallets.get(wallet)
        return entry if entry is not None and entry.active(now) else None

    def near_ip(self, ip: str, now: float | None = None) -> bool:
        """Whether an ip/cidr entry overlaps the /24 (IPv4) or /64 (IPv6) around `ip`.

        With `now`, entries whose TTL has expired are ignored.
        """
        try:
            addr = _address(ip)
        except ValueError:
            return False
        bucket = self._near.get(_near_network(addr))
        if bucket and (now is None or any(e.active(now) for e in bucket.values())):
            return True
        # A range wider than the neighbourhood overlaps it iff it contains the address.
        if now is None:
            return addr.compressed in self._tries[addr.version]
        return self._match_range(addr.version, addr.compressed, now) is not None

    def get(self, kind: str, value: str) -> BlacklistEntry | None:
        try:
            value = normalise_value(kind, value)
        except ValueError:
            return None
        table = {"ip": self._ips, "cidr": self._cidrs, "device": self._devices, "wallet": self._wallets}
        return table[kind].get(value)

    def __iter__(self) -> Iterator[BlacklistEntry]:
        for table in (self._ips, self._cidrs, self._devices, self._wallets):
            yield from table.values()

    def __len__(self) -> int:
        return len(self._ips) + len(self._cidrs) + len(self._devices) + len(self._wallets)
