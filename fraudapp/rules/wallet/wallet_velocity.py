"""wallet_velocity: `from` has at least WALLET_VELOCITY_THRESHOLD earlier outgoing transfers with
event time in [ts - WALLET_VELOCITY_SECONDS, ts]."""

from __future__ import annotations

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.rules.base import ordinal, seconds
from fraudapp.rules.wallet.base import TxRule
from fraudapp.settings import Settings

NAME = "wallet_velocity"


def apply(tx: Transaction, features: TxFeatures, settings: Settings) -> Hit | None:
    prior = features.prior_in_velocity_window
    limit = settings.wallet_velocity_threshold
    if prior < limit:
        return None
    return Hit(NAME, f"{ordinal(prior + 1)} transfer from the sender in "
                     f"{seconds(settings.wallet_velocity_seconds)} s (limit {limit} earlier)")


RULE = TxRule(name=NAME, apply=apply)
