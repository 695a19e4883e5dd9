"""Who clicks: one function per population, each planning about `n` clicks.

A population function only decides *what* each click says and *when* it happens (offset
`at` seconds after the run's start, plus `delay` before it is sent for out-of-order and
late events). Ids, timestamps, bytes, production order and the truth are the generator's
and truth module's job, so populations stay simple and can be mixed freely.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraudapp.tooling.simulation import catalog

# People, expected clean (unless the truth's own hard rules fire); every other population
# but malformed is a bot or a fraud pattern, expected fraud. The evaluation reports each
# population apart, humans and frauds marked (the truth's `bot`).
HUMAN_POPULATIONS = frozenset({"humans", "late", "office_nat", "carrier_cgnat", "university", "vpn_exit"})
# The maximum delay of any out-of-order/late/replayed event: well inside the detector's
# lateness (60 s), where CONTRACT §4 counting is exact (checked again by the truth).
MAX_DELAY = 30.0


@dataclass(slots=True)
class Planned:
    population: str
    at: float  # event time, seconds after the run's start
    click: dict[str, Any] | None = None  # a valid click's fields (click_id and ts filled later)
    raw: bytes | None = None  # a malformed input's exact bytes
    key: str | None = None  # Kafka key when not the click's device_id
    error: str | None = None  # expected rejection code of a malformed input
    delay: float = 0.0  # sent this long after `at` (out of order / late)
    replay_of: Planned | None = None  # resend of that click (same click_id)
    serial: int = 0  # generation order: the tie-break of production order
    click_id: str | None = None


@dataclass
class Context:
    rng: random.Random
    run: str
    span: float  # seconds of event time the run covers
    entries: list[dict[str, Any]] = field(default_factory=list)  # blacklist updates to publish
    planned: list[Planned] = field(default_factory=list)  # everything planned so far
    # A population's ongoing group (an office, a carrier's pool, a farm...): the generator
    # may call a population again for clicks it dropped past the span, and the next devices
    # then join the same group instead of starting a new one.
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: dict[str, int] = field(default_factory=dict)

    def new_id(self, prefix: str) -> str:
        n = self._ids.get(prefix, 0)
        self._ids[prefix] = n + 1
        return f"{prefix}-{self.run}-{n}"

    def zipf(self, prefix: str, n: int, s: float = 1.2) -> str:
        """Skewed keys: rank k is picked with weight 1/k^s (a few hot publishers/campaigns)."""
        cum = _ZIPF.get((n, s))
        if cum is None:
            cum = _ZIPF[(n, s)] = list(itertools.accumulate(1 / (k**s) for k in range(1, n + 1)))
        return f"{prefix}-{self.rng.choices(range(n), cum_weights=cum)[0]}"

    def start(self) -> float:
        return self.rng.uniform(0, self.span)

    def member(self, population: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The population's current group, counting one more member: a new group from
        `make()` (with "size": how many members it takes) once the current one is full."""
        group = self.groups.get(population)
        if group is None or group["members"] >= group["size"]:
            group = self.groups[population] = {**make(), "members": 0}
        group["members"] += 1
        return group


_ZIPF: dict[tuple[int, float], list[float]] = {}


@dataclass
class Device:
    device_id: str
    ip: str
    user_agent: str | None
    fingerprint: str | None
    country: str
    mobile: bool = False


def _fingerprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _click(ctx: Context, dev: Device, *, session: str | None, url: str, mouse: dict[str, Any] | None,
           publisher: str | None = None) -> dict[str, Any]:
    """A click's fields; `publisher`: the one a fraud works for (default: a skewed draw)."""
    campaign = ctx.zipf("cmp", 30)
    click: dict[str, Any] = {
        "click_id": None,
        "ts": None,
        "device_id": dev.device_id,
        "ip": dev.ip,
        "session_id": session,
        "url": url,
        "campaign_id": campaign,
        "publisher_id": publisher or ctx.zipf("pub", 50),
        "ad_id": f"ad-{campaign}-{ctx.rng.randrange(5)}",
        "user_agent": dev.user_agent,
        "fingerprint": dev.fingerprint,
        "mouse": mouse,
        "country": dev.country,
    }
    return {k: v for k, v in click.items() if v is not None or k in ("click_id", "ts")}


