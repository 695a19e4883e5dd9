"""Exact expected hard-rule labels: a brute-force reference of CONTRACT §4.

Written from the contract, not from the detector's code: plain lists and loops over the
inputs in production order, no windows, no pruning.

Order (CONTRACT §4): every rule judges the clicks of one partition of `clicks` in their
Kafka order, which is the production order of each device's clicks (a device's clicks
share its key, hence one partition). Producers never wait for a verdict, so clicks of
*different* devices reach a stage keyed otherwise in any order. The contract lets exactly
those be counted in either order; the reference therefore gives each input two lists:

* `hard`: the fraud types that fire in every order Kafka allows — the detector must
  report each of them;
* `either`: the types that fire in some orders only — the detector may report them.
  `session_url_repeat` when the click reaches N only with clicks of the session's other
  devices (any of them, produced before or after it); `duplicate_click` when the other
  clicks with its id come from other devices.

Everything else is exact: a type in neither list must not fire. Out-of-order events are
counted by event time; the reference is exact while every event is at most `lateness`
behind the newest one of its device and session (`check_lateness`).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from crawlerdetect import CrawlerDetect

from fraudapp.models import HARD_FRAUD_TYPES
from fraudapp.settings import Settings

Click = dict[str, Any]


@dataclass(frozen=True)
class Rules:
    click_spam_threshold: int = 2
    click_spam_window: float = 10.0
    session_url_threshold: int = 3
    session_url_window: float = 10.0
    dedup_seconds: float = 86400.0
    lateness: float = 60.0

    @classmethod
    def from_settings(cls, s: Settings) -> Rules:
        return cls(s.click_spam_threshold, s.click_spam_window_seconds, s.session_url_threshold,
                   s.session_url_window_seconds, s.dedup_seconds, s.lateness_seconds)


class LatenessError(ValueError):
    """The generated traffic has an event too late for exact counting: a generator bug."""


_CRAWLERS = CrawlerDetect()


@lru_cache(maxsize=4096)
def is_crawler(user_agent: str) -> bool:
    return bool(user_agent.strip()) and bool(_CRAWLERS.is_crawler(user_agent))


def _in_window(t: float, ts: float, window: float) -> bool:
    return ts - window <= t <= ts  # CONTRACT §4: event time in [ts - W, ts], both ends


@dataclass(frozen=True, slots=True)
class Expected:
    """The hard fraud types of one input: `hard` must fire, `either` may (see above)."""

    hard: list[str]
    either: list[str]


def _blacklist(entries: Sequence[dict[str, Any]]) -> tuple[set[Any], dict[int, set[Any]], set[str]]:
    ips, devices = set(), set()
    nets: dict[int, set[Any]] = defaultdict(set)  # prefix length -> networks of that length
    for e in entries:
        if e.get("op", "add") != "add":
            continue
        if e["kind"] == "ip":
            ips.add(ipaddress.ip_address(e["value"]))
        elif e["kind"] == "cidr":
            net = ipaddress.ip_network(e["value"], strict=False)
            nets[net.prefixlen].add(net)
        elif e["kind"] == "device":
            devices.add(e["value"])
    return ips, nets, devices


def reference_labels(clicks: Sequence[Click | None], entries: Sequence[dict[str, Any]], rules: Rules) -> list[Expected]:
    """Expected hard fraud types of each input (rejected inputs: none), in contract order."""
    ips, nets, devices = _blacklist(entries)
    sessions: dict[tuple[str, str], list[int]] = defaultdict(list)  # (session, url) -> inputs
    ids: dict[str, list[int]] = defaultdict(list)  # click_id -> inputs
    for i, c in enumerate(clicks):
        if c is not None:
            if c.get("session_id") and c.get("url"):
                sessions[(c["session_id"], c["url"])].append(i)
            ids[c["click_id"]].append(i)
    device_times: dict[str, list[float]] = defaultdict(list)
    originals: dict[str, list[float]] = defaultdict(list)  # single-device ids: accepted non-duplicates
    out: list[Expected] = []
    for i, c in enumerate(clicks):
        if c is None:
            out.append(Expected([], []))
            continue
        ts, device, hits, maybe = c["ts"], c["device_id"], set(), set()
        ip = ipaddress.ip_address(c["ip"])
        # "lies in a range": the ip's own network at each listed prefix length is listed
        if ip in ips or any(
            ipaddress.ip_network((ip, plen), strict=False) in group
            for plen, group in nets.items()
            if plen <= ip.max_prefixlen
        ):
            hits.add("ip_blacklist")
        if device in devices:
            hits.add("device_blacklist")
        prior = device_times[device]
        if sum(_in_window(t, ts, rules.click_spam_window) for t in prior) >= rules.click_spam_threshold:
            hits.add("click_spam")
        prior.append(ts)  # a duplicate still counts as a click of its device
        if c.get("session_id") and c.get("url"):
            own = others = 0
            for j in sessions[(c["session_id"], c["url"])]:
                other = clicks[j]
                if j == i or not _in_window(other["ts"], ts, rules.session_url_window):  # type: ignore[index]
                    continue
                if other["device_id"] != device:  # type: ignore[index]
                    others += 1  # any position: another partition, either order
                elif j < i:
                    own += 1
            if own + 1 >= rules.session_url_threshold:
                hits.add("session_url_repeat")
            elif own + others + 1 >= rules.session_url_threshold:
                maybe.add("session_url_repeat")
        same_id = ids[c["click_id"]]
        if all(clicks[j]["device_id"] == device for j in same_id):  # type: ignore[index]
            firsts = originals[c["click_id"]]  # one device: Kafka order decides, exactly
            if any(abs(ts - t) <= rules.dedup_seconds for t in firsts):
                hits.add("duplicate_click")
            else:
                firsts.append(ts)
        else:
            times = [clicks[j]["ts"] for j in same_id]  # type: ignore[index]
            earlier_own = any(
                j < i and clicks[j]["device_id"] == device and abs(ts - clicks[j]["ts"]) <= rules.dedup_seconds  # type: ignore[index]
                for j in same_id
            )
            within = any(j != i and abs(ts - clicks[j]["ts"]) <= rules.dedup_seconds for j in same_id)  # type: ignore[index]
            # An earlier copy of its own device makes it a duplicate in every order, as long
            # as no chain of horizons can intervene (the whole id spans one horizon).
            if earlier_own and max(times) - min(times) <= rules.dedup_seconds:
                hits.add("duplicate_click")
            elif within:
                maybe.add("duplicate_click")
        if c.get("user_agent") and is_crawler(c["user_agent"]):
            hits.add("bot_user_agent")
        out.append(Expected([t for t in HARD_FRAUD_TYPES if t in hits], [t for t in HARD_FRAUD_TYPES if t in maybe]))
    return out


def check_lateness(clicks: Sequence[Click | None], rules: Rules) -> None:
    """Raise unless every event is within `lateness` of the newest earlier one of its keys."""
    newest: dict[tuple[str, str], float] = {}
    for i, c in enumerate(clicks):
        if c is None:
            continue
        keys = [("device", c["device_id"])]
        if c.get("session_id") and c.get("url"):
            keys.append(("session", c["session_id"]))
        for key in keys:
            top = newest.get(key, c["ts"])
            if top - c["ts"] > rules.lateness:
                raise LatenessError(f"input {i}: {key[0]} {key[1]} event {top - c['ts']:.1f} s behind its newest")
            newest[key] = max(top, c["ts"])
