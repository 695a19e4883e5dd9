"""The reputation stage: what each address, network and fingerprint's recent clicks look like together.

  check_devices ──▶ clicks-by-entity ──count_entities──▶ entity-activity (the entity's partition)
                                                     └─▶ reputation (global table: every worker's judge reads it)

Off the verdict's path: the device stage sends each accepted click's entities here and
forwards the click to the next stage without waiting; the judge reads whatever summary
its worker holds (the lag from a click to its effect is measured in
tests/integration/test_reputation.py). Keyed by entity, so that each entity's counts are
exact and have one writer. Only entities seen with two devices are published: a lone
device's address or fingerprint says nothing about farms, and most entities are that, so
their first sightings stay local (`entity-sightings`, no changelog). A worker that
crashes, or a partition that moves, forgets those: an entity then counts one device
fewer, once (its first, if the second comes after).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
import orjson

from fraudapp import tables
from fraudapp.app import app, settings, topics
from fraudapp.batching import EventT, Outbox, TableCache
from fraudapp.expiry import PartitionSweeper
from fraudapp.models import Click, ClickReputation
from fraudapp.stage import Stage, to_json
from fraudapp.state.reputation import EntityActivity, entities_of, user_agent_id
from fraudapp.state.streamtime import Watermarks

s = settings
HORIZONS = s.reputation_horizons
MEMORY = HORIZONS[-1]  # the longest horizon: nothing older counts anywhere
NOTHING = ClickReputation()


def entity_items(click: Click) -> Iterator[tuple[bytes, bytes]]:
    """(key, item) for `clicks-by-entity`: one per entity the click counts towards."""
    user_agent = user_agent_id(click.user_agent)
    for entity in entities_of(click.ip, click.fingerprint):
        yield entity.encode(), orjson.dumps([entity, click.ts, click.device_id, user_agent, click.publisher_id])


def reputation_of(click: Click) -> ClickReputation:
    """What this worker's reputation table says about the click's entities."""
    if not s.reputation:
        return NOTHING
    return tables.reputation.index.of_click(click.ip, click.fingerprint, click.ts, MEMORY)


def _same(value: Any) -> Any:
    return value


def count_entity_clicks(partition: int, group: list[EventT], activity: TableCache[str, EntityActivity],
                        outbox: Outbox) -> float:  # fmt: skip
    """Count each item towards its entity. An entity lives in `entity-sightings` (local
    only) until a second device shows up on it, then in `entity-activity` (changelogged)
    and the reputation table: most entities - a person's own fingerprint, a home address -
    never get there, so they cost no changelog record."""
    sightings = TableCache(tables.entity_sightings, EntityActivity.from_json, to_json, partition, outbox,
                           changelog=False)
    shared: dict[str, EntityActivity] = {}
    newest = 0.0
    for event in group:
        for entity, ts, device_id, user_agent, publisher in orjson.loads(event.value):
            newest = max(newest, ts)
            value = shared.get(entity) or activity.get(entity)
            if not value.newest:  # not shared (yet)
                value = sightings.get(entity)
                value.add(ts, device_id, user_agent, publisher, MEMORY, s.reputation_max_devices)
                if len(value.devices) < 2:
                    sightings.put(entity, value)
                    continue
                sightings.delete(entity)
            else:
                value.add(ts, device_id, user_agent, publisher, MEMORY, s.reputation_max_devices)
            shared[entity] = value
    sightings.flush()
    published = TableCache(tables.reputation, _same, _same, 0, outbox)
    for entity, value in shared.items():
        value.published = True
        body = value.summary(entity, HORIZONS).to_json()
        published.put(entity, body)
        tables.reputation.index.apply(entity, body)  # this worker judges with it at once
        activity.put(entity, value)
    published.flush()
    return newest


class _ForgetPublished:
    """The sweeper's tombstone sink: an expired entity's summary leaves the reputation
    table with it."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.published = TableCache(tables.reputation, _same, _same, 0, outbox)

    def tombstone(self, topic: Any, partition: int, key: bytes) -> None:
        self.outbox.tombstone(topic, partition, key)
        entity = orjson.loads(key)
        if entity in tables.reputation.index:
            self.published.delete(entity)
            tables.reputation.index.apply(entity, None)


class _LocalOnly:
    """The sightings sweeper's tombstone sink: their changelog was never written."""

    def tombstone(self, topic: Any, partition: int, key: bytes) -> None:
        pass


entity_marks = Watermarks()
entity_sweeper = PartitionSweeper(
    tables.entity_activity, lambda _k, v: EntityActivity.json_expires_at(v, MEMORY, s.lateness_seconds)
)
sightings_sweeper = PartitionSweeper(
    tables.entity_sightings, lambda _k, v: EntityActivity.json_expires_at(v, MEMORY, s.lateness_seconds)
)


def expire_entities(partition: int, newest: float, _activity: TableCache[str, EntityActivity],
                    outbox: Outbox) -> None:  # fmt: skip
    sink = _ForgetPublished(outbox)
    watermark = entity_marks.advance(partition, newest)
    entity_sweeper.maybe_sweep(partition, watermark, sink)
    sink.published.flush()
    sightings_sweeper.maybe_sweep(partition, watermark, _LocalOnly())


reputation_stage = Stage(tables.entity_activity, EntityActivity.from_json, count_entity_clicks, expire_entities,
                         s.batch_linger)


@app.agent(topics.by_entity)
async def count_entities(stream: faust.StreamT[bytes]) -> None:
    """Count each address's, network's and fingerprint's devices, clicks and user agents;
    publish the summaries of those seen with two devices."""
    await reputation_stage.run(stream)
