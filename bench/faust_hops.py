"""faust_hops: fraudapp's plumbing without its work — three Faust agents chained through
two repartition topics (input keyed by device -> by click_id -> by session -> output) with
fraudapp's own batching, packing and producing (`fraudapp.batching`): one record per click
in and out, packs between the stages; no tables, no rules, no validation beyond decoding.

What it bounds: fraudapp must keep each rule's state where its key lives (device, click_id,
session), so any exact design on Faust pays for three consumes and three produces per
click. This system pays exactly that and nothing else.

    python bench/faust_hops.py --bootstrap 127.0.0.1:9092 --input clicks --output out --group g
"""

from __future__ import annotations

import argparse
import logging
import sys

import faust
import orjson

from fraudapp.batching import Outbox, batches

LINGER = 0.005  # fraudapp's default FRAUDAPP_BATCH_LINGER_MS


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.group,
        broker="kafka://" + args.bootstrap,
        store="memory://",
        web_enabled=False,
        topic_partitions=args.partitions,
        producer_linger_ms=2,
        datadir=args.datadir,
    )
    source = app.topic(args.input, value_serializer="raw", key_serializer="raw")
    output = app.topic(args.output, value_serializer="raw", key_serializer="raw")
    by_click = app.topic(f"{args.group}-by-click-id", value_serializer="raw", key_serializer="raw", internal=True)
    by_session = app.topic(f"{args.group}-by-session", value_serializer="raw", key_serializer="raw", internal=True)

    def click_key(c: dict) -> bytes:
        return str(c["click_id"]).encode()

    def session_key(c: dict) -> bytes:
        return str(c.get("session_id") or c["click_id"]).encode()

    @app.task
    async def quiet_debug_logging() -> None:
        # as fraudapp does (fraudapp/app.py): without it every debug call builds a record
        root = logging.getLogger()
        for handler in [h for h in root.handlers if type(h).__name__ == "SpinnerHandler"]:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)

    @app.agent(source)
    async def hop1(stream: faust.StreamT) -> None:
        outbox = Outbox(app)
        async for batch in batches(stream, LINGER):
            for event in batch:
                click = orjson.loads(event.value)
                outbox.add_packed(by_click, click_key(click), orjson.dumps(click))
            await outbox.flush()

    @app.agent(by_click)
    async def hop2(stream: faust.StreamT) -> None:
        outbox = Outbox(app)
        async for batch in batches(stream, LINGER):
            for event in batch:
                for click in orjson.loads(event.value):
                    outbox.add_packed(by_session, session_key(click), orjson.dumps(click))
            await outbox.flush()

    @app.agent(by_session)
    async def hop3(stream: faust.StreamT) -> None:
        outbox = Outbox(app)
        async for batch in batches(stream, LINGER):
            for event in batch:
                for click in orjson.loads(event.value):
                    outbox.add(output, str(click["device_id"]).encode(), orjson.dumps(click))
            await outbox.flush()

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--datadir", default="faust-hops-data")
    args, rest = p.parse_known_args()
    sys.argv = [sys.argv[0], *(rest or ["worker", "-l", "warn"])]
    build(args).main()


if __name__ == "__main__":
    main()
