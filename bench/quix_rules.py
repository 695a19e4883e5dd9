"""The hard rules of CONTRACT.md §4 written the idiomatic Quix Streams 3.x way:
StreamingDataFrame, stateful `apply` with Quix's own RocksDB state (and its changelogs),
`to_topic` + a dataframe per stage for the repartitions (device -> click_id -> session), `to_topic` for verdicts.
Same three stages as fraudapp; the blacklist is an in-memory lookup loaded at start.

    python bench/quix_rules.py --bootstrap 127.0.0.1:9092 --input clicks --output out \
        --group g --state-dir /tmp/q --blacklist entries.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rules_common as rules
from quixstreams import Application, State


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--blacklist", required=True, help="JSON list of contract §4 entries")
    args = p.parse_args()

    with open(args.blacklist) as f:
        blacklist = rules.Blacklist(json.load(f))

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    clicks = app.topic(args.input, key_deserializer="str", value_deserializer="json")
    verdicts = app.topic(args.output, key_serializer="str", value_serializer="json")

    def count_device(click: dict, state: State) -> dict:
        stamps = state.get("ts", [])
        prior = rules.prune_and_count(stamps, click["ts"], rules.CLICK_SPAM_W)
        stamps.append(click["ts"])
        stamps.sort()
        state.set("ts", stamps)
        click["_device_prior"] = prior
        return click

    def dedup(click: dict, state: State) -> dict:
        first = state.get("first")
        duplicate = first is not None and click["ts"] - first <= rules.DEDUP_SECONDS
        if not duplicate:
            state.set("first", click["ts"])
        click["_duplicate"] = duplicate
        return click

    def session_url(click: dict, state: State) -> dict:
        prior = None
        if click.get("session_id") and click.get("url"):
            stamps = state.get(click["url"], [])
            prior = rules.prune_and_count(stamps, click["ts"], rules.SESSION_W)
            stamps.append(click["ts"])
            stamps.sort()
            state.set(click["url"], stamps)
        return rules.verdict(
            click,
            device_prior=click["_device_prior"],
            duplicate=click["_duplicate"],
            session_prior=prior,
            ip_blacklisted=blacklist.ip_hit(click["ip"]),
            device_blacklisted=click["device_id"] in blacklist.devices,
        )

    # Quix allows one group_by per chain, so the second repartition is an explicit topic
    # read by a second dataframe of the same Application (one process, as fraudapp).
    by_click_id = app.topic(f"{args.group}-by-click-id", key_serializer="str", value_serializer="json",
                            key_deserializer="str", value_deserializer="json")  # fmt: skip
    by_session = app.topic(f"{args.group}-by-session", key_serializer="str", value_serializer="json",
                           key_deserializer="str", value_deserializer="json")  # fmt: skip

    devices = app.dataframe(clicks)
    devices = devices.apply(count_device, stateful=True)
    devices.to_topic(by_click_id, key=lambda c: c["click_id"])

    ids = app.dataframe(by_click_id)
    ids = ids.apply(dedup, stateful=True)
    ids.to_topic(by_session, key=lambda c: c.get("session_id") or c["click_id"])

    sessions = app.dataframe(by_session)
    sessions = sessions.apply(session_url, stateful=True)
    sessions.to_topic(verdicts, key=lambda v: v["device_id"])
    print("READY", flush=True)
    app.run()


if __name__ == "__main__":
    main()