def human_mouse(rng: random.Random) -> dict[str, Any]:
    return {"moves": rng.randint(6, 80), "duration_ms": rng.randint(350, 8000),
            "straightness": round(rng.uniform(0.35, 0.9), 3)}


def robot_mouse(rng: random.Random) -> dict[str, Any]:
    return {"moves": rng.randint(0, 2), "duration_ms": rng.randint(0, 80),
            "straightness": round(rng.uniform(0.985, 1.0), 3)}


def human_device(ctx: Context, prefix: str = "h", ip: str | None = None) -> Device:
    rng = ctx.rng
    mobile = rng.random() < 0.35
    return Device(
        device_id=ctx.new_id(prefix),
        ip=ip or catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS),
        user_agent=rng.choice(catalog.MOBILE_UAS if mobile else catalog.BROWSER_UAS),
        fingerprint=_fingerprint(rng),
        country=rng.choice(catalog.COUNTRIES),
        mobile=mobile,
    )


def human_session(ctx: Context, pop: str, dev: Device, late: bool = False) -> list[Planned]:
    """One browsing session: a few clicks over several URLs of one site at human pace."""
    rng = ctx.rng
    urls = catalog.landing_urls(rng.choice(catalog.SITES))
    visits = rng.sample(urls, rng.randint(2, 4))
    session = ctx.new_id("s")
    t = ctx.start()
    out = []
    for _ in range(rng.choices((1, 2, 3, 4, 5, 6), weights=(20, 25, 20, 15, 10, 10))[0]):
        # People mostly move on; now and then they click the same ad again.
        url = rng.choice(visits)
        mouse = None if dev.mobile else human_mouse(rng)  # touch screens send no mouse
        # Late by up to 30 s, but never past a short run's end (the generator drops those).
        delay = rng.uniform(min(1.0, ctx.span / 2), min(MAX_DELAY, ctx.span)) if late else 0.0
        out.append(Planned(pop, t, _click(ctx, dev, session=session, url=url, mouse=mouse), delay=delay))
        t += 5.0 + min(rng.lognormvariate(2.5, 0.7), 120.0)
    return out


def humans(ctx: Context, n: int, pop: str = "humans", late: bool = False) -> list[Planned]:
    out: list[Planned] = []
    shared_ips: list[str] = []
    while len(out) < n:
        # Households and offices: a fifth of the devices share an address with another.
        ip = ctx.rng.choice(shared_ips) if shared_ips and ctx.rng.random() < 0.2 else None
        dev = human_device(ctx, ip=ip)
        shared_ips.append(dev.ip)
        for _ in range(ctx.rng.choice((1, 1, 2))):
            out.extend(human_session(ctx, pop, dev, late=late))
    return out


def late(ctx: Context, n: int) -> list[Planned]:
    """Humans whose clicks arrive 1-30 s after later-stamped ones (out of order, late)."""
    return humans(ctx, n, pop="late", late=True)


def click_spam(ctx: Context, n: int) -> list[Planned]:
    """Devices firing bursts of clicks; the first three are hot keys with most of them."""
    rng = ctx.rng
    out: list[Planned] = []
    k = 0
    while len(out) < n:
        hot = k < 3
        dc = rng.random() < 0.5
        dev = Device(
            ctx.new_id("spam"),
            catalog.random_ip(rng, catalog.DATACENTER_BLOCKS if dc else catalog.RESIDENTIAL_BLOCKS),
            rng.choice(catalog.BROWSER_UAS + catalog.MOBILE_UAS),
            _fingerprint(rng),
            rng.choice(catalog.COUNTRIES),
        )
        burst = rng.randint(100, 400) if hot else rng.randint(8, 60)
        t = ctx.start()
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        for _ in range(burst):
            mouse = None if rng.random() < 0.5 else {"moves": 0, "duration_ms": 0, "straightness": 1.0}
            # Cookie-less: a fresh session per click, so only click_spam applies.
            out.append(Planned("click_spam", t, _click(ctx, dev, session=ctx.new_id("s"), url=rng.choice(urls),
                                                       mouse=mouse)))
            t += rng.uniform(0.1, 1.5)
        k += 1
    return out


