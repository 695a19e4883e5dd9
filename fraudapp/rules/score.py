"""The soft score: how human a click looks, in four layers of 0..100 (higher = more human).

`score` (CONTRACT §4) is the mean of the layers that have data, rounded to 0.1
(`models.Scores.score`; with no layer at all it is 100). Each layer starts at 100, loses
the points of every signal present, is clamped to [0, 100] and rounded to 0.1:

ip layer — from the address alone (never None for a valid address):
    -90  not a global unicast address: private, loopback, link-local, CGNAT, reserved,
         benchmarking, documentation (e.g. 203.0.113.0/24, 2001:db8::/32) or multicast
         (per Python's `ipaddress.is_global`; IPv4-mapped IPv6 is judged as its IPv4)
    -70  in a known datacenter / hosting range (`load_datacenter_ranges`, e.g. the sample
         tables/datacenter_ranges.txt; no ranges loaded = no such penalty)
    -40  near a blacklisted address: in the same /24 (IPv4) or /64 (IPv6) as an ip or
         cidr entry (`Features.ip_near_blacklisted`)

fingerprint layer — from the User-Agent and fingerprint fields (never None):
    -80  no User-Agent (absent or blank)
    -90  an automation / headless / HTTP-library token in the User-Agent, case-insensitive
         (`AUTOMATION_TOKENS`: headless, phantomjs, selenium, webdriver, puppeteer,
         playwright, python-requests, python-urllib, curl/, wget/, go-http-client,
         okhttp, scrapy). A score signal, not the `bot_user_agent` rule.
    -40  no fingerprint
    -30  no fingerprint and no mouse telemetry from a desktop browser's User-Agent (by
         ua-parser: no device family, or a Mac): no script ran on the page, which a person's
         desktop browser does (phones and tablets send no mouse; a person who blocks
         scripts looks like this too). FRAUDAPP_SCORE_NO_SCRIPT=false turns it off, for
         click trackers that send neither field

behaviour layer — from `mouse`; None (left out of the mean) without mouse telemetry:
    moves == 0                     -> 5
    otherwise 20 + 80 * min(f_moves, f_straightness, f_duration), where
      f_moves       = min(moves, 5) / 5                       (5+ moves -> 1)
      f_straightness = 0                     for s >= 0.98    (ruler-straight path)
                     = (0.98 - s) / 0.03     for 0.95 < s < 0.98
                     = 1                     for 0.3 <= s <= 0.95
                     = 0.5 + 0.5 * s / 0.3   for s < 0.3     (erratic jitter)
      f_duration    = 0                     for duration < 100 ms
                     = (duration - 100) / 200 for 100 <= duration < 300 ms
                     = 1                     for duration >= 300 ms
    So a human-like path (moves >= 5, 0.3 <= s <= 0.95, >= 300 ms) scores 100, and a
    straight (s >= 0.98) or instant (< 100 ms) one scores 20. Touch devices should send no
    `mouse` object rather than zero moves.

network layer - from the reputation of the click's address, network and fingerprint
(state/reputation.py, the first window: 10 min by default); None (left out of the mean)
unless one of these signals is present, so that it only ever lowers a score: a
layer of 100 for the many people behind a shared address would raise theirs, and hide
what the other layers say about a bot among them:
    -20  per other device with the click's fingerprint, at most -60 (device_farm fires at 5)
    -60 x share   when at least 3 devices (FRAUDAPP_NETWORK_CONCENTRATION_DEVICES) are on the
         click's address and a share >= 50 % (FRAUDAPP_NETWORK_CONCENTRATION_SHARE) of them
         last clicked for one publisher, the click's (people behind one address click
         for many publishers; a farm's devices for the one that pays it)
    -30  at least 10 devices (FRAUDAPP_NETWORK_ONE_AGENT_DEVICES) on the address, all with one User-Agent (a rack of one phone
         model; an office's managed browser still leaves some people on others)
    So a shared address whose people click as people do has no network layer.

Deterministic and free of I/O: `load_datacenter_ranges` is the only function that reads
a file, and the caller passes its result in.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from os import PathLike

import pytricia
from ua_parser import parse_device

from fraudapp.models import Click, ClickReputation, Features, Mouse, Scores, Summary, Window
from fraudapp.settings import Settings

AUTOMATION_TOKENS: tuple[str, ...] = (
    "headless",
    "phantomjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "scrapy",
)

IP_NON_GLOBAL = 90.0
IP_DATACENTER = 70.0
IP_NEAR_BLACKLISTED = 40.0
FP_NO_USER_AGENT = 80.0
FP_AUTOMATION = 90.0
FP_NO_FINGERPRINT = 40.0
FP_NO_SCRIPT = 30.0
BEHAVIOUR_NO_MOVES = 5.0
BEHAVIOUR_FLOOR = 20.0
NET_SHARED_FINGERPRINT = 20.0
NET_SHARED_FINGERPRINT_MAX = 60.0
NET_PUBLISHER_CONCENTRATION = 60.0
NET_ONE_USER_AGENT = 30.0
DEFAULTS = Settings()  # the network layer's limits when no settings are given

Notes = dict[str, list[str]]

DATACENTER_NOTE = "datacenter range"  # the ip layer's note for a data-center address (rules/ivt.py)


class DatacenterRanges:
    """Known datacenter CIDRs by family (pytricia), each naming its provider."""

    def __init__(self) -> None:
        self._tries = {4: pytricia.PyTricia(32), 6: pytricia.PyTricia(128)}

    def add(self, cidr: str, provider: str = "datacenter") -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        self._tries[net.version][net.compressed] = provider

    def provider(self, ip: str) -> str | None:
        """The provider whose range holds `ip` (longest prefix), or None."""
        version = _ip_facts(ip)[0]
        return self._tries[version].get(ip) if version else None

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, str) and self.provider(ip) is not None

    def __len__(self) -> int:
        return len(self._tries[4]) + len(self._tries[6])


def load_datacenter_ranges(path: str | PathLike[str]) -> DatacenterRanges:
    """Read `CIDR [provider]` lines ('#' comments); ValueError names a bad line."""
    ranges = DatacenterRanges()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            try:
                ranges.add(fields[0], fields[1] if len(fields) > 1 else "datacenter")
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
    return ranges


@lru_cache(maxsize=65536)  # click IPs repeat; parsing is the costly part
def _ip_facts(ip: str) -> tuple[int, bool]:
    """(address family or 0 when invalid, whether it is a global unicast address)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return 0, False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.version, addr.is_global and not addr.is_multicast


