"""A rule is data: a name and a pure `apply(click, features, settings) -> Hit | None`.

Rules read only the click and the state snapshot gathered for it (`Features`), never a
table, topic or clock, so they are tested as plain functions and run in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fraudapp.models import Click, Features, Hit
from fraudapp.settings import Settings

Apply = Callable[[Click, Features, Settings], Hit | None]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    apply: Apply
    kind: Literal["hard"] = "hard"  # any hit of a hard rule makes the verdict `fraud`


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def seconds(value: float) -> str:
    """A setting in seconds for a reason text: 10.0 -> '10', 0.5 -> '0.5'."""
    return f"{value:g}"


def event_time(ts: float) -> str:
    """An epoch time with at most millisecond digits and no exponent: 1732350000.5."""
    return f"{ts:.3f}".rstrip("0").rstrip(".")


def with_reason(text: str, reason: str) -> str:
    return f"{text} ({reason})" if reason else text