def repeaters(ctx: Context, n: int) -> list[Planned]:
    """One session clicking one URL again and again, rotating over several devices."""
    rng = ctx.rng
    out: list[Planned] = []
    while len(out) < n:
        ip = catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS)
        devices = [human_device(ctx, prefix="rep", ip=ip) for _ in range(rng.randint(2, 5))]
        session = ctx.new_id("s")
        url = rng.choice(catalog.landing_urls(rng.choice(catalog.SITES)))
        t = ctx.start()
        for _ in range(rng.randint(4, 10)):
            dev = rng.choice(devices)
            out.append(Planned("repeaters", t, _click(ctx, dev, session=session, url=url, mouse=robot_mouse(rng))))
            t += rng.uniform(0.3, 2.0)  # >= 50 ms apart in event time and production order
    return out


def blacklisted(ctx: Context, n: int) -> list[Planned]:
    """Human-looking traffic from blacklisted IPs, ranges and devices (entries published first)."""
    rng = ctx.rng
    out: list[Planned] = []
    zone = catalog.BLACKLIST_ZONE
    reason = f"simulated {ctx.run}"
    while len(out) < n:
        kind = rng.choice(("ip", "cidr", "device"))
        if kind == "ip":
            ip = (zone.network_address + rng.randrange(zone.num_addresses)).compressed
            dev = human_device(ctx, prefix="bl", ip=ip)
            value = ip
        elif kind == "cidr":
            subnet = list(zone.subnets(new_prefix=26))[rng.randrange(2 ** (26 - zone.prefixlen))]
            dev = human_device(ctx, prefix="bl", ip=(subnet.network_address + rng.randrange(64)).compressed)
            value = subnet.compressed
        else:
            dev = human_device(ctx, prefix="bl")
            value = dev.device_id
        ctx.entries.append({"op": "add", "kind": kind, "value": value, "reason": reason, "ttl_seconds": 21600})
        out.extend(human_session(ctx, "blacklisted", dev))
    return out


def crawlers(ctx: Context, n: int) -> list[Planned]:
    """Declared crawlers and HTTP tools from hosting ranges: no mouse, no fingerprint."""
    rng = ctx.rng
    out: list[Planned] = []
    while len(out) < n:
        dev = Device(ctx.new_id("crawl"), catalog.random_ip(rng, catalog.DATACENTER_BLOCKS),
                     rng.choice(catalog.CRAWLER_UAS), None, "US")
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        t = ctx.start()
        for _ in range(rng.randint(1, 6)):
            out.append(Planned("crawlers", t, _click(ctx, dev, session=None, url=rng.choice(urls), mouse=None)))
            t += rng.uniform(2.0, 20.0)
    return out


def headless(ctx: Context, n: int) -> list[Planned]:
    """Headless browsers: half announce themselves (hard rule), half only leave a token."""
    rng = ctx.rng
    out: list[Planned] = []
    while len(out) < n:
        uas = catalog.HEADLESS_DECLARED_UAS if rng.random() < 0.5 else catalog.HEADLESS_UNDECLARED_UAS
        dev = Device(ctx.new_id("hl"), catalog.random_ip(rng, catalog.DATACENTER_BLOCKS), rng.choice(uas),
                     _fingerprint(rng) if rng.random() < 0.5 else None, rng.choice(catalog.COUNTRIES))
        session = ctx.new_id("s")
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        t = ctx.start()
        for _ in range(rng.randint(1, 5)):
            out.append(Planned("headless", t, _click(ctx, dev, session=session, url=rng.choice(urls),
                                                     mouse=robot_mouse(rng))))
            t += rng.uniform(1.0, 15.0)
    return out


def click_farm(ctx: Context, n: int) -> list[Planned]:
    """Many phones behind a few addresses, sharing a few fingerprints, tapping slowly."""
    rng = ctx.rng
    out: list[Planned] = []
    while len(out) < n:
        ips = [catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS) for _ in range(rng.randint(2, 3))]
        prints = [_fingerprint(rng) for _ in range(3)]
        ua = rng.choice(catalog.MOBILE_UAS)
        start = ctx.start()
        for _ in range(rng.randint(20, 60)):
            dev = Device(ctx.new_id("farm"), rng.choice(ips), ua, rng.choice(prints), "IN")
            session = ctx.new_id("s")
            urls = catalog.landing_urls(rng.choice(catalog.SITES))
            t = start + rng.uniform(0, 30)
            for _ in range(rng.randint(1, 3)):
                mouse = {"moves": rng.randint(2, 4), "duration_ms": rng.randint(120, 300),
                         "straightness": round(rng.uniform(0.96, 0.99), 3)}
                out.append(Planned("click_farm", t, _click(ctx, dev, session=session, url=rng.choice(urls),
                                                           mouse=mouse)))
                t += rng.uniform(3.0, 30.0)
    return out