def _layer(penalties: float) -> float:
    return round(min(100.0, max(0.0, 100.0 - penalties)), 1)


def ip_layer(
    click: Click, features: Features, datacenter: DatacenterRanges | None = None
) -> tuple[float | None, list[str]]:
    version, is_global = _ip_facts(click.ip)
    if not version:
        return None, ["unparseable address"]
    penalty, notes = 0.0, []
    if not is_global:
        penalty += IP_NON_GLOBAL
        notes.append("not a global address")
    provider = datacenter.provider(click.ip) if datacenter is not None else None
    if provider is not None:
        penalty += IP_DATACENTER
        notes.append(f"{provider} {DATACENTER_NOTE}")
    if features.ip_near_blacklisted:
        penalty += IP_NEAR_BLACKLISTED
        notes.append("near a blacklisted address")
    return _layer(penalty), notes


@lru_cache(maxsize=65536)  # user agents repeat
def automation_token(user_agent: str) -> str | None:
    """The first `AUTOMATION_TOKENS` entry found in `user_agent`, or None."""
    low = user_agent.lower()
    return next((t for t in AUTOMATION_TOKENS if t in low), None)


DESKTOP_DEVICE_FAMILIES = frozenset({"Mac"})  # ua-parser names Macs; other desktops get no device


@lru_cache(maxsize=65536)
def is_desktop(user_agent: str) -> bool:
    """A desktop browser, not a phone or tablet, by ua-parser's signatures: no device
    family, or a Mac (an iPad's Safari also claims to be a Mac, but it runs scripts: only
    a click with neither fingerprint nor mouse is judged by this)."""
    device = parse_device(user_agent)
    return device is None or device.family in DESKTOP_DEVICE_FAMILIES


