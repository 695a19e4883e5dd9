"""ivt: which class of invalid traffic a verdict is, after the MRC Invalid Traffic Detection
and Filtration Guidelines (CONTRACT §3 `ivt`: "givt", "sivt" or null).

* General IVT (GIVT) is what lists and routine filters catch: declared crawlers
  (bot_user_agent), blacklisted addresses and devices (ip_blacklist, device_blacklist),
  duplicate clicks (duplicate_click), activity-based filtration of one device's or one
  session's excessive clicks (click_spam, session_url_repeat), and known data-center
  traffic (a click whose score fell on a data-center address).
* Sophisticated IVT (SIVT) needs analysis across signals to see: a click that passed every
  list and filter but whose fingerprint and behaviour score it as not human
  (low_human_score).
* Clean and suspicious verdicts are not IVT (null): a suspicious click is not filtered.
"""

from __future__ import annotations

from collections.abc import Iterable

GIVT_FRAUD_TYPES = frozenset(
    {"ip_blacklist", "device_blacklist", "bot_user_agent", "duplicate_click", "click_spam", "session_url_repeat"}
)
IVT_CLASSES = ("givt", "sivt")


def ivt_class(verdict: str, fraud_types: Iterable[str], datacenter: bool) -> str | None:
    """The IVT class of a verdict; `datacenter`: its address lies in a data-center range."""
    if verdict != "fraud":
        return None
    if datacenter or any(t in GIVT_FRAUD_TYPES for t in fraud_types):
        return "givt"
    return "sivt"