# --- People behind shared public addresses (issue 19): expected clean. ---
#
# Written from how such networks behave, not from the detector: the question they answer is
# what today's detector does with many honest people on few addresses.


def _person(ctx: Context, prefix: str, ip: str, country: str, mobile_share: float,
            browser_uas: tuple[str, ...] = catalog.BROWSER_UAS) -> Device:
    """A person's own device: its own id and fingerprint; a phone (touch: no mouse) with
    probability `mobile_share`, else a computer with a mouse."""
    rng = ctx.rng
    mobile = rng.random() < mobile_share
    ua = rng.choice(catalog.MOBILE_UAS if mobile else browser_uas)
    return Device(ctx.new_id(prefix), ip, ua, _fingerprint(rng), country, mobile)


def _people(ctx: Context, n: int, pop: str, person: Callable[[], Device],
            address: Callable[[Device], str] | None = None) -> list[Planned]:
    """People browsing as `humans` do (one or two sessions each); `address(device)` is the
    public address of each session when it changes between sessions (NAT pools)."""
    out: list[Planned] = []
    while len(out) < n:
        dev = person()
        for _ in range(ctx.rng.choice((1, 1, 2))):
            session_dev = dataclasses.replace(dev, ip=address(dev)) if address else dev
            out.extend(human_session(ctx, pop, session_dev))
    return out


def office_nat(ctx: Context, n: int) -> list[Planned]:
    """An office: hundreds of workstations (150-400), each a person with a fingerprint of
    its own and a real mouse, all leaving through the ONE public IPv4 address of the
    office's NAT. A managed fleet runs one standard browser build, so most of them share
    a User-Agent; their fingerprints still differ (fonts, screens, extensions)."""
    rng = ctx.rng

    def office() -> dict[str, Any]:
        return {"size": rng.randint(150, 400), "ip": catalog.random_ip(rng, catalog.OFFICE_BLOCKS),
                "country": rng.choice(catalog.COUNTRIES), "ua": rng.choice(catalog.BROWSER_UAS)}

    def person() -> Device:
        o = ctx.member("office_nat", office)
        ua = o["ua"] if rng.random() < 0.8 else rng.choice(catalog.BROWSER_UAS)
        return Device(ctx.new_id("off"), o["ip"], ua, _fingerprint(rng), o["country"])

    return _people(ctx, n, "office_nat", person)


def carrier_cgnat(ctx: Context, n: int) -> list[Planned]:
    """Phones of one mobile carrier behind carrier-grade NAT: each connection leaves from
    some address of the carrier's public pool (one /24 of its global unicast space), so
    hundreds of people (300-1000 a pool) share each address, and one person's sessions
    come from several. Mobile User-Agents, touch screens: no mouse."""
    rng = ctx.rng

    def pool() -> dict[str, Any]:
        block = rng.choice(sorted(catalog.CARRIER_BLOCKS))
        return {"size": rng.randint(300, 1000), "net": catalog.subnet_in(rng, block, 24),
                "country": catalog.CARRIER_BLOCKS[block]}

    def person() -> Device:
        p = ctx.member("carrier_cgnat", pool)
        return Device(ctx.new_id("cg"), catalog.host_in(rng, p["net"]), rng.choice(catalog.MOBILE_UAS),
                      _fingerprint(rng), p["country"], mobile=True)

    def address(dev: Device) -> str:
        return catalog.host_in(rng, ipaddress.ip_network(dev.ip).supernet(new_prefix=24))

    return _people(ctx, n, "carrier_cgnat", person, address)


