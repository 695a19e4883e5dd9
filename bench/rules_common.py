"""The hard rules of CONTRACT.md §4 as plain functions, shared by the peer implementations
(quix_rules.py, redis_service.py) so that they judge like fraudapp's hard rules do:
click_spam (device sliding window), session_url_repeat (session/url window), ip/cidr and
device blacklist, duplicate_click, bot_user_agent (crawlerdetect). No soft score, no
alerts, no metrics: those are fraudapp extras the peers do not pay for."""

from __future__ import annotations

import bisect
import ipaddress
import time

from crawlerdetect import CrawlerDetect

CLICK_SPAM_T, CLICK_SPAM_W = 2, 10.0
SESSION_N, SESSION_W = 3, 10.0
DEDUP_SECONDS = 86400.0
LATENESS = 60.0

_crawlers = CrawlerDetect()


class Blacklist:
    def __init__(self, entries: list[dict]) -> None:
        self.ips = {e["value"] for e in entries if e["kind"] == "ip"}
        self.devices = {e["value"] for e in entries if e["kind"] == "device"}
        nets = [ipaddress.ip_network(e["value"], strict=False) for e in entries if e["kind"] == "cidr"]
        v4 = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4)
        self._starts = [a for a, _ in v4]
        self._ends = [b for _, b in v4]

    def ip_hit(self, ip: str) -> bool:
        if ip in self.ips:
            return True
        if not self._starts or ":" in ip:
            return False
        x = int(ipaddress.IPv4Address(ip))
        i = bisect.bisect_right(self._starts, x) - 1
        return i >= 0 and x <= self._ends[i]


def prune_and_count(stamps: list[float], ts: float, window: float) -> int:
    """Drop stamps older than the lateness horizon; count those in [ts - window, ts]."""
    horizon = max(stamps[-1], ts) - window - LATENESS if stamps else 0.0
    while stamps and stamps[0] < horizon:
        stamps.pop(0)
    return sum(1 for s in stamps if ts - window <= s <= ts)


def verdict(
    click: dict,
    *,
    device_prior: int,
    duplicate: bool,
    session_prior: int | None,
    ip_blacklisted: bool,
    device_blacklisted: bool,
) -> dict:
    types = []
    if ip_blacklisted:
        types.append("ip_blacklist")
    if device_prior >= CLICK_SPAM_T:
        types.append("click_spam")
    if session_prior is not None and session_prior + 1 >= SESSION_N:
        types.append("session_url_repeat")
    if device_blacklisted:
        types.append("device_blacklist")
    if duplicate:
        types.append("duplicate_click")
    ua = click.get("user_agent")
    if ua and _crawlers.isCrawler(ua):
        types.append("bot_user_agent")
    return {
        "click_id": click["click_id"], "device_id": click["device_id"], "ip": click["ip"], "ts": click["ts"],
        "campaign_id": click.get("campaign_id"), "publisher_id": click.get("publisher_id"),
        "verdict": "fraud" if types else "clean", "fraud_types": types,
        "fraud_type": types[0] if types else None, "detected_at": time.time(),
    }  # fmt: skip
