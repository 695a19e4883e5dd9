"""The hard rules of CONTRACT §4, in the order of `models.HARD_FRAUD_TYPES`.

Each module holds one rule (its docstring opens with the rule in one line) and exports
`RULE`; `engine.judge` runs them and, when none fires, the soft score of `score.py`.
"""

from __future__ import annotations

from fraudapp.models import HARD_FRAUD_TYPES
from fraudapp.rules import (
    bot_user_agent,
    click_spam,
    device_blacklist,
    device_farm,
    duplicate_click,
    ip_blacklist,
    session_url_repeat,
)
from fraudapp.rules.base import Rule

HARD_RULES: tuple[Rule, ...] = (
    ip_blacklist.RULE,
    device_blacklist.RULE,
    click_spam.RULE,
    session_url_repeat.RULE,
    duplicate_click.RULE,
    bot_user_agent.RULE,
)

# Rules on the reputation table (state/reputation.py): they follow the clicks with a lag,
# so they are judged after the hard rules and never counted among the exact ones.
FARM_RULES: tuple[Rule, ...] = (device_farm.RULE,)

# A rule added to one list and not the other would silently change verdict order.
if tuple(r.name for r in HARD_RULES) != HARD_FRAUD_TYPES:
    raise RuntimeError("fraudapp.rules.HARD_RULES is out of step with models.HARD_FRAUD_TYPES")

__all__ = ["FARM_RULES", "HARD_RULES", "Rule"]
