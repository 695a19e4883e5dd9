"""What a generator hands the runner, for either stream: the inputs in production order,
their truth, the blacklist entries published before them, and the probe that shows the
detector has applied those entries (runner.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson


@dataclass(frozen=True, slots=True)
class Input:
    index: int
    key: bytes | None
    value: bytes
    emit: float  # seconds after the start at which it is sent


@dataclass
class GeneratedTraffic(ABC):
    inputs: list[Input]
    truth: list[dict[str, Any]]
    entries: list[dict[str, Any]]  # blacklist updates, published before any input; the probe's last
    run: str

    # The fraud type a probe gets once the worker judging it has applied the probe's entry,
    # and so (one partition, applied in order) every entry before it.
    probe_proves: ClassVar[str]

    @abstractmethod
    def probe(self, k: int) -> tuple[bytes | None, bytes]:
        """(key, value) of the runner's probe k, judged `probe_proves` once the entries are
        applied. Probes are not part of the evaluated traffic: each is stamped at the
        traffic's start, never "now", so that it does not move the detector's stream time
        ahead of back-dated traffic (state is swept by event time: a probe stamped now
        would expire the traffic's windows)."""

    def truth_lines(self) -> bytes:
        return b"".join(orjson.dumps(t) + b"\n" for t in self.truth)

    def input_lines(self) -> bytes:
        """The inputs as JSON lines, one a line as produced (`fraudapp replay`'s format)."""
        return b"".join(i.value + b"\n" for i in self.inputs)
