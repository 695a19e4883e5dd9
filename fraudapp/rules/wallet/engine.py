"""judge_transaction: the transaction rules of CONTRACT §4b in order; any hit -> `fraud`
(score 0), none -> `clean` (score 100). There is no soft score for transfers: every rule is
a hard rule, each with its reason."""

from __future__ import annotations

from fraudapp.models import Transaction, TxFeatures, TxVerdict
from fraudapp.rules.wallet import TX_RULES
from fraudapp.rules.wallet.base import TxRule
from fraudapp.settings import Settings


def judge_transaction(tx: Transaction, features: TxFeatures, settings: Settings, now: float, *,
                      rules: tuple[TxRule, ...] = TX_RULES, rules_version: int = 0) -> TxVerdict:  # fmt: skip
    hits = [hit for rule in rules if (hit := rule.apply(tx, features, settings)) is not None]
    return TxVerdict(
        tx_id=tx.tx_id, sender=tx.sender, recipient=tx.recipient, amount=tx.amount, asset=tx.asset, ts=tx.ts,
        verdict="fraud" if hits else "clean",
        fraud_types=[hit.rule for hit in hits],
        score=0.0 if hits else 100.0,
        reasons=[{"rule": hit.rule, "detail": hit.detail} for hit in hits],
        detected_at=now,
        rules_version=rules_version,
    )
