"""JSON Schemas (draft 2020-12) of every topic's value: the public interface as data.

One document per record kind of ../shared/CONTRACT.md, shipped as package data and served
by `GET /schemas/{name}`:

  click             clicks             §2  input: validate.py is the reference
  verdict           verdicts           §3  output
  alert             fraud-alerts       §5  output
  dead-letter       clicks-dlq         §6  output
  blacklist-update  blacklist-updates  §4  input: blacklist_updates.py is the reference
  rule-set          rules              §4c input: ruleset.py is the reference
  transaction       transactions       §2b input: validate.parse_transaction is the reference
  transaction-verdict transaction-verdicts §3b output
  rules-shadow      rules-shadow       --  output: a shadow run's batch (shadow.py), not in the contract
  rules-audit       rules-audit        --  output: one rule-set change (rules_stage.py), not in the contract

Input schemas are open (unknown fields are ignored, as the validators do); output schemas
are closed, so that the tests that check real records against them catch a field added
without its documentation. Each document's `description` lists where it and its
reference differ.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

from fraudapp.settings import Settings

MEDIA_TYPE = "application/schema+json"

# Fixed, not read from the directory: a name is checked against this before any file is
# opened, so a request can never reach another file.
TOPIC_SETTING: dict[str, str] = {
    "click": "topic_clicks",
    "verdict": "topic_verdicts",
    "alert": "topic_alerts",
    "dead-letter": "topic_dlq",
    "blacklist-update": "topic_blacklist",
    "rule-set": "topic_rules",
    "transaction": "topic_transactions",
    "transaction-verdict": "topic_transaction_verdicts",
    "rules-shadow": "topic_rules_shadow",
    "rules-audit": "topic_rules_audit",
}


class UnknownSchema(LookupError):
    """No schema of that name."""


def names() -> tuple[str, ...]:
    return tuple(sorted(TOPIC_SETTING))


@cache
def raw(name: str) -> bytes:
    """The document as shipped (served as is, so it is byte-for-byte the file)."""
    if name not in TOPIC_SETTING:
        raise UnknownSchema(name)
    return resources.files(__name__).joinpath(f"{name}.json").read_bytes()


def load(name: str) -> dict[str, Any]:
    """The document, parsed: a fresh copy, so a caller may change it."""
    document: dict[str, Any] = orjson.loads(raw(name))
    return document


def index(settings: Settings) -> list[dict[str, Any]]:
    """What `GET /schemas` lists: each schema with the topic it describes on this deployment."""
    return [
        {
            "name": name,
            "title": (document := load(name))["title"],
            "$id": document["$id"],
            "topic": getattr(settings, TOPIC_SETTING[name]),
            "href": f"/schemas/{name}",
        }
        for name in names()
    ]
