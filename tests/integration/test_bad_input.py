"""A fixed corpus of malformed (and odd but valid) inputs at volume through the real broker
into a real worker: every input offset ends as exactly one verdict or one dead letter
with the expected reason, and the worker is still up and never crashed an agent."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from fraudapp.validate import REJECTION_CODES, Rejection, parse_click
from tests.integration.conftest import Cluster, consume

pytestmark = pytest.mark.integration

COPIES = 110  # of each kind: ~4,000 inputs
TS = time.time() - 30
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def base(i: int) -> dict[str, Any]:
    return {"click_id": f"bad-{i}", "ts": TS + i * 0.001, "device_id": f"bd{i % 97}", "ip": "93.184.216.34",
            "user_agent": UA}


def js(obj: Any) -> bytes:
    return orjson.dumps(obj)


def without(obj: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != field}


# kind -> (key, value) for input i; the expected outcome is what the validator says (checked
# below to cover every rejection code), the point here is the path through Kafka and Faust.
CORPUS: dict[str, Any] = {
    "empty": lambda i: (b"k", b""),
    "tombstone": lambda i: (b"k", None),
    "oversize": lambda i: (b"k", js({**base(i), "padding": "x" * 66_000})),
    "invalid_utf8": lambda i: (b"k", b'{"click_id": "\xff\xfe broken"}'),
    "truncated_json": lambda i: (b"k", js(base(i))[:-7]),
    "form_encoded": lambda i: (b"k", f"click_id=bad-{i}&device_id=d".encode()),
    "nan_literal": lambda i: (b"k", b'{"click_id": "x", "ts": NaN}'),
    "deep_nesting": lambda i: (b"k", b"[" * 2000 + b"]" * 2000),
    "huge_number": lambda i: (b"k", b'{"click_id": "x", "ts": 1e999}'),
    "bom_prefixed": lambda i: (b"k", b"\xef\xbb\xbf" + js(base(i))),
    "array": lambda i: (b"k", js([base(i)])),
    "string": lambda i: (b"k", js("a click")),
    "null": lambda i: (b"k", b"null"),
    "missing_ip": lambda i: (b"k", js(without(base(i), "ip"))),
    "missing_ids": lambda i: (b"k", js({"ts": TS, "ip": "1.2.3.4"})),
    "device_id_number": lambda i: (b"k", js({**base(i), "device_id": 12345})),
    "ts_boolean": lambda i: (b"k", js({**base(i), "ts": True})),
    "mouse_list": lambda i: (b"k", js({**base(i), "mouse": [1, 2]})),
    "url_object": lambda i: (b"k", js({**base(i), "url": {"href": "x"}})),
    "country_three_letters": lambda i: (b"k", js({**base(i), "country": "USA"})),
    "empty_device_id": lambda i: (b"k", js({**base(i), "device_id": ""})),
    "long_click_id": lambda i: (b"k", js({**base(i), "click_id": "c" * 129})),
    "negative_moves": lambda i: (b"k", js({**base(i), "mouse": {"moves": -1, "duration_ms": 5, "straightness": 0.5}})),
    "ip_out_of_range": lambda i: (b"k", js({**base(i), "ip": "999.12.0.1"})),
    "ip_hostname": lambda i: (b"k", js({**base(i), "ip": "localhost"})),
    "ts_words": lambda i: (b"k", js({**base(i), "ts": "yesterday at noon"})),
    "ts_milliseconds": lambda i: (b"k", js({**base(i), "ts": int(TS * 1000)})),
    "ts_no_offset": lambda i: (b"k", js({**base(i), "ts": "2024-11-23T10:00:00"})),
    # odd but valid: each must get a verdict
    "binary_key": lambda i: (b"\xff\x00\xfe", js(base(i))),
    "no_key": lambda i: (None, js(base(i))),
    "unicode_ids": lambda i: (b"k", js({**base(i), "click_id": f"bad-{i}-ü🙂", "device_id": "gerät-🙂"})),
    "ipv6_unknown_fields": lambda i: (b"k", js({**base(i), "ip": "2001:DB8::1", "extra": {"deep": [1, None]}})),
    "iso_time_alias": lambda i: (b"k", js({**without(base(i), "click_id"), "transaction_id": f"bad-{i}",
                                           "ts": "2026-01-01T00:00:00+02:00"})),
}


def expected(value: bytes | None) -> str:
    result = parse_click(value)
    return result.error if isinstance(result, Rejection) else "verdict"


async def produce_positions(bootstrap: str, topic: str,
                            records: list[tuple[bytes | None, bytes | None]]) -> list[tuple[str, int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, enable_idempotence=True,
                                max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in metas]


@pytest.mark.timeout(300)
def test_malformed_corpus_at_volume(fraud_cluster: Cluster) -> None:
    # Unique click ids per copy: duplicates would be verdicts too, but keep it about bad input.
    records, kinds = [], []
    for copy in range(COPIES):
        for n, (kind, make) in enumerate(CORPUS.items()):
            records.append(make(copy * 1000 + n))
            kinds.append(kind)
    outcome_of_kind = {kind: expected(make(0)[1]) for kind, make in CORPUS.items()}
    assert set(outcome_of_kind.values()) == {*REJECTION_CODES, "verdict"}, "the corpus must hit every code"
    assert sum(v != "verdict" for v in outcome_of_kind.values()) >= 12

    worker = fraud_cluster.start_worker("w1")
    started = time.monotonic()
    positions = asyncio.run(produce_positions(fraud_cluster.bootstrap, fraud_cluster.topic("clicks"), records))
    want = {pos: kind for pos, kind in zip(positions, kinds, strict=True)}
    n_dead = sum(outcome_of_kind[k] != "verdict" for k in kinds)
    n_verdicts = len(records) - n_dead

    dead = consume(fraud_cluster, "clicks-dlq", n_dead, timeout=180)
    verdicts = consume(fraud_cluster, "verdicts", n_verdicts, timeout=120)
    elapsed = time.monotonic() - started

    answers: dict[tuple[str, int, int], list[str]] = {}
    for record in dead:
        body = orjson.loads(record.value)
        pos = (body["topic"], body["partition"], body["offset"])
        answers.setdefault(pos, []).append(body["error"])
        kind = want.get(pos)
        assert kind is not None, f"dead letter for an input nobody sent: {pos}"
        assert body["detail"], body
        # the original bytes are kept, as text or base64
        original = records[kinds.index(kind)][1] or b""
        if body["value_encoding"] == "base64":
            assert base64.b64decode(body["value"]) == original[: len(base64.b64decode(body["value"]))]
    for record in verdicts:
        body = orjson.loads(record.value)
        answers.setdefault(tuple(body["source"]), []).append("verdict")

    missing = Counter(kind for pos, kind in want.items() if pos not in answers)
    doubled = Counter(want[pos] for pos, got in answers.items() if len(got) > 1)
    wrong = Counter(f"{want[pos]}: {got[0]} != {outcome_of_kind[want[pos]]}" for pos, got in answers.items()
                    if got[0] != outcome_of_kind[want[pos]])
    print(f"\n{len(records)} inputs ({len(CORPUS)} kinds x {COPIES}): {n_dead} dead letters, {n_verdicts} verdicts "
          f"in {elapsed:.1f} s; missing {sum(missing.values())}, doubled {sum(doubled.values())}, "
          f"wrong {sum(wrong.values())}")
    assert not missing, f"inputs without an answer, by kind: {dict(missing)}"
    assert not doubled, f"inputs answered twice, by kind: {dict(doubled)}"
    assert not wrong, dict(wrong)
    assert worker.healthy(), worker.tail()
    log = worker.log.read_text(errors="replace")
    assert "Crashed reason" not in log and "Traceback" not in log, worker.tail(80)