def fingerprint_layer(click: Click, no_script: bool = True) -> tuple[float | None, list[str]]:
    penalty, notes = 0.0, []
    if not click.user_agent or not click.user_agent.strip():
        penalty += FP_NO_USER_AGENT
        notes.append("no user agent")
    else:
        token = automation_token(click.user_agent)
        if token is not None:
            penalty += FP_AUTOMATION
            notes.append(f"automation token {token!r} in user agent")
    if not click.fingerprint:
        penalty += FP_NO_FINGERPRINT
        notes.append("no fingerprint")
        if (no_script and click.mouse is None and click.user_agent and click.user_agent.strip()
                and is_desktop(click.user_agent)):
            penalty += FP_NO_SCRIPT
            notes.append("no script signals from a desktop browser")
    return _layer(penalty), notes


def _ramp(x: float, low: float, high: float) -> float:
    """0 at `low`, 1 at `high`, linear between, clamped."""
    return min(1.0, max(0.0, (x - low) / (high - low)))


def behaviour_layer(mouse: Mouse | None) -> tuple[float | None, list[str]]:
    if mouse is None:
        return None, ["no mouse telemetry"]
    if mouse.moves <= 0:
        return BEHAVIOUR_NO_MOVES, ["no mouse movement"]
    s = mouse.straightness
    f_moves = min(mouse.moves, 5) / 5
    if s >= 0.98:
        f_straight = 0.0
    elif s > 0.95:
        f_straight = (0.98 - s) / 0.03
    elif s >= 0.3:
        f_straight = 1.0
    else:
        f_straight = 0.5 + 0.5 * max(s, 0.0) / 0.3
    f_duration = _ramp(mouse.duration_ms, 100.0, 300.0)
    notes = []
    if f_moves < 1:
        notes.append(f"only {mouse.moves} mouse moves")
    if f_straight < 1:
        notes.append("straight-line mouse path" if s > 0.95 else "erratic mouse path")
    if f_duration < 1:
        notes.append(f"{mouse.duration_ms} ms of mouse movement")
    value = BEHAVIOUR_FLOOR + (100.0 - BEHAVIOUR_FLOOR) * min(f_moves, f_straight, f_duration)
    return round(value, 1), notes


def _first(summary: Summary | None) -> Window | None:
    return summary.windows[0] if summary is not None and summary.windows else None


def network_layer(click: Click, reputation: ClickReputation,
                  settings: Settings = DEFAULTS) -> tuple[float | None, list[str]]:  # fmt: skip
    if not reputation:
        return None, []
    penalty, notes = 0.0, []
    fp = _first(reputation.fingerprint)
    if fp is not None and fp.devices > 1:
        penalty += min(NET_SHARED_FINGERPRINT_MAX, NET_SHARED_FINGERPRINT * (fp.devices - 1))
        notes.append(f"fingerprint shared by {fp.devices} devices")
    ip = _first(reputation.ip)
    if ip is not None:
        share = ip.publisher_share
        if (ip.devices >= settings.network_concentration_devices and share >= settings.network_concentration_share
                and ip.top_publisher == click.publisher_id):
            penalty += NET_PUBLISHER_CONCENTRATION * share
            notes.append(f"{ip.top_publisher_devices} of {ip.devices} devices on the address clicking for "
                         f"{ip.top_publisher}")
        if ip.devices >= settings.network_one_agent_devices and ip.user_agents == 1:
            penalty += NET_ONE_USER_AGENT
            notes.append(f"{ip.devices} devices on the address with one user agent")
    return (_layer(penalty) if penalty else None), notes


def explain(
    click: Click, features: Features, datacenter: DatacenterRanges | None = None, settings: Settings = DEFAULTS
) -> tuple[Scores, Notes]:
    """The three layers and, per layer, the signals that lowered it (for reasons)."""
    ip, ip_notes = ip_layer(click, features, datacenter)
    fp, fp_notes = fingerprint_layer(click, settings.score_no_script)
    beh, beh_notes = behaviour_layer(click.mouse)
    net, net_notes = network_layer(click, features.reputation, settings)
    return Scores(ip=ip, fingerprint=fp, behaviour=beh, network=net), {
        "ip": ip_notes,
        "fingerprint": fp_notes,
        "behaviour": beh_notes,
        "network": net_notes,
    }


def score(click: Click, features: Features, datacenter: DatacenterRanges | None = None) -> Scores:
    return explain(click, features, datacenter)[0]
