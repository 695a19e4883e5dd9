"""Rule sets at runtime (CONTRACT §4c): published sets applied on every worker, every change
audited, and a candidate's comparisons written out batch by batch.

  rules ──apply_rule_sets──▶ rule-sets (global table, every worker) + rules-audit
  judge stage ──ShadowRuns──▶ rules-shadow   (one record per batch while a candidate runs)

Who made a change comes with its record: the `fraudapp-actor` header (`fraudapp rules`
and the HTTP routes set it) and what it was, `fraudapp-action` (set, shadow, stop-shadow,
promote, rollback). A record without them (a user's own producer) is audited as `set`
by an unknown actor.
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from fraudapp import metrics, tables
from fraudapp.app import app, events, settings, topics
from fraudapp.batching import EventT, Outbox
from fraudapp.routing import reject
from fraudapp.ruleset import DEFAULT_NAME, SHADOW_NAME, parse_rule_set_record
from fraudapp.shadow import ShadowBatch
from fraudapp.validate import Rejection

ACTOR_HEADER = "fraudapp-actor"
ACTION_HEADER = "fraudapp-action"
ACTIONS = ("set", "shadow", "stop-shadow", "promote", "rollback", "delete")


def _header(event: EventT, name: str) -> str | None:
    for key, value in event.message.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")[:256]
    return None


def audit_record(event: EventT, name: str | None, document: Any, rejection: Rejection | None,
                 live_before: int, ended_shadow: int | None, now: float) -> dict[str, Any]:  # fmt: skip
    action = _header(event, ACTION_HEADER)
    if action not in ACTIONS:  # a record from another producer: what it does
        removes = event.value is None
        if name == SHADOW_NAME:
            action = "stop-shadow" if removes else "shadow"
        else:
            action = "delete" if removes else "set"
    return {
        "at": now,
        "published_at": event.message.timestamp,
        "by": _header(event, ACTOR_HEADER),
        "action": action,
        "name": name,
        "version": document.get("version") if isinstance(document, dict) else None,
        "live_version_before": live_before,
        "accepted": rejection is None,
        "reason": rejection.detail if rejection is not None else None,
        "shadow_ended": ended_shadow,
        "source": [event.message.topic, event.message.partition, event.message.offset],
        "document": document,
    }


def apply_rule_set(event: EventT, outbox: Outbox) -> None:
    """Check one published rule set; keep it in the rule-set table (and its history); end
    a candidate that a live version reached; audit the change."""
    rule_sets = tables.rule_sets
    live_before = rule_sets.live.version
    update = parse_rule_set_record(event.key, event.value, settings)
    name = bytes(event.key).decode(errors="replace")[:128] if event.key else None
    document, ended = None, None
    if not isinstance(update, Rejection):
        name, document = update
        update = rule_sets.stale(name, document) or update
    if isinstance(update, Rejection):
        reject(outbox, event, update)
    else:
        if document is None:
            rule_sets.pop(name, None)
        else:
            rule_sets[name] = document
        rule_sets.load(name, document)
        if name == DEFAULT_NAME and document is not None:
            _keep_history(document)
            shadow = rule_sets.shadow
            if shadow is not None and shadow.version <= document["version"]:
                # promoted, or overtaken: a candidate is only ever compared with an older live set
                ended = shadow.version
                rule_sets.pop(SHADOW_NAME, None)
                rule_sets.load(SHADOW_NAME, None)
    rejection = update if isinstance(update, Rejection) else None
    record = audit_record(event, name, document, rejection, live_before, ended, time.time())
    outbox.add(topics.rules_audit, (name or "").encode(), orjson.dumps(record))


def _keep_history(document: dict[str, Any]) -> None:
    rule_sets = tables.rule_sets
    rule_sets[tables.history_key(document["version"])] = document
    kept = rule_sets.history()
    for key, _ in kept[: max(0, len(kept) - settings.rules_history)]:
        rule_sets.pop(key, None)


async def declare_outputs() -> None:
    """The audit and shadow topics are written through the outbox, not by Faust, so Faust
    does not declare them: created here with one partition each (a broker's auto-creation
    would use its default count), before any rule set can start a shadow run."""
    for topic in (topics.rules_audit, topics.rules_shadow):
        await topic.maybe_declare()


@app.agent(topics.rules)
async def apply_rule_sets(stream: faust.StreamT[bytes]) -> None:
    """Every worker applies the `default` set's new version, and runs the `shadow` set
    beside it, as the rule-set table's changelog record arrives."""
    await declare_outputs()
    outbox = Outbox(app)
    async for event in events(stream):
        apply_rule_set(event, outbox)
        await outbox.flush()


class ShadowRuns:
    """The judge stage's comparisons with the candidate over one batch: one rules-shadow
    record per candidate version met (a version change mid-batch gives two)."""

    def __init__(self) -> None:
        self.batches: dict[int, ShadowBatch] = {}

    def add(self, version: int, live: dict[str, Any], shadow: dict[str, Any], source: Any) -> None:
        batch = self.batches.get(version)
        if batch is None:
            batch = self.batches[version] = ShadowBatch(version)
        batch.add(live, shadow, source)

    def send(self, outbox: Outbox) -> None:
        batches, self.batches = self.batches, {}
        for version, batch in batches.items():
            record = batch.record()
            outbox.add(topics.rules_shadow, str(version).encode(), orjson.dumps(record))
            metrics.count_shadow_batch(record)


shadow_runs = ShadowRuns()
