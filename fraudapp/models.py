"""Wire schemas of ../shared/CONTRACT.md: click (§2), verdict (§3), blacklist entry (§4),
alert (§5), dead letter (§6).

Plain slotted dataclasses encoded with orjson: Faust's Record costs ~7 µs an event and
its decode errors crash agents, so topics carry raw bytes and `validate.py` builds these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

VerdictClass = Literal["clean", "suspicious", "fraud"]
VERDICT_CLASSES: tuple[VerdictClass, ...] = ("clean", "suspicious", "fraud")

HARD_FRAUD_TYPES: tuple[str, ...] = (
    "ip_blacklist",
    "device_blacklist",
    "click_spam",
    "session_url_repeat",
    "duplicate_click",
    "bot_user_agent",
)
SOFT_FRAUD_TYPE = "low_human_score"
FARM_FRAUD_TYPES: tuple[str, ...] = ("device_farm",)  # on the reputation table: not exact
FRAUD_TYPES: tuple[str, ...] = HARD_FRAUD_TYPES + FARM_FRAUD_TYPES + (SOFT_FRAUD_TYPE,)


@dataclass(frozen=True, slots=True)
class Mouse:
    moves: int
    duration_ms: int
    straightness: float


@dataclass(frozen=True, slots=True)
class Click:
    """A validated click event (§2). `ts` is epoch seconds; `ip` is normalised."""

    click_id: str
    ts: float
    device_id: str
    ip: str
    session_id: str | None = None
    url: str | None = None
    campaign_id: str | None = None
    publisher_id: str | None = None
    ad_id: str | None = None
    user_agent: str | None = None
    fingerprint: str | None = None
    mouse: Mouse | None = None
    country: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}
        if self.mouse is not None:
            d["mouse"] = {"moves": self.mouse.moves, "duration_ms": self.mouse.duration_ms,
                          "straightness": self.mouse.straightness}  # fmt: skip
        return d

    def to_row(self) -> list[Any]:
        """Positional form for the hops between stages (no field names on the wire)."""
        m = self.mouse
        return [
            self.click_id, self.ts, self.device_id, self.ip, self.session_id, self.url, self.campaign_id,
            self.publisher_id, self.ad_id, self.user_agent, self.fingerprint,
            None if m is None else (m.moves, m.duration_ms, m.straightness), self.country,
        ]  # fmt: skip

    @classmethod
    def from_row(cls, row: list[Any]) -> Click:
        """Rebuild from `to_row` output (already validated: used between stages)."""
        mouse = row[11]
        return cls(*row[:11], Mouse(*mouse) if mouse else None, row[12])  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired, with a reason a person can read."""

    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """A blacklist entry (§4). `expires_at` is epoch seconds or None (never)."""

    kind: Literal["ip", "cidr", "device", "wallet"]
    value: str
    reason: str = ""
    added_at: float = 0.0
    expires_at: float | None = None

    def active(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- Reputation (state/reputation.py): the value of the `reputation` table, per entity. ---


@dataclass(frozen=True, slots=True)
class Window:
    seconds: float
    devices: int
    clicks: int
    user_agents: int
    new_devices: int
    top_publisher: str | None
    top_publisher_devices: int

    @property
    def publisher_share(self) -> float:
        return self.top_publisher_devices / self.devices if self.devices else 0.0

    def to_row(self) -> list[Any]:
        return [self.seconds, self.devices, self.clicks, self.user_agents, self.new_devices, self.top_publisher,
                self.top_publisher_devices]

    @classmethod
    def from_row(cls, row: list[Any]) -> Window:
        return cls(float(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5], int(row[6]))


@dataclass(frozen=True, slots=True)
class Summary:
    entity: str
    t: float  # event time of the entity's newest click: the windows end there
    windows: tuple[Window, ...]

    def window(self, seconds: float) -> Window | None:
        return next((w for w in self.windows if w.seconds == seconds), None)

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "w": [w.to_row() for w in self.windows]}

    @classmethod
    def from_json(cls, entity: str, value: dict[str, Any]) -> Summary:
        return cls(entity, float(value["t"]), tuple(Window.from_row(row) for row in value["w"]))


@dataclass(frozen=True, slots=True)
class ClickReputation:
    """The summaries of a click's entities that the reputation table holds (None: the
    entity has not been seen with two devices, or its summary is older than `memory`)."""

    ip: Summary | None = None
    network: Summary | None = None
    fingerprint: Summary | None = None

    def __bool__(self) -> bool:
        return self.ip is not None or self.network is not None or self.fingerprint is not None


