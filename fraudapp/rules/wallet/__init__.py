"""The transaction rules of CONTRACT §4b, in the order of `models.TX_FRAUD_TYPES`: one per
module, each opening with its rule in one line; `engine.judge_transaction` runs them."""

from __future__ import annotations

from fraudapp.models import TX_FRAUD_TYPES
from fraudapp.rules.wallet import fan_out, large_amount, scam_wallet, tainted_funds, wallet_velocity
from fraudapp.rules.wallet.base import TxRule

TX_RULES: tuple[TxRule, ...] = (
    scam_wallet.RULE,
    tainted_funds.RULE,
    wallet_velocity.RULE,
    fan_out.RULE,
    large_amount.RULE,
)

if tuple(r.name for r in TX_RULES) != TX_FRAUD_TYPES:
    raise RuntimeError("fraudapp.rules.wallet.TX_RULES is out of step with models.TX_FRAUD_TYPES")

__all__ = ["TX_RULES", "TxRule"]
