"""The transaction stage (CONTRACT §2b, §3b, §4b): one stage, keyed by the sending wallet.

  transactions ──check_transactions──▶ transaction-verdicts
       │ bad input → transactions-dlq       ├─▶ fraud-alerts (scope wallet)
       └ keyed otherwise → <app>-transactions-by-wallet (back into this stage)
                                            └─▶ wallet-taint (global table: what every worker reads)

Every rule but one reads the sender's own state (`wallet-activity`, on the sender's
partition) and the blacklist, so a wallet's transfers are judged in their Kafka order with
no hop. `tainted_funds` reads the `wallet-taint` table, which the partition that judged a
receipt writes: the one cross-partition rule, with the lag of that table's changelog.

Alerts: a transfer touching a blacklisted wallet alerts at once (one alert per blacklisted
wallet it touches); a sender whose flagged transfers in a tumbling window
(WALLET_ALERT_WINDOW_SECONDS) exceed WALLET_ALERT_FLAGGED alerts once for that window.
"""

from __future__ import annotations

import time
from typing import Any

import faust
import orjson

from fraudapp import metrics, tables
from fraudapp.app import app, settings, topics
from fraudapp.batching import EventT, Outbox, TableCache
from fraudapp.expiry import PartitionSweeper
from fraudapp.models import BlacklistEntry, Transaction, TxFeatures
from fraudapp.routing import reject, rekey, source_of
from fraudapp.rules.wallet.engine import judge_transaction
from fraudapp.stage import Stage
from fraudapp.state.streamtime import MultiTopicStreamTime
from fraudapp.state.taint import expired, in_force, merged, passed_on, table_key
from fraudapp.state.wallets import AlertWindow, WalletActivity, Windows
from fraudapp.validate import Rejection, parse_transaction

s = settings
WINDOWS = Windows(velocity=s.wallet_velocity_seconds, fan_out=s.fan_out_seconds, history=s.large_amount_history,
                  min_known=s.large_amount_min_known, alert=s.wallet_alert_window_seconds,
                  lateness=s.lateness_seconds, idle=s.wallet_idle_seconds)  # fmt: skip
s.large_amount_limit_of  # noqa: B018 - a malformed FRAUDAPP_LARGE_AMOUNT_LIMITS stops the worker at start

wallet_sweeper = PartitionSweeper(tables.wallet_activity, lambda _k, v: WalletActivity.json_expires_at(v, s.wallet_idle_seconds))
transaction_clock = MultiTopicStreamTime(topics.transaction_input.topics, idle_seconds=max(60.0, s.lateness_seconds))
TAINT_SWEEP_SECONDS = 60.0  # of stream time between two sweeps of a partition's taint keys
_taint_swept: dict[int, float] = {}


def judge_transactions(partition: int, group: list[EventT], wallets: TableCache[str, WalletActivity],
                       outbox: Outbox) -> dict[str, float]:  # fmt: skip
    newest_by_topic: dict[str, float] = {}
    taint = TableCache(tables.wallet_taint, _rows, _rows, 0, outbox)
    for event in group:
        msg = event.message
        tx = parse_transaction(event.value, s.max_transaction_bytes)
        if isinstance(tx, Rejection):
            reject(outbox, event, tx, topics.transaction_dlq)
            continue
        key = tx.sender.encode()
        if msg.key != key:  # keyed otherwise (a checksummed address, none): to the sender's partition first
            rekey(outbox, event, topics.transactions_rekeyed, key)
            continue
        now = time.time()
        index = tables.blacklist.index
        sender_entry, recipient_entry = index.match_wallet(tx.sender, now), index.match_wallet(tx.recipient, now)
        sender_taint = in_force(tables.wallet_taint.index.of(tx.sender), tx.ts, s.taint_seconds)
        state = wallets.get(tx.sender)
        counts = state.aggregate(tx.ts, tx.recipient, tx.asset, tx.amount, WINDOWS)
        features = TxFeatures(sender_entry, recipient_entry, sender_taint, counts.prior_in_velocity_window,
                              counts.distinct_recipients, counts.median_amount, counts.known_amounts)
        verdict = judge_transaction(tx, features, s, now).to_dict()
        verdict["source"] = source_of(event)
        outbox.add(topics.transaction_verdicts, key, orjson.dumps(verdict))
        record_metrics(verdict)
        for entry in (sender_entry, recipient_entry):
            if entry is not None:
                outbox.add(topics.alerts, entry.value.encode(), orjson.dumps(blacklisted_alert(tx, entry)))
                metrics.alerts.labels("wallet").inc()
        window = state.count_alert(tx.ts, verdict["fraud_types"], s.wallet_alert_flagged, WINDOWS)
        if window is not None:
            outbox.add(topics.alerts, key, orjson.dumps(window_alert(tx.sender, window)))
            metrics.alerts.labels("wallet").inc()
        wallets.put(tx.sender, state)
        given = passed_on(tx.sender, sender_entry is not None, sender_taint, tx.amount, tx.ts, tx.tx_id, s.taint_hops)
        if given is not None:
            taint_key = table_key(tx.recipient, partition)
            rows = merged(taint.get(taint_key), given, s.taint_seconds, s.lateness_seconds)
            taint.put(taint_key, rows)
            tables.wallet_taint.index.apply(taint_key, rows)  # this worker judges with it at once
        newest_by_topic[msg.topic] = max(newest_by_topic.get(msg.topic, tx.ts), tx.ts)
    taint.flush()
    return newest_by_topic


