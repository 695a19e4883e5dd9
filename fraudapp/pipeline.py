"""The record that carries one accepted click between the detector's stages.

click -> [device stage] -> by_click_id -> [duplicate stage] -> by_session -> [judge stage]

Each stage adds the features it owns (keyed state lives where its key's partition is) and
forwards each accepted click exactly once, so every accepted offset ends in exactly one
verdict. Between stages, the clicks of one batch bound for the same partition travel as one
packed Kafka record (`pack` / `unpack`): a partition is chosen by the click's key exactly as
Kafka's default partitioner would, so state stays where the key lives, while the next
stage pays Faust's per-record consume cost once per pack instead of once per click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from fraudapp.models import Click


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka's) gives `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(slots=True)
class InFlight:
    click: Click
    source: tuple[str, int, int]  # topic, partition, offset of the original input
    received_at: float  # wall time the device stage first saw it
    features: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps([self.click.to_row(), self.source, self.received_at, self.features])

    @classmethod
    def decode(cls, raw: bytes) -> InFlight:
        row, (topic, partition, offset), received_at, features = orjson.loads(raw)
        return cls(Click.from_row(row), (topic, partition, offset), received_at, features)


def pack(encoded: list[bytes]) -> bytes:
    """Several encoded in-flight records as one Kafka record (a JSON array of them)."""
    return b"[" + b",".join(encoded) + b"]"


def unpack(raw: bytes) -> list[InFlight]:
    return [
        InFlight(Click.from_row(row), (topic, partition, offset), received_at, features)
        for row, (topic, partition, offset), received_at, features in orjson.loads(raw)
    ]


def session_key(click: Click) -> bytes:
    """Key of the session stage: the session, or the click itself when it has none."""
    return ("s:" + click.session_id if click.session_id else "c:" + click.click_id).encode()