def university(ctx: Context, n: int) -> list[Planned]:
    """A campus (1000-3000 people) on the university's /16: most devices have an address
    of their own in it; the Wi-Fi NAT puts the rest (40 %) behind a few of its addresses.
    Laptops and desktops with mice, and phones (45 %)."""
    rng = ctx.rng

    def campus() -> dict[str, Any]:
        block = rng.choice(sorted(catalog.UNIVERSITY_BLOCKS))
        net = ipaddress.ip_network(block)
        return {"size": rng.randint(1000, 3000), "net": net, "country": catalog.UNIVERSITY_BLOCKS[block],
                "wifi": [catalog.host_in(rng, net) for _ in range(rng.randint(2, 6))]}

    def person() -> Device:
        c = ctx.member("university", campus)
        ip = rng.choice(c["wifi"]) if rng.random() < 0.4 else catalog.host_in(rng, c["net"])
        return _person(ctx, "uni", ip, c["country"], 0.45)

    return _people(ctx, n, "university", person)


def vpn_exit(ctx: Context, n: int) -> list[Planned]:
    """Subscribers of a popular VPN provider: people of every kind (200-600 per server
    group) leaving through a handful (3-6) of exit addresses in one /24, each session
    through one of them. The exits are global unicast and deliberately not in
    tables/datacenter_ranges.txt, although real VPN exits often are in datacenter ranges:
    the point is to measure the shared-address effect alone (see catalog.VPN_EXIT_BLOCKS).
    The click's country is the exit's (a VPN moves people's apparent location)."""
    rng = ctx.rng

    def servers() -> dict[str, Any]:
        net = catalog.subnet_in(rng, rng.choice(catalog.VPN_EXIT_BLOCKS), 24)
        return {"size": rng.randint(200, 600), "country": rng.choice(catalog.COUNTRIES),
                "exits": sorted({catalog.host_in(rng, net) for _ in range(rng.randint(3, 6))})}

    def person() -> Device:
        g = ctx.member("vpn_exit", servers)
        return _person(ctx, "vpn", rng.choice(g["exits"]), g["country"], 0.35)

    def address(dev: Device) -> str:
        return rng.choice(ctx.groups["vpn_exit"]["exits"])

    return _people(ctx, n, "vpn_exit", person, address)


# --- Frauds built to pass per-device checks (issue 19): expected fraud. ---
#
# Each works for one publisher (the one paid for the clicks), as fraud does.


def _publisher(ctx: Context) -> str:
    return f"pub-{ctx.rng.randrange(50)}"


def farm_rotating_ids(ctx: Context, n: int) -> list[Planned]:
    """An automated phone farm that resets each phone's advertising id (and cookies) after
    every click or two: a rack of 10-30 phones of one model (one User-Agent) on 2-3
    lines. The id changes, the hardware does not: each phone keeps its fingerprint across
    the ids it rotates through. A cycle (reset, open the ad, tap) takes 5-15 s; an id's
    second tap comes 2-6 s after its first, so no id lives long. Touch: no mouse."""
    rng = ctx.rng
    out: list[Planned] = []
    while len(out) < n:
        lines = [catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS) for _ in range(rng.randint(2, 3))]
        ua, country, publisher = rng.choice(catalog.MOBILE_UAS), rng.choice(("IN", "BR")), _publisher(ctx)
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        for _ in range(rng.randint(10, 30)):
            ip, fingerprint = rng.choice(lines), _fingerprint(rng)
            t = rng.uniform(0, min(15.0, ctx.span))  # the farm runs all along the run
            while t <= ctx.span and len(out) < n:
                dev = Device(ctx.new_id("rot"), ip, ua, fingerprint, country, mobile=True)
                session, at = ctx.new_id("s"), t
                for _ in range(rng.choice((1, 1, 2))):
                    if at > ctx.span:
                        break
                    out.append(Planned("farm_rotating_ids", at, _click(ctx, dev, session=session, url=rng.choice(urls),
                                                                      mouse=None, publisher=publisher)))
                    at += rng.uniform(2.0, 6.0)
                t += rng.uniform(5.0, 15.0)
    return out