def _rows(value: Any) -> Any:
    return value


def blacklisted_alert(tx: Transaction, entry: BlacklistEntry) -> dict[str, Any]:
    """The alert at once about a transfer that touches a blacklisted wallet."""
    sent = entry.value == tx.sender
    return {"scope": "wallet", "id": entry.value, "kind": "blacklisted_counterparty",
            "window_start": tx.ts, "window_end": tx.ts, "clicks": 1, "fraud": 1, "ratio": 1.0,
            "top_fraud_types": {"scam_wallet": 1}, "tx_id": tx.tx_id,
            "counterparty": tx.recipient if sent else tx.sender, "direction": "sent" if sent else "received",
            "amount": tx.amount, "asset": tx.asset, "reason": entry.reason}


def window_alert(wallet: str, window: AlertWindow) -> dict[str, Any]:
    """The alert about a sender whose flagged transfers in a window exceed the threshold."""
    top = dict(sorted(window.fraud_types.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
    return {"scope": "wallet", "id": wallet, "kind": "flagged_transfers", "window_start": window.start,
            "window_end": window.start + WINDOWS.alert, "clicks": window.transfers, "fraud": window.flagged,
            "ratio": round(window.flagged / window.transfers, 4), "top_fraud_types": top}


def record_metrics(verdict: dict[str, Any]) -> None:
    metrics.transaction_verdicts.labels(verdict["verdict"]).inc()
    for fraud_type in verdict["fraud_types"]:
        metrics.transaction_fraud_types.labels(fraud_type).inc()


def expire_wallets(partition: int, newest_by_topic: dict[str, float], _wallets: TableCache[str, WalletActivity],
                   outbox: Outbox) -> None:  # fmt: skip
    watermark = transaction_clock.advance(partition, newest_by_topic, app.consumer_generation_id)
    if watermark is None:
        return
    wallet_sweeper.maybe_sweep(partition, watermark, outbox)
    if watermark >= _taint_swept.get(partition, float("-inf")) + TAINT_SWEEP_SECONDS:
        _taint_swept[partition] = watermark
        sweep_taint(partition, watermark, outbox)


def sweep_taint(partition: int, watermark: float, outbox: Outbox) -> None:
    """Delete this partition's taint keys that can no longer be in force."""
    suffix = f"@{partition}"
    taint = TableCache(tables.wallet_taint, _rows, _rows, 0, outbox)
    for key in tables.wallet_taint.index.table_keys():
        if key.endswith(suffix) and expired(taint.get(key), watermark, s.taint_seconds, s.lateness_seconds):
            taint.delete(key)
            tables.wallet_taint.index.apply(key, None)
    taint.flush()


transaction_stage = Stage(tables.wallet_activity, WalletActivity.from_json, judge_transactions, expire_wallets,
                          s.batch_linger)


@app.agent(topics.transaction_input)
async def check_transactions(stream: faust.StreamT[bytes]) -> None:
    """Validate a transfer, judge it on its sender's state, the blacklist and the taint
    table; write its verdict, its alerts, and the taint it passes on."""
    await transaction_stage.run(stream)
