"""tainted_funds: `from` received from a blacklisted wallet, or from a wallet tainted within
TAINT_HOPS hops, within TAINT_SECONDS (state/taint.py)."""

from __future__ import annotations

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.rules.base import event_time, seconds
from fraudapp.rules.wallet.base import TxRule
from fraudapp.settings import Settings

NAME = "tainted_funds"


def apply(tx: Transaction, features: TxFeatures, settings: Settings) -> Hit | None:
    taint = features.taint
    if taint is None or taint.hops > settings.taint_hops + 1:
        return None
    origin = "a blacklisted wallet" if taint.hops == 1 else f"a wallet {taint.hops - 1} hop(s) from a blacklisted one"
    return Hit(NAME, f"sender received from {origin} ({taint.source}, transfer {taint.tx_id} at "
                     f"{event_time(taint.ts)}, within {seconds(settings.taint_seconds)} s)")


RULE = TxRule(name=NAME, apply=apply)
