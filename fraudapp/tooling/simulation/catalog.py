"""Realistic raw material for simulated traffic: user agents, address blocks, URLs.

Kept as data so that tests can check the claims made about it (e.g. that crawlerdetect
flags every declared crawler and no browser UA), instead of trusting a comment.
"""

from __future__ import annotations

import ipaddress
import random

# Current desktop and mobile browsers, as sent by real devices (none is flagged by
# crawlerdetect: checked in tests/unit/test_simulation.py).
BROWSER_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
)
MOBILE_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
)
# Declared crawlers and HTTP tools: crawlerdetect flags all of them.
CRAWLER_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Wget/1.21.4",
    "Go-http-client/1.1",
    "Scrapy/2.11.1 (+https://scrapy.org)",
)
# Headless browsers that announce themselves (crawlerdetect flags these) ...
HEADLESS_DECLARED_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
)
# ... and automation that only leaves a token crawlerdetect does not know (soft score only).
HEADLESS_UNDECLARED_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 puppeteer",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Selenium/4.18",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Playwright/1.43 Chrome/124.0.0.0 Safari/537.36",
)

# Consumer ISP blocks (global unicast; none in tables/datacenter_ranges.txt).
RESIDENTIAL_BLOCKS: tuple[str, ...] = (
    "24.30.0.0/16", "73.15.0.0/16", "86.140.0.0/16", "92.184.0.0/16", "98.210.0.0/16",
    "101.180.0.0/16", "49.36.0.0/16", "177.92.0.0/16", "189.6.0.0/16", "41.200.0.0/16",
    "2a02:1210::/32", "2601:600::/24",
)
# Hosting blocks listed in tables/datacenter_ranges.txt (aws, digitalocean, hetzner).
DATACENTER_BLOCKS: tuple[str, ...] = ("3.64.0.0/12", "46.101.0.0/16", "104.131.0.0/16", "128.199.0.0/16")
# Public addresses many people share (issue 19). All global unicast, none in
# tables/datacenter_ranges.txt, RESIDENTIAL_BLOCKS or BLACKLIST_ZONE (tests check all three).
# Business-ISP blocks: one address of one of them is an office's NAT.
OFFICE_BLOCKS: tuple[str, ...] = ("62.96.0.0/16", "80.81.0.0/16", "193.30.0.0/16", "195.37.0.0/16")
# Mobile carriers' public egress blocks, with the carrier's country: behind carrier-grade
# NAT a phone leaves from some address of a small pool (one /24 of such a block), not from
# 100.64.0.0/10 (the shared space inside the carrier, never seen on the internet).
CARRIER_BLOCKS: dict[str, str] = {"172.56.0.0/16": "US", "174.205.0.0/16": "US", "92.40.0.0/16": "GB"}
# Universities' own /16s, with their country.
UNIVERSITY_BLOCKS: dict[str, str] = {"128.32.0.0/16": "US", "171.64.0.0/16": "US", "129.67.0.0/16": "GB",
                                     "130.149.0.0/16": "DE"}
# Where a VPN provider's exits are. Real exits are mostly rented servers, i.e. often in
# hosting ranges a full datacenter list would name; these blocks are deliberately NOT in
# tables/datacenter_ranges.txt, so that vpn_exit measures the shared-address effect alone
# (a datacenter penalty would only add what the datacenter populations already show).
VPN_EXIT_BLOCKS: tuple[str, ...] = ("146.70.0.0/16", "185.159.156.0/22")
# The only place blacklisted sources live, and no other population ever uses it: entries
# left by earlier runs can then never change the truth of a later one.
BLACKLIST_ZONE = ipaddress.ip_network("185.220.96.0/19")
COUNTRIES: tuple[str, ...] = ("US", "US", "US", "DE", "GB", "FR", "IN", "BR", "CA", "NL", "JP", "AU")
SITES: tuple[str, ...] = ("shop.example", "news.example", "games.example", "travel.example", "recipes.example")


def random_ip(rng: random.Random, blocks: tuple[str, ...]) -> str:
    net = ipaddress.ip_network(rng.choice(blocks))
    # Skip the network's first and last 256 addresses: never .0 / broadcast-like values.
    offset = rng.randrange(256, net.num_addresses - 256)
    return (net.network_address + offset).compressed


def subnet_in(rng: random.Random, block: str, prefix: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A random /`prefix` inside `block`, never its first or last one."""
    net = ipaddress.ip_network(block)
    count = 2 ** (prefix - net.prefixlen)
    k = rng.randrange(1, count - 1) if count > 2 else 0
    return ipaddress.ip_network((net.network_address + k * 2 ** (net.max_prefixlen - prefix), prefix))


def host_in(rng: random.Random, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A host address of `net`: never its first or last address (.0 / .255 in a /24)."""
    return (net.network_address + rng.randrange(1, net.num_addresses - 1)).compressed


def landing_urls(site: str) -> list[str]:
    return [f"https://{site}/lp/{path}" for path in ("offer", "sale", "new", "deal-1", "deal-2", "signup", "app")]
