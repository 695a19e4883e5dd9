"""A shadow run through the agents (no broker): the candidate's would-flip counts are what
judging the same clicks under the candidate as the live set gives, and no verdict changes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudapp import tables
from fraudapp.app import settings as app_settings
from fraudapp.ruleset import DEFAULT_NAME, SHADOW_NAME
from fraudapp.shadow import ShadowReport, by_fraud_type_and_campaign, outcome
from tests.unit.test_agents import Sent, of, run_pipeline, sent  # noqa: F401 - the fixture

# A click: (device, session, url, seconds after the previous click, replay of an earlier click's id)
CLICKS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 1), st.sampled_from([0.0, 0.5, 1.0, 3.0, 6.0]),
              st.booleans()),
    min_size=1, max_size=20,
)
CANDIDATES = st.fixed_dictionaries({
    "rules": st.fixed_dictionaries({
        "click_spam": st.fixed_dictionaries({"threshold": st.integers(1, 3), "window_seconds": st.sampled_from([2, 10]),
                                             "enabled": st.booleans()}),
        "session_url_repeat": st.fixed_dictionaries({"threshold": st.integers(2, 4),
                                                     "window_seconds": st.sampled_from([4, 10])}),
        "duplicate_click": st.fixed_dictionaries({"enabled": st.booleans()}),
    }),
    "overrides": st.fixed_dictionaries({"campaign": st.fixed_dictionaries({
        "c1": st.fixed_dictionaries({"rules": st.fixed_dictionaries({
            "click_spam": st.fixed_dictionaries({"threshold": st.integers(1, 4)})})})})}),
})


def traffic(run: str, clicks: list[tuple[int, int, int, float, bool]], start: float) -> list[tuple[bytes, bytes]]:
    """The clicks as raw records. A session stays on one device: clicks of one session from
    several devices may be counted in either order (CONTRACT §4), and the two runs' ids
    spread them over the stages' partitions differently."""
    out, ts, ids = [], start, []
    for i, (device, session, url, step, replay) in enumerate(clicks):
        ts += step
        cid = ids[i % len(ids)] if replay and ids else f"{run}-c{i}"
        ids.append(cid)
        body = {"click_id": cid, "ts": ts, "device_id": f"{run}-d{device}", "ip": "93.184.216.34",
                "session_id": f"{run}-d{device}-s{session}", "url": f"https://ad.example/{url}", "campaign_id": f"c{device % 2}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36", "fingerprint": "fp",
                "mouse": {"moves": 12, "duration_ms": 900, "straightness": 0.5}}
        out.append((body["device_id"].encode(), orjson.dumps(body)))
    return out


def by_input(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verdicts in input order (the device stage's offsets)."""
    ordered = sorted(verdicts, key=lambda v: v["source"][2])
    return [{**v, "i": n} for n, v in enumerate(ordered)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clicks=CLICKS, candidate=CANDIDATES)
async def test_a_shadow_run_counts_what_the_candidate_as_live_set_judges(
    sent: Sent, clicks: list[tuple[int, int, int, float, bool]], candidate: dict[str, Any],  # noqa: F811
) -> None:
    run = uuid.uuid4().hex  # fresh ids: the memory tables outlive an example
    document = {"version": 5, **candidate}
    start = time.time()
    rule_sets = tables.rule_sets
    try:
        sent.clear()
        rule_sets.load(SHADOW_NAME, {**document, "name": SHADOW_NAME})
        live = by_input(await run_pipeline(sent, traffic(f"{run}a", clicks, start)))
        report, flipped = ShadowReport(), {}
        for kw in of(sent, app_settings.topic_rules_shadow):
            record = orjson.loads(kw["value"])
            report.add(record)
            flipped |= {tuple(c["source"]): (c["before"], c["after"]) for c in record["examples"]}
        sent.clear()
        rule_sets.load(SHADOW_NAME, None)
        rule_sets.load(DEFAULT_NAME, {**document, "name": DEFAULT_NAME})
        as_live = by_input(await run_pipeline(sent, traffic(f"{run}b", clicks, start)))
    finally:
        rule_sets.load(DEFAULT_NAME, None)
        rule_sets.load(SHADOW_NAME, None)
    assert all(v["rules_version"] == 0 for v in live), "a shadow run changed the verdicts' rule set"
    assert len(live) == len(as_live) == len(clicks)
    changes = [{"before": outcome(a), "after": outcome(b), "campaign_id": a["campaign_id"]}
               for a, b in zip(live, as_live, strict=True) if outcome(a) != outcome(b)]
    got = report.of(5)
    assert got is not None
    expected = {tuple(a["source"]): (outcome(a), outcome(b)) for a, b in zip(live, as_live, strict=True)
                if outcome(a) != outcome(b)}
    assert flipped == expected  # every flip is written out while a batch has at most 20
    assert (got["clicks"], got["flipped"]) == (len(clicks), len(changes))
    assert got["by"] == by_fraud_type_and_campaign(changes)