@dataclass(frozen=True, slots=True)
class Features:
    """The state snapshot the rules read, gathered along the pipeline for one click.

    Counts are of *earlier* clicks (processed before this one) whose event time lies in
    the rule's window; `None` means the rule cannot apply (e.g. no session or url).
    """

    device_prior_in_window: int = 0
    session_url_prior_in_window: int | None = None
    duplicate_of_ts: float | None = None
    ip_entry: BlacklistEntry | None = None
    device_entry: BlacklistEntry | None = None
    ip_near_blacklisted: bool = False
    reputation: ClickReputation = ClickReputation()  # the click's address, network and fingerprint


@dataclass(frozen=True, slots=True)
class Scores:
    ip: float | None
    fingerprint: float | None
    behaviour: float | None
    network: float | None = None

    @property
    def score(self) -> float:
        layers = [s for s in (self.ip, self.fingerprint, self.behaviour, self.network) if s is not None]
        # No layer at all says nothing about the click: treat it as neutral-human.
        return round(sum(layers) / len(layers), 1) if layers else 100.0


@dataclass(slots=True)
class Verdict:
    click_id: str
    device_id: str
    ip: str
    ts: float
    campaign_id: str | None
    publisher_id: str | None
    verdict: VerdictClass
    fraud_types: list[str]
    score: float
    reasons: list[dict[str, str]]
    detected_at: float
    layers: dict[str, float | None] = field(default_factory=dict)
    rules_version: int = 0  # the rule set judged under (CONTRACT §4c); 0: the environment's settings
    ivt: str | None = None  # "givt" | "sivt" | None (rules/ivt.py)

    @property
    def fraud_type(self) -> str | None:
        return self.fraud_types[0] if self.fraud_types else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "click_id": self.click_id,
            "device_id": self.device_id,
            "ip": self.ip,
            "ts": self.ts,
            "campaign_id": self.campaign_id,
            "publisher_id": self.publisher_id,
            "verdict": self.verdict,
            "fraud_types": self.fraud_types,
            "fraud_type": self.fraud_type,
            "score": self.score,
            "reasons": self.reasons,
            "layers": self.layers,
            "detected_at": self.detected_at,
            "rules_version": self.rules_version,
            "ivt": self.ivt,
        }


# -- crypto transactions (CONTRACT §2b, §3b, §4b) --------------------------------------------

TX_FRAUD_TYPES: tuple[str, ...] = ("scam_wallet", "tainted_funds", "wallet_velocity", "fan_out", "large_amount")


@dataclass(frozen=True, slots=True)
class Transaction:
    """A validated transfer (§2b): addresses in their compared form (addresses.py)."""

    tx_id: str
    ts: float
    sender: str  # `from`
    recipient: str  # `to`
    amount: float
    asset: str
    chain: str | None = None
    fee: float | None = None
    ip: str | None = None
    device_id: str | None = None
    platform_user: str | None = None

    def to_row(self) -> list[Any]:
        return [self.tx_id, self.ts, self.sender, self.recipient, self.amount, self.asset, self.chain, self.fee,
                self.ip, self.device_id, self.platform_user]  # fmt: skip

    @classmethod
    def from_row(cls, row: list[Any]) -> Transaction:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Taint:
    """Why a wallet's funds are tainted: it received from `source` (a blacklisted wallet
    at `hops` 1, a tainted one at more) in transfer `tx_id` at event time `ts`."""

    ts: float
    hops: int
    source: str
    tx_id: str
    # end of the taint: the last receipt of a continuous run at this distance + TAINT_SECONDS
    # (None: this one receipt's, ts + TAINT_SECONDS)
    until: float | None = None


@dataclass(frozen=True, slots=True)
class TxFeatures:
    """The state snapshot the transaction rules read (counts of *earlier* transfers of the
    sender, in Kafka order, by event time)."""

    sender_entry: BlacklistEntry | None = None
    recipient_entry: BlacklistEntry | None = None
    taint: Taint | None = None  # of the sender, in force at the transfer's event time
    prior_in_velocity_window: int = 0
    distinct_recipients: int = 1  # within FAN_OUT_SECONDS, this one included
    median_amount: float | None = None  # of the last amounts of this asset (None: too few known)
    known_amounts: int = 0


@dataclass(slots=True)
class TxVerdict:
    tx_id: str
    sender: str
    recipient: str
    amount: float
    asset: str
    ts: float
    verdict: VerdictClass
    fraud_types: list[str]
    score: float
    reasons: list[dict[str, str]]
    detected_at: float
    rules_version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id,
            "from": self.sender,
            "to": self.recipient,
            "amount": self.amount,
            "asset": self.asset,
            "ts": self.ts,
            "verdict": self.verdict,
            "fraud_types": self.fraud_types,
            "fraud_type": self.fraud_types[0] if self.fraud_types else None,
            "score": self.score,
            "reasons": self.reasons,
            "detected_at": self.detected_at,
            "rules_version": self.rules_version,
        }
