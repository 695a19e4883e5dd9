"""Exact expected hard-rule labels: a brute-force reference of CONTRACT §4.

Written from the contract, not from the detector's code: plain lists and loops over the
inputs in production order, no windows, no pruning.

Why production order is the order that matters, and how the simulator makes it so:

* `click_spam` counts a device's earlier clicks. A device's clicks share its key, hence
  one partition, and Kafka keeps their production order.
* `duplicate_click` keeps the first accepted click of an id. A resend from the same device
  follows the original through the same partitions. A resend from *another* device travels
  through other partitions, so it waits (`dependencies`) until the original's verdict is
  out before it is produced.
* `session_url_repeat` counts a session's earlier clicks on a URL, and the detector reaches
  the session stage through per-click_id partitions: even one device's clicks may arrive
  there in another order. So a click of a (session, url) group whose outcome could depend
  on order (some click has >= N-1 others of the group in its window, in *any* order) is
  produced only after the previous click of its group has its verdict. Groups that can
  never reach N in a window are order-free and not held back.
* Out-of-order events are counted by event time; the reference is exact while every event
  is at most `lateness` behind the newest one of its device and session (`check_lateness`).
"""

from __future__ import annotations

import ipaddress
import itertools
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


def reference_labels(clicks: Sequence[Click | None], entries: Sequence[dict[str, Any]], rules: Rules) -> list[list[str]]:
    """Hard fraud types of each input (None = rejected input: no labels), in contract order."""
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
    device_times: dict[str, list[float]] = defaultdict(list)
    session_times: dict[tuple[str, str], list[float]] = defaultdict(list)
    originals: dict[str, list[float]] = defaultdict(list)  # accepted non-duplicates per click_id
    labels: list[list[str]] = []
    for c in clicks:
        if c is None:
            labels.append([])
            continue
        ts, hits = c["ts"], set()
        ip = ipaddress.ip_address(c["ip"])
        # "lies in a range": the ip's own network at each listed prefix length is listed
        if ip in ips or any(
            ipaddress.ip_network((ip, plen), strict=False) in group
            for plen, group in nets.items()
            if plen <= ip.max_prefixlen
        ):
            hits.add("ip_blacklist")
        if c["device_id"] in devices:
            hits.add("device_blacklist")
        prior = device_times[c["device_id"]]
        if sum(_in_window(t, ts, rules.click_spam_window) for t in prior) >= rules.click_spam_threshold:
            hits.add("click_spam")
        prior.append(ts)  # a duplicate still counts as a click of its device
        if c.get("session_id") and c.get("url"):
            group = session_times[(c["session_id"], c["url"])]
            if sum(_in_window(t, ts, rules.session_url_window) for t in group) + 1 >= rules.session_url_threshold:
                hits.add("session_url_repeat")
            group.append(ts)
        firsts = originals[c["click_id"]]
        if any(abs(ts - t) <= rules.dedup_seconds for t in firsts):
            hits.add("duplicate_click")
        else:
            firsts.append(ts)
        if c.get("user_agent") and is_crawler(c["user_agent"]):
            hits.add("bot_user_agent")
        labels.append([t for t in HARD_FRAUD_TYPES if t in hits])
    return labels


def dependencies(clicks: Sequence[Click | None], rules: Rules) -> list[tuple[int, ...]]:
    """For each input, the earlier inputs whose verdicts must be out before it is produced."""
    deps: list[set[int]] = [set() for _ in clicks]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    first_of: dict[str, int] = {}
    for i, c in enumerate(clicks):
        if c is None:
            continue
        if c.get("session_id") and c.get("url"):
            groups[(c["session_id"], c["url"])].append(i)
        first = first_of.setdefault(c["click_id"], i)
        if first != i and clicks[first]["device_id"] != c["device_id"]:  # type: ignore[index]
            deps[i].add(first)
    for members in groups.values():
        if len(members) < rules.session_url_threshold:
            continue
        times = [clicks[i]["ts"] for i in members]  # type: ignore[index]
        # Order-sensitive iff some click could see N-1 others in its window in some order.
        sensitive = any(
            sum(_in_window(t, ts, rules.session_url_window) for k, t in enumerate(times) if k != j)
            >= rules.session_url_threshold - 1
            for j, ts in enumerate(times)
        )
        if sensitive:
            for prev, cur in itertools.pairwise(members):
                deps[cur].add(prev)
    return [tuple(sorted(d)) for d in deps]


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
