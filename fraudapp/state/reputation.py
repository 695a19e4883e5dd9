"""Reputation: what the recent clicks of one address, network or fingerprint look like together.

An *entity* is `ip:<address>`, `net:<prefix>` (the /24 of an IPv4 address, the /64 of an
IPv6 one) or `fp:<fingerprint>`. The reputation stage (reputation_stage.py), keyed by
entity, keeps each entity's `EntityActivity` and, once the entity has been seen with two
devices, publishes its `Summary` to the `reputation` global table, which every worker's
judge reads (`ReputationIndex`) without a hop.

A summary has one `Window` per horizon (`FRAUDAPP_REPUTATION_WINDOWS`, default 10 min
and 1 h), counted back from the entity's newest click `t`:
- devices: distinct device ids with a click in (t - H, t];
- clicks: clicks in the minutes that overlap (t - H, t] (counted per whole minute of
  event time: an hour of clicks is 60 numbers, not one per click);
- user_agents: distinct User-Agents (by CRC-32) with a click in the horizon;
- new_devices: devices of the horizon whose first click on this entity is in it;
- top_publisher / top_publisher_devices: the publisher most of those devices last clicked
  for, and how many did (ties: the smallest name).

Bounded: an entity remembers its devices and User-Agents for the longest horizon, at most
`max_devices` devices (then the least recently seen go, so counts saturate there) and
`MAX_USER_AGENTS` User-Agents. Pure: no I/O, no clock.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fraudapp.models import ClickReputation, Summary, Window

MAX_USER_AGENTS = 64
MINUTE = 60.0


@lru_cache(maxsize=65536)  # addresses repeat; parsing is the costly part
def network_of(ip: str) -> str | None:
    """'198.51.100.7' -> '198.51.100.0/24'; IPv6 -> its /64; None when not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 64
    return ipaddress.ip_network((addr, prefix), strict=False).compressed


def entities_of(ip: str, fingerprint: str | None) -> list[str]:
    """The entities a click counts towards."""
    keys = [f"ip:{ip}"]
    network = network_of(ip)
    if network is not None:
        keys.append(f"net:{network}")
    if fingerprint:
        keys.append(f"fp:{fingerprint}")
    return keys


def user_agent_id(user_agent: str | None) -> str:
    """A short stable id of a User-Agent ('' when there is none)."""
    if not user_agent:
        return ""
    return f"{zlib.crc32(user_agent.encode()):08x}"


@dataclass(slots=True)
class EntityActivity:
    """One entity's recent devices, User-Agents and clicks per minute."""

    devices: dict[str, list[Any]]  # device_id -> [first ts, last ts, publisher of the last click]
    user_agents: dict[str, float]  # user_agent_id -> last ts
    minutes: dict[int, int]  # minute of event time -> clicks
    newest: float = 0.0
    published: bool = False  # its summary is in the reputation table

    @classmethod
    def from_json(cls, raw: Any) -> EntityActivity:
        if not raw:
            return cls({}, {}, {})
        return cls(raw["d"], raw["u"], {int(k): v for k, v in raw["m"].items()}, float(raw["t"]), bool(raw["p"]))

    def to_json(self) -> dict[str, Any]:
        return {"d": self.devices, "u": self.user_agents, "m": {str(k): v for k, v in self.minutes.items()},
                "t": self.newest, "p": self.published}

    @staticmethod
    def json_expires_at(raw: Any, memory: float, lateness: float) -> float:
        """When a stored value can go: nothing in it can count in any horizon any more."""
        return float(raw["t"]) + memory + lateness

    def add(self, ts: float, device_id: str, user_agent: str, publisher: str | None, memory: float,
            max_devices: int) -> None:  # fmt: skip
        """Count one click; `memory`: the longest horizon."""
        seen = self.devices.get(device_id)
        if seen is None:
            self.devices[device_id] = [ts, ts, publisher]
        else:
            seen[0] = min(seen[0], ts)
            if ts >= seen[1]:
                seen[1], seen[2] = ts, publisher
        if user_agent and ts >= self.user_agents.get(user_agent, float("-inf")):
            self.user_agents[user_agent] = ts
        minute = int(ts // MINUTE)
        new_minute = minute not in self.minutes
        self.minutes[minute] = self.minutes.get(minute, 0) + 1
        self.newest = max(self.newest, ts)
        if new_minute or len(self.devices) > max_devices or len(self.user_agents) > MAX_USER_AGENTS:  # forgetting once a minute is enough
            self._forget(memory, max_devices)

    def _forget(self, memory: float, max_devices: int) -> None:
        horizon = self.newest - memory
        if len(self.devices) > max_devices or any(v[1] <= horizon for v in self.devices.values()):
            kept = sorted(((v[1], k) for k, v in self.devices.items() if v[1] > horizon), reverse=True)[:max_devices]
            self.devices = {k: self.devices[k] for _, k in kept}
        if len(self.user_agents) > MAX_USER_AGENTS or any(t <= horizon for t in self.user_agents.values()):
            recent = sorted(((t, k) for k, t in self.user_agents.items() if t > horizon), reverse=True)
            self.user_agents = {k: t for t, k in recent[:MAX_USER_AGENTS]}
        oldest_minute = int(horizon // MINUTE)
        if any(m < oldest_minute for m in self.minutes):
            self.minutes = {m: n for m, n in self.minutes.items() if m >= oldest_minute}

    def window(self, seconds: float) -> Window:
        start = self.newest - seconds
        devices = [v for v in self.devices.values() if v[1] > start]
        publishers = Counter(v[2] for v in devices if v[2] is not None)
        top, top_devices = (min(publishers.items(), key=lambda kv: (-kv[1], kv[0])) if publishers else (None, 0))
        return Window(
            seconds=seconds,
            devices=len(devices),
            clicks=sum(n for m, n in self.minutes.items() if (m + 1) * MINUTE > start),
            user_agents=sum(1 for t in self.user_agents.values() if t > start),
            new_devices=sum(1 for v in devices if v[0] > start),
            top_publisher=top,
            top_publisher_devices=top_devices,
        )

    def summary(self, entity: str, horizons: tuple[float, ...]) -> Summary:
        return Summary(entity, self.newest, tuple(self.window(h) for h in horizons))


class ReputationIndex:
    """Every published entity's summary, in memory, on every worker."""

    def __init__(self) -> None:
        self._by_entity: dict[str, Summary] = {}

    def apply(self, entity: str, value: dict[str, Any] | None) -> None:
        """A key's value written (None: deleted). A summary older than the one held is
        ignored: the writer applies its own summaries at once, before their changelog
        records come back."""
        if value is None:
            self._by_entity.pop(entity, None)
            return
        summary = Summary.from_json(entity, value)
        held = self._by_entity.get(entity)
        if held is None or summary.t >= held.t:
            self._by_entity[entity] = summary

    def get(self, entity: str) -> Summary | None:
        return self._by_entity.get(entity)

    def of_click(self, ip: str, fingerprint: str | None, ts: float, memory: float) -> ClickReputation:
        found: dict[str, Summary | None] = {"ip": None, "network": None, "fingerprint": None}
        for entity in entities_of(ip, fingerprint):
            summary = self._by_entity.get(entity)
            if summary is not None and summary.t > ts - memory:
                found[{"ip": "ip", "net": "network", "fp": "fingerprint"}[entity.partition(":")[0]]] = summary
        return ClickReputation(**found)

    def __contains__(self, entity: object) -> bool:
        return entity in self._by_entity

    def __len__(self) -> int:
        return len(self._by_entity)
