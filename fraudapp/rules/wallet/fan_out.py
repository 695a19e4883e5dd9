"""fan_out: `from` sent to at least FAN_OUT_THRESHOLD distinct wallets within FAN_OUT_SECONDS,
this transfer's recipient included."""

from __future__ import annotations

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.rules.base import seconds
from fraudapp.rules.wallet.base import TxRule
from fraudapp.settings import Settings

NAME = "fan_out"


def apply(tx: Transaction, features: TxFeatures, settings: Settings) -> Hit | None:
    distinct = features.distinct_recipients
    limit = settings.fan_out_threshold
    if distinct < limit:
        return None
    return Hit(NAME, f"{distinct} distinct recipients in {seconds(settings.fan_out_seconds)} s (limit {limit})")


RULE = TxRule(name=NAME, apply=apply)
