"""A transaction rule is data too: a name and a pure `apply(tx, features, settings) -> Hit | None`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fraudapp.models import Hit, Transaction, TxFeatures
from fraudapp.settings import Settings

Apply = Callable[[Transaction, TxFeatures, Settings], Hit | None]


@dataclass(frozen=True, slots=True)
class TxRule:
    name: str
    apply: Apply


def amount(value: float) -> str:
    """An amount for a reason text: 1500.0 -> '1500', 0.125 -> '0.125'."""
    return f"{value:.8g}"
