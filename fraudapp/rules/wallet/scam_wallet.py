"""scam_wallet: `from` or `to` is a blacklisted wallet."""

from __future__ import annotations

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.rules.base import with_reason
from fraudapp.rules.wallet.base import TxRule
from fraudapp.settings import Settings

NAME = "scam_wallet"


def apply(tx: Transaction, features: TxFeatures, settings: Settings) -> Hit | None:
    parts = [with_reason(f"{side} {wallet} is blacklisted", entry.reason)
             for side, wallet, entry in (("sender", tx.sender, features.sender_entry),
                                         ("recipient", tx.recipient, features.recipient_entry))
             if entry is not None]
    return Hit(NAME, "; ".join(parts)) if parts else None


RULE = TxRule(name=NAME, apply=apply)