def proxy_farm(ctx: Context, n: int) -> list[Planned]:
    """Bots on a residential proxy network: every visit comes from another home address
    (a rotating pool: many different global addresses) with a fresh device id and cookies,
    but from the same few (3-5) profiles of an anti-detect browser, so each profile's
    fingerprint and User-Agent recur across the operation's 100-400 visits' device ids. The automation moves
    the mouse in a straight line of even steps before clicking (Puppeteer's
    `mouse.move(x, y, {steps})`: one step a frame)."""
    rng = ctx.rng

    def operation() -> dict[str, Any]:
        return {"size": rng.randint(100, 400), "publisher": _publisher(ctx),
                "profiles": [(rng.choice(catalog.BROWSER_UAS), _fingerprint(rng)) for _ in range(rng.randint(3, 5))],
                "urls": catalog.landing_urls(rng.choice(catalog.SITES))}

    out: list[Planned] = []
    while len(out) < n:
        op = ctx.member("proxy_farm", operation)  # a visit
        ua, fingerprint = rng.choice(op["profiles"])
        dev = Device(ctx.new_id("px"), catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS), ua, fingerprint,
                     rng.choice(catalog.COUNTRIES))
        session, t = ctx.new_id("s"), ctx.start()
        for _ in range(rng.choice((1, 1, 2))):
            steps = rng.choice((10, 20, 25, 50))
            mouse = {"moves": steps, "duration_ms": steps * rng.randint(15, 18), "straightness": 1.0}
            out.append(Planned("proxy_farm", t, _click(ctx, dev, session=session, url=rng.choice(op["urls"]),
                                                       mouse=mouse, publisher=op["publisher"])))
            t += rng.uniform(1.0, 4.0)
    return out


def emulator_farm(ctx: Context, n: int) -> list[Planned]:
    """Emulated devices replaying recorded human input: each emulator instance is a
    distinct device (its own id and spoofed fingerprint) with a common desktop browser's
    User-Agent and mouse paths taken from real people (varied moves, durations and
    curvature: as good as a human's), paced like a person. But one farm runs 100-300
    instances on a few servers, so many devices share its 2-4 addresses, and all of them
    click for the farm's publisher."""
    rng = ctx.rng

    def farm() -> dict[str, Any]:
        return {"size": rng.randint(100, 300), "publisher": _publisher(ctx), "country": rng.choice(catalog.COUNTRIES),
                "ips": [catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS) for _ in range(rng.randint(2, 4))]}

    out: list[Planned] = []
    while len(out) < n:
        f = ctx.member("emulator_farm", farm)
        dev = Device(ctx.new_id("emu"), rng.choice(f["ips"]), rng.choice(catalog.BROWSER_UAS), _fingerprint(rng),
                     f["country"])
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        session, t = ctx.new_id("s"), ctx.start()
        for _ in range(rng.randint(1, 3)):
            out.append(Planned("emulator_farm", t, _click(ctx, dev, session=session, url=rng.choice(urls),
                                                          mouse=human_mouse(rng), publisher=f["publisher"])))
            t += 5.0 + min(rng.lognormvariate(2.5, 0.7), 120.0)
    return out


SLOW_BOT_PERIOD = 60.0  # seconds between two clicks of one slow_bot device
SLOW_BOT_LAG = 0.25  # at most this much scheduling lag on each tick


def slow_bot(ctx: Context, n: int) -> list[Planned]:
    """A botnet of scripted HTTP clients on home machines: each device clicks once a minute
    on a timer (plus a little scheduling lag) for as long as the run lasts, each from its
    own home address, keeping its device id and cookie (one session). A script runs no
    JavaScript: no fingerprint, no mouse telemetry. Half send no User-Agent at all, half a
    copied browser's (no automation token). Over a short run each device clicks once or
    not at all: what a minute-long timer looks like in a few seconds of traffic."""
    rng = ctx.rng
    out: list[Planned] = []
    publisher = _publisher(ctx)
    while len(out) < n:
        ua = rng.choice(catalog.BROWSER_UAS) if rng.random() < 0.5 else None
        dev = Device(ctx.new_id("slow"), catalog.random_ip(rng, catalog.RESIDENTIAL_BLOCKS), ua, None,
                     rng.choice(catalog.COUNTRIES))
        urls = catalog.landing_urls(rng.choice(catalog.SITES))
        session = ctx.new_id("s")
        t = rng.uniform(0, min(SLOW_BOT_PERIOD, ctx.span))
        while t <= ctx.span and len(out) < n:
            out.append(Planned("slow_bot", t, _click(ctx, dev, session=session, url=rng.choice(urls), mouse=None,
                                                     publisher=publisher)))
            t += SLOW_BOT_PERIOD + rng.uniform(0, SLOW_BOT_LAG)
    return out


