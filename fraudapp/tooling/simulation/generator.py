"""Labeled traffic from a seed: the inputs in production order, their truth, the blacklist.

Deterministic: the same `SimConfig` gives byte-identical inputs, truth and entries (one
`random.Random(seed)`, ids from counters, times rounded to milliseconds, orjson output in
insertion order). `start_ts` and `run` are part of the config: the command line defaults
them to "now" and to a tag made from seed and start, so that two runs against one detector
never share click or device ids (the detector remembers click_ids for a day).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from fraudapp.tooling.simulation import catalog
from fraudapp.tooling.simulation.mix import allocate, parse_shares
from fraudapp.tooling.simulation.populations import HUMAN_POPULATIONS, POPULATIONS, Context, Planned
from fraudapp.tooling.simulation.traffic import GeneratedTraffic, Input
from fraudapp.tooling.simulation.truth import Rules, check_lateness, reference_labels

DEFAULT_MIX: dict[str, float] = {
    "humans": 0.62,
    "late": 0.03,
    "click_spam": 0.07,
    "repeaters": 0.05,
    "blacklisted": 0.05,
    "crawlers": 0.04,
    "headless": 0.04,
    "click_farm": 0.05,
    "replay": 0.03,
    "malformed": 0.02,
}

# Issue 19's populations: people behind shared addresses (expected clean) and frauds that
# pass per-device checks (expected fraud). Not in DEFAULT_MIX: adding them would change the
# default traffic of every seed (shares are drawn from one random stream), and with it
# what today's tests and documented figures were measured on. `--mix extended` is the
# default mix plus each of them at EXTENDED_SHARE.
ISSUE19_POPULATIONS: tuple[str, ...] = (
    "office_nat", "carrier_cgnat", "university", "vpn_exit",
    "farm_rotating_ids", "proxy_farm", "emulator_farm", "slow_bot",
)
EXTENDED_SHARE = 0.03
EXTENDED_MIX: dict[str, float] = {
    k: v / (1 + EXTENDED_SHARE * len(ISSUE19_POPULATIONS))
    for k, v in {**DEFAULT_MIX, **dict.fromkeys(ISSUE19_POPULATIONS, EXTENDED_SHARE)}.items()
}
MIX_PRESETS: dict[str, dict[str, float]] = {"default": DEFAULT_MIX, "extended": EXTENDED_MIX}


def parse_mix(text: str | None) -> dict[str, float]:
    """'humans=0.7,click_spam=0.05' -> shares normalised to 1 (missing populations: 0).
    Empty or None -> DEFAULT_MIX; a preset's name ('default', 'extended') -> a copy of it."""
    if text and text.strip() in MIX_PRESETS:
        return dict(MIX_PRESETS[text.strip()])
    return parse_shares(text, POPULATIONS, DEFAULT_MIX)


@dataclass(frozen=True)
class SimConfig:
    count: int
    seed: int = 1
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    event_rate: float = 1000.0  # clicks per second of event time (the span is count / rate)
    run: str = ""
    rules: Rules = field(default_factory=Rules)
    max_click_bytes: int = 65536

    @property
    def run_tag(self) -> str:
        return self.run or f"{self.seed}x{int(self.start_ts) % 1_000_000:06d}"


@dataclass
class Traffic(GeneratedTraffic):
    config: SimConfig
    probe_ip: str  # blacklisted (last entry): the runner's probe clicks come from it

    probe_proves: ClassVar[str] = "ip_blacklist"

    def probe(self, k: int) -> tuple[bytes | None, bytes]:
        probe_id = f"probe-{self.run}-{k}"
        click = {"click_id": probe_id, "ts": self.config.start_ts, "device_id": probe_id, "ip": self.probe_ip}
        return probe_id.encode(), orjson.dumps(click)


def _probe_entry(ctx: Context) -> str:
    """A blacklisted address for the runner's probe clicks, published after every other
    entry: a probe judged `ip_blacklist` shows the detector has applied them all."""
    ip = (catalog.BLACKLIST_ZONE.network_address + 7 + ctx.rng.randrange(200)).compressed
    ctx.entries.append({"op": "add", "kind": "ip", "value": ip, "reason": f"simulator probe {ctx.run}",
                        "ttl_seconds": 21600})
    return ip


def generate(cfg: SimConfig) -> Traffic:
    rng = random.Random(cfg.seed)
    ctx = Context(rng=rng, run=cfg.run_tag, span=max(cfg.count / cfg.event_rate, 1.0))
    counts = allocate(cfg.count, cfg.mix)
    for name, make in POPULATIONS.items():  # fixed order: the mix's order must not matter
        n = counts.get(name, 0)
        kept: list[Planned] = []
        while len(kept) < n:
            # The run is a window of traffic: what would happen (or arrive) after its span
            # is not part of it, so a paced run lasts its duration. Each round keeps at
            # least the first click of a session (it starts inside the span), so this ends.
            kept += [p for p in make(ctx, n - len(kept)) if p.at + p.delay <= ctx.span]
        ctx.planned.extend(kept[:n])
    probe_ip = _probe_entry(ctx)  # after the others: its entry is published last

    for serial, p in enumerate(ctx.planned):
        p.serial = serial
    ordered = sorted(ctx.planned, key=lambda p: (round(p.at + p.delay, 3), p.serial))

    clicks: list[dict[str, Any] | None] = []
    values: list[bytes] = []
    keys: list[bytes | None] = []
    for i, p in enumerate(ordered):
        if p.replay_of is not None and p.click is None:  # byte-identical resend
            src = p.replay_of
            click: dict[str, Any] | None = dict(src.click or {})
            value = orjson.dumps(click)
        elif p.click is not None:
            click = p.click
            if p.replay_of is not None:
                click["click_id"], click["ts"] = p.replay_of.click["click_id"], p.replay_of.click["ts"]  # type: ignore[index]
            else:
                click["click_id"] = f"c-{ctx.run}-{p.serial}"
                click["ts"] = round(cfg.start_ts + p.at, 3)
            value = orjson.dumps(click)
        else:
            click, value = None, p.raw or b""
        clicks.append(click)
        values.append(value)
        keys.append((click["device_id"] if click else p.key or "").encode() or None)
    check_lateness(clicks, cfg.rules)
    labels = reference_labels(clicks, ctx.entries, cfg.rules)

    inputs, truth = [], []
    for i, (p, click, value, key) in enumerate(zip(ordered, clicks, values, keys)):
        inputs.append(Input(i, key, value, round(p.at + p.delay, 3)))
        bot = p.population not in HUMAN_POPULATIONS and p.population != "malformed"
        if click is None:
            expected = "rejected"
        elif labels[i].hard or bot:
            expected = "fraud"
        else:
            expected = "clean"
        truth.append({
            "i": i,
            "click_id": click["click_id"] if click else None,
            "device_id": click["device_id"] if click else None,
            "population": p.population,
            "bot": bot,
            "expected": expected,
            "hard": labels[i].hard,
            "either": labels[i].either,
            "error": p.error,
        })
    return Traffic(inputs=inputs, truth=truth, entries=ctx.entries, run=ctx.run, config=cfg, probe_ip=probe_ip)
