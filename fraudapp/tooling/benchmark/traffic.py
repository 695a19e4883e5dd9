"""Deterministic benchmark traffic: a realistic mix keyed by device_id.

Not the labelled simulator (fraudapp.tooling.simulation): no truth is needed here, only the same
load for every system. One `random.Random(seed)`; ids carry the run tag so that two runs
never share click or device ids.

Mix (shares of emitted clicks, roughly): humans ~70 % (few clicks per device, spread out),
click-spam devices ~8 % (bursts of 3-6 within 2 s), session/url repeaters ~7 % (one
session hammering one URL, sometimes from several devices), blacklisted IPs/devices ~4 %,
crawler user agents ~4 %, exact duplicates (same click_id re-sent) ~3 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

HUMAN_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
]
BOT_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "python-requests/2.31.0",
]
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "NL"]
BLACKLIST_CIDR = "203.0.113.0/24"


@dataclass
class Traffic:
    clicks: list[tuple[bytes, bytes]]  # (key = device_id, value = click JSON)
    blacklist: list[dict]  # contract §4 entries ("add")


class _Gen:
    def __init__(self, seed: int, run: str, start_ts: float, events_per_second: float) -> None:
        self.rng = random.Random(seed)
        self.run = run
        self.t = start_ts
        self.gap = 1.0 / events_per_second
        self.n_click = 0
        self.n_device = 0
        self.n_session = 0
        self.out: list[dict] = []

    def click_id(self) -> str:
        self.n_click += 1
        return f"{self.run}-c{self.n_click}"

    def device(self) -> str:
        self.n_device += 1
        return f"{self.run}-d{self.n_device}"

    def session(self) -> str:
        self.n_session += 1
        return f"{self.run}-s{self.n_session}"

    def ip(self) -> str:
        r = self.rng
        return f"{r.randint(11, 190)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def click(
        self,
        device: str,
        *,
        ts: float,
        ip: str | None = None,
        session: str | None = None,
        url: str | None = None,
        ua: str | None = None,
        human: bool = True,
    ) -> dict:
        r = self.rng
        campaign = r.randrange(20)
        mouse = (
            {
                "moves": r.randint(8, 120),
                "duration_ms": r.randint(400, 9000),
                "straightness": round(r.uniform(0.2, 0.9), 3),
            }
            if human
            else {"moves": r.randint(0, 2), "duration_ms": r.randint(0, 80), "straightness": 1.0}
        )
        return {
            "click_id": self.click_id(),
            "ts": round(ts, 3),
            "device_id": device,
            "ip": ip or self.ip(),
            "session_id": session or self.session(),
            "url": url or f"https://shop{campaign}.example.com/ad/{r.randrange(200)}",
            "campaign_id": f"cmp-{campaign}",
            "publisher_id": f"pub-{r.randrange(50)}",
            "ad_id": f"ad-{r.randrange(500)}",
            "user_agent": ua or r.choice(HUMAN_UAS),
            "fingerprint": f"fp{r.getrandbits(48):012x}",
            "mouse": mouse,
            "country": r.choice(COUNTRIES),
        }  # fmt: skip

    def advance(self) -> float:
        self.t += self.rng.expovariate(1.0 / self.gap)
        return self.t


def generate(
    n: int, seed: int = 7, run: str = "b", start_ts: float = 1.7e9, events_per_second: float = 500.0
) -> Traffic:
    """Exactly `n` clicks in production order (event time increasing, with small bursts)."""
    g = _Gen(seed, run, start_ts, events_per_second)
    r = g.rng
    humans = [g.device() for _ in range(max(10, n // 8))]
    bad_devices = [g.device() for _ in range(max(2, n // 400))]
    bad_ips = [f"198.51.100.{i}" for i in range(1, 21)]
    blacklist = [{"op": "add", "kind": "ip", "value": ip, "reason": "bench", "ttl_seconds": None} for ip in bad_ips]
    blacklist += [
        {"op": "add", "kind": "device", "value": d, "reason": "bench", "ttl_seconds": None} for d in bad_devices
    ]
    blacklist.append({"op": "add", "kind": "cidr", "value": BLACKLIST_CIDR, "reason": "bench", "ttl_seconds": None})
    out: list[dict] = []
    while len(out) < n:
        x = r.random()
        t = g.advance()
        if x < 0.70:  # a human: one click of a returning device
            out.append(g.click(r.choice(humans), ts=t))
        elif x < 0.72:  # click spam: one device, a burst of 3-6 clicks in 2 s
            d = g.device()
            for k in range(r.randint(3, 6)):
                out.append(g.click(d, ts=t + k * r.uniform(0.05, 0.4), human=False))
        elif x < 0.74:  # session/url repeat, partly across devices
            s, url = g.session(), f"https://shop{r.randrange(20)}.example.com/ad/{r.randrange(200)}"
            devices = [r.choice(humans), g.device()]
            for k in range(r.randint(3, 5)):
                out.append(g.click(r.choice(devices), ts=t + k * r.uniform(0.1, 1.0), session=s, url=url))
        elif x < 0.78:  # blacklisted ip / cidr / device
            y = r.random()
            if y < 0.4:
                out.append(g.click(r.choice(humans), ts=t, ip=r.choice(bad_ips)))
            elif y < 0.7:
                out.append(g.click(r.choice(humans), ts=t, ip=f"203.0.113.{r.randint(1, 254)}"))
            else:
                out.append(g.click(r.choice(bad_devices), ts=t))
        elif x < 0.82:  # crawler / headless user agent
            out.append(g.click(g.device(), ts=t, ua=r.choice(BOT_UAS), human=False))
        elif x < 0.85 and out:  # an exact duplicate of a recent click (same click_id, same bytes)
            out.append(dict(out[max(0, len(out) - r.randint(1, 200))]))
        else:
            out.append(g.click(r.choice(humans), ts=t))
    del out[n:]
    clicks = [(c["device_id"].encode(), orjson.dumps(c)) for c in out]
    return Traffic(clicks, blacklist)


def restamp(value: bytes, ts: float) -> bytes:
    """The same click with event time `ts` (paced latency traffic is stamped at send time)."""
    d = orjson.loads(value)
    d["ts"] = round(ts, 3)
    return orjson.dumps(d)


def transfers(n: int, seed: int = 7, run: str = "b", start_ts: float = 1.7e9,
              events_per_second: float = 500.0) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """Exactly `n` crypto transfers keyed by the sending wallet (lower-case EVM), in
    production order: mostly ordinary wallets paying a few others, some velocity bursts and
    fan-outs, rare large amounts. The transaction stage's load, not a labelled set."""
    r = random.Random(seed)
    wallets = [f"0x{r.getrandbits(160):040x}" for _ in range(max(10, n // 8))]
    shops = [f"0x{r.getrandbits(160):040x}" for _ in range(200)]
    out: list[tuple[bytes, bytes]] = []
    t = start_ts
    gap = 1.0 / events_per_second
    while len(out) < n:
        sender = r.choice(wallets)
        burst = r.choice((1, 1, 1, 1, 2, 3, 8))  # velocity bursts and fan-outs now and then
        for _ in range(min(burst, n - len(out))):
            t += r.expovariate(1.0 / gap)
            amount = round(r.uniform(0.01, 5.0) * (50 if r.random() < 0.01 else 1), 4)
            to = r.choice(shops) if burst < 8 else f"0x{r.getrandbits(160):040x}"
            body = {"tx_id": f"{run}-tx{len(out)}", "ts": round(t, 3), "from": sender, "to": to,
                    "amount": amount, "asset": r.choice(("ETH", "ETH", "USDT")), "chain": "ethereum"}
            out.append((sender.encode(), orjson.dumps(body)))
    return out
