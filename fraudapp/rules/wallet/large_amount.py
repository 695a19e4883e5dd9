"""large_amount: the amount exceeds LARGE_AMOUNT_FACTOR x the median of the sender's last
LARGE_AMOUNT_HISTORY amounts of the asset (at least LARGE_AMOUNT_MIN_KNOWN known), or the
asset's limit in LARGE_AMOUNT_LIMITS."""

from __future__ import annotations

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.rules.wallet.base import TxRule, amount
from fraudapp.settings import Settings

NAME = "large_amount"


def apply(tx: Transaction, features: TxFeatures, settings: Settings) -> Hit | None:
    limit = settings.large_amount_limit_of.get(tx.asset)
    if limit is not None and tx.amount > limit:
        return Hit(NAME, f"{amount(tx.amount)} {tx.asset} is above the limit of {amount(limit)}")
    median = features.median_amount
    if median is None or tx.amount <= settings.large_amount_factor * median:
        return None
    return Hit(NAME, f"{amount(tx.amount)} {tx.asset} is above {settings.large_amount_factor:g} x the median "
                     f"{amount(median)} of the sender's last {features.known_amounts}")


RULE = TxRule(name=NAME, apply=apply)
