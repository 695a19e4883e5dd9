"""Every Faust table of fraudapp, declared once. The catalogue is tables/README.md.

Keys and values are JSON. State that decides a rule is exact (see state/sliding.py) and
expires by event time through expiry.py, not through Faust's window expiry, whose
restored windows never expire (faust-streaming #385, #193).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any, TypeVar

import faust
import orjson

from fraudapp.app import app, settings
from fraudapp.models import BlacklistEntry
from fraudapp.ruleset import (
    APPLIED_NAMES,
    DEFAULT_NAME,
    SHADOW_NAME,
    Judging,
    RuleSet,
    RuleSetError,
    parse,
    version_zero,
)
from fraudapp.state.blacklist_index import BlacklistIndex
from fraudapp.state.reputation import ReputationIndex
from fraudapp.state.taint import TaintIndex
from fraudapp.validate import Rejection

JSON = {"schema": faust.Schema(key_serializer="json", value_serializer="json")}


def _table(name: str, help: str, **kw: Any) -> faust.Table:
    return app.Table(
        name, partitions=settings.partitions, help=help, options=settings.rocksdb_options(), **JSON, **kw
    )


device_clicks = _table(
    "device-clicks",
    "device_id -> its recent click times (click_spam) and its own per (session, url) (session_url_repeat)",
)
click_ids = _table(
    "click-ids",
    "click_id -> event time of its first accepted click (duplicate_click, DEDUP_SECONDS)",
)
session_url_clicks = _table(
    "session-url-clicks",
    "session_id -> {url: [[event time, device_id], ...]} (session_url_repeat, other devices' share)",
)
alert_windows = _table(
    "alert-windows",
    "'campaign:<id>' | 'publisher:<id>' -> open tumbling alert windows and closed ones",
)
entity_activity = _table(
    "entity-activity",
    "'ip:<address>' | 'net:<prefix>' | 'fp:<fingerprint>' -> its recent devices, user agents and clicks per minute "
    "(the reputation stage; state/reputation.py)",
)
entity_sightings = _table(
    "entity-sightings",
    "an entity seen with one device so far -> its activity, as in entity-activity; local RocksDB only, never "
    "written to its changelog (a worker that crashes or loses the partition forgets these first sightings)",
)
wallet_activity = _table(
    "wallet-activity",
    "sending wallet -> its recent transfer times and recipients, last amounts per asset, alert windows "
    "(wallet_velocity, fan_out, large_amount, the wallet alert)",
)


GlobalT = TypeVar("GlobalT", bound="InMemoryGlobalTable")


def _global_table(cls: type[GlobalT], name: str, help: str) -> GlobalT:
    """A table every worker holds whole, with a one-partition changelog."""
    return app.tables.add(  # type: ignore[return-value]
        cls(
            app,
            name=name,
            beacon=app.tables.beacon,
            partitions=1,
            # The changelog partition follows the key, not the source partition: the table
            # works whatever partition count an existing input topic has.
            use_partitioner=True,
            # as app.GlobalTable does: apply standby changes as they come
            standby_buffer_size=1,
            is_global=True,
            # faust-streaming's advice for a GlobalTable read by several workers: without
            # these a worker can loop in recovery.
            recovery_buffer_size=1,
            help=help,
            options=settings.rocksdb_options(),
            **JSON,
        )
    )


class InMemoryGlobalTable(faust.GlobalTable):
    """A global table (one changelog partition) whose worker keeps a decoded view in
    memory: every changelog record that reaches this worker is also handed, decoded, to
    `index_apply` (None: the key was deleted)."""

    def partition_for_key(self, key: Any) -> int:
        """The changelog has one partition (`partitions=1`): every entry goes to partition 0.

        Faust would otherwise ask the producer's partitioner at once (`eager_partitioning`),
        and a producer whose metadata does not list this changelog yet - an update that
        arrives shortly after the worker created the topic - fails the write with
        "'NoneType' object is not iterable": the agent crashes and the update is lost.
        """
        return 0

    def apply_changelog_batch(self, batch: Iterable[faust.types.EventT]) -> None:
        events = list(batch)
        super().apply_changelog_batch(events)
        for event in events:
            raw = event.message.value
            self.index_apply(orjson.loads(event.message.key), orjson.loads(raw) if raw is not None else None)

    def index_apply(self, key: Any, value: Any) -> None:
        raise NotImplementedError


class BlacklistTable(InMemoryGlobalTable):
    """The blacklist, on every worker, with an in-memory index kept in step.

    Entries reach the other workers through the changelog (`apply_changelog_batch`); the
    worker that applies an update also writes the index directly.
    """

    index: BlacklistIndex

    def __post_init__(self) -> None:  # faust's Service calls this at the end of __init__
        self.index = BlacklistIndex()

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        self.rebuild_index()

    def rebuild_index(self) -> None:
        index = BlacklistIndex()
        for value in self.values():
            with contextlib.suppress(ValueError, TypeError):  # entries are validated before they are written
                index.add(BlacklistEntry(**value))
        self.index = index

    def index_apply(self, key: Any, value: Any) -> None:
        with contextlib.suppress(ValueError, TypeError):  # entries are validated before they are written
            if value is None:
                kind, _, entry_value = key.partition(":")
                self.index.remove(kind, entry_value)
            else:
                self.index.add(BlacklistEntry(**value))


blacklist: BlacklistTable = _global_table(
    BlacklistTable, "blacklist", "'<kind>:<value>' -> blacklist entry {kind, value, reason, added_at, expires_at}"
)



class IndexedGlobalTable(InMemoryGlobalTable):
    """A global table whose in-memory index is an object with `apply(key, value)`
    (`new_index` makes an empty one), rebuilt from the table once recovery completes."""

    index: Any

    def new_index(self) -> Any:
        raise NotImplementedError

    def __post_init__(self) -> None:  # faust's Service calls this at the end of __init__
        self.index = self.new_index()

    def index_apply(self, key: Any, value: Any) -> None:
        self.index.apply(key, value)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        index = self.new_index()
        for key, value in self.items():
            index.apply(key, value)
        self.index = index


class TaintTable(IndexedGlobalTable):
    """Tainted wallets (state/taint.py) on every worker, with an in-memory index kept in
    step: '<wallet>@<partition>' -> taint entries, written by the owner of that partition
    of `transactions` (so each key has one writer) in its transaction."""

    index: TaintIndex

    def new_index(self) -> TaintIndex:
        return TaintIndex()


wallet_taint: TaintTable = _global_table(
    TaintTable, "wallet-taint",
    "'<wallet>@<transactions partition>' -> [[event time, hops, source wallet, tx_id], ...]: what tainted the wallet",
)



class ReputationTable(IndexedGlobalTable):
    """Entity summaries (state/reputation.py) on every worker, with an in-memory index kept
    in step: written by the reputation stage's owner of the entity's partition, in its
    transaction, once the entity has been seen with two devices."""

    index: ReputationIndex

    def new_index(self) -> ReputationIndex:
        return ReputationIndex()


reputation: ReputationTable = _global_table(
    ReputationTable, "reputation",
    "'ip:<address>' | 'net:<prefix>' | 'fp:<fingerprint>' -> {t: newest event time, w: per window [seconds, devices, "
    "clicks, user agents, new devices, top publisher, its devices]}: what every judge reads",
)

log = logging.getLogger(__name__)


class RuleSetTable(InMemoryGlobalTable):
    """Rule sets on every worker (CONTRACT §4c), as the blacklist is: name -> document.

    `live` is the set named `default`, parsed, or the environment's settings (version 0)
    when there is none; `shadow` the candidate judged beside it, or None. `versions` and
    `shadow_versions` keep every version this worker has seen, so that a click is judged by
    every stage under the versions the first stage took for it. The live versions before
    the latest are also kept in the table (`default@<version>`, the last RULES_HISTORY): a
    rollback republishes one, and a restarted worker still knows them."""

    live: RuleSet
    shadow: RuleSet | None
    versions: dict[int, RuleSet]
    shadow_versions: dict[int, RuleSet]

    def __post_init__(self) -> None:  # faust's Service calls this at the end of __init__
        self.live = version_zero(settings)
        self.shadow = None
        self.versions = {0: self.live}
        self.shadow_versions = {}

    def index_apply(self, key: Any, value: Any) -> None:
        self.load(key, value)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        for key, document in self.history():
            self.load(key, document)
        self.load(DEFAULT_NAME, self.get(DEFAULT_NAME))
        self.load(SHADOW_NAME, self.get(SHADOW_NAME))

    def load(self, name: str, document: Any) -> None:
        """Apply a written document (documents are checked before they are written)."""
        kept = history_version(name)
        if name not in APPLIED_NAMES and kept is None:
            return
        if document is None:  # deleted: the environment's settings / no candidate
            if name == DEFAULT_NAME:
                self.live = self.versions[0]
            elif name == SHADOW_NAME:
                self.shadow = None
            return
        try:
            ruleset = parse(document, settings)
        except RuleSetError as exc:  # a deployment with other windows may refuse it
            log.error("rule set %r version %r not applied: %s", name, document.get("version"), exc)
            return
        if name == SHADOW_NAME:
            self.shadow_versions[ruleset.version] = self.shadow = ruleset
            return
        self.versions[ruleset.version] = ruleset
        if name == DEFAULT_NAME:
            self.live = ruleset

    def stale(self, name: str, document: Any) -> Rejection | None:
        """Why a published document cannot be applied: live versions only go up (a rollback
        publishes the old content as a new version), and a candidate must be above the live
        version, so that promoting it makes it the next one."""
        if document is not None and name in APPLIED_NAMES and document["version"] <= self.live.version:
            what = "a candidate's version must be above" if name == SHADOW_NAME else "it is not above"
            return Rejection("invalid_value", f"rule set {name!r} version {document['version']}: {what} "
                                              f"the version in force, {self.live.version}")
        return None

    def judging(self, version: int, campaign_id: str | None, publisher_id: str | None) -> Judging:
        """What a click the first stage took `version` for is judged under (the live set's
        version when this worker has not seen that one: it restarted in between)."""
        return self.versions.get(version, self.live).for_click(campaign_id, publisher_id)

    def shadow_judging(self, version: int, campaign_id: str | None, publisher_id: str | None) -> Judging | None:
        """What the candidate of `version` judges a click under (None: this worker has not
        seen that candidate, it restarted in between: the click is left out of the run)."""
        ruleset = self.shadow_versions.get(version)
        return ruleset.for_click(campaign_id, publisher_id) if ruleset is not None else None

    def history(self) -> list[tuple[str, Any]]:
        """The kept live versions' (key, document), oldest first."""
        kept = [(version, key) for key in self.keys() if (version := history_version(key)) is not None]
        return [(key, self[key]) for _, key in sorted(kept)]


def history_key(version: int) -> str:
    return f"{DEFAULT_NAME}@{version}"


def history_version(key: Any) -> int | None:
    """The version a history key (`default@<version>`) keeps, else None."""
    if isinstance(key, str) and key.startswith(DEFAULT_NAME + "@") and key[len(DEFAULT_NAME) + 1:].isdigit():
        return int(key[len(DEFAULT_NAME) + 1:])
    return None


rule_sets: RuleSetTable = _global_table(
    RuleSetTable, "rule-sets",
    "rule-set name -> its latest document (CONTRACT §4c): 'default' live, 'shadow' the candidate, "
    "'default@<version>' the live versions kept for rollback"
)

STATE_TABLES = (device_clicks, click_ids, session_url_clicks, alert_windows, wallet_activity, entity_sightings,
                entity_activity)