def replay(ctx: Context, n: int) -> list[Planned]:
    """Resends of earlier clicks (same click_id): mostly the same bytes from the same device,
    sometimes from another device and address (a captured click replayed elsewhere)."""
    rng = ctx.rng
    pool = [p for p in ctx.planned if p.click is not None and p.delay == 0.0 and p.replay_of is None]
    out: list[Planned] = []
    if not pool:  # replay mixed alone: bring its own originals
        pool = humans(ctx, max(1, n // 2), pop="replay")[: max(1, n // 2)]
        out.extend(pool)
    while len(out) < n:
        original = rng.choice(pool)
        delay = rng.uniform(min(0.5, ctx.span / 4), min(MAX_DELAY - 5, ctx.span / 2))
        if rng.random() < 0.8:
            out.append(Planned("replay", original.at, None, delay=delay, replay_of=original))
        else:
            click = dict(original.click or {})
            click["device_id"] = ctx.new_id("rp")
            click["ip"] = catalog.random_ip(rng, catalog.DATACENTER_BLOCKS)
            out.append(Planned("replay", original.at, click, delay=delay, replay_of=original))
    return out


def _valid_base(ctx: Context) -> dict[str, Any]:
    dev = human_device(ctx, prefix="bad")
    return {"click_id": ctx.new_id("bad"), "ts": 1700000000.0, "device_id": dev.device_id, "ip": dev.ip}


MALFORMED_KINDS: tuple[str, ...] = (
    "empty", "oversize", "invalid_utf8", "not_json", "not_object",
    "missing_field", "wrong_type", "invalid_value", "invalid_ip", "invalid_time",
)


def malformed_value(ctx: Context, kind: str, max_bytes: int = 65536) -> bytes:
    """An input that CONTRACT §2 rejects with error `kind` (the codes of validate.py)."""
    import orjson

    base = _valid_base(ctx)
    if kind == "empty":
        return b""
    if kind == "oversize":
        return orjson.dumps({**base, "padding": "x" * max_bytes})
    if kind == "invalid_utf8":
        return b'{"click_id": "\xff\xfe broken"}'
    if kind == "not_json":
        return f"click_id={base['click_id']}&device_id={base['device_id']}".encode()
    if kind == "not_object":
        return orjson.dumps([base])
    if kind == "missing_field":
        return orjson.dumps({k: v for k, v in base.items() if k != "ip"})
    if kind == "wrong_type":
        return orjson.dumps({**base, "device_id": 12345})
    if kind == "invalid_value":
        return orjson.dumps({**base, "country": "USA"})
    if kind == "invalid_ip":
        return orjson.dumps({**base, "ip": "999.12.0.1"})
    if kind == "invalid_time":
        return orjson.dumps({**base, "ts": "yesterday at noon"})
    raise ValueError(f"unknown malformed kind {kind!r}")


def malformed(ctx: Context, n: int) -> list[Planned]:
    """Every rejection code of CONTRACT §2 / validate.py in turn."""
    out = []
    for i in range(n):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        key = ctx.new_id("badkey")
        out.append(Planned("malformed", ctx.start(), raw=malformed_value(ctx, kind), key=key, error=kind))
    return out


POPULATIONS: dict[str, Callable[[Context, int], list[Planned]]] = {
    "humans": humans,
    "late": late,
    "click_spam": click_spam,
    "repeaters": repeaters,
    "blacklisted": blacklisted,
    "crawlers": crawlers,
    "headless": headless,
    "click_farm": click_farm,
    # issue 19, not in DEFAULT_MIX (see generator.EXTENDED_MIX): people behind shared
    # addresses, and frauds that pass per-device checks
    "office_nat": office_nat,
    "carrier_cgnat": carrier_cgnat,
    "university": university,
    "vpn_exit": vpn_exit,
    "farm_rotating_ids": farm_rotating_ids,
    "proxy_farm": proxy_farm,
    "emulator_farm": emulator_farm,
    "slow_bot": slow_bot,
    "malformed": malformed,
    "replay": replay,  # last: it resends clicks the others planned
}
