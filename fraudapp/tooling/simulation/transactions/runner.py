"""The transaction stream's topics for the runner (runner.py), which sends either stream.

Generated transfers go out as the clicks do: the run's wallet entries first, probe
transfers to the probe wallet until one is judged `scam_wallet` (`TxTraffic.probe`), then
the inputs. The runner's `SimTopics` is filled with the transaction topics (`clicks` is the
input topic, `verdicts` and `dlq` the transaction ones): every Kafka helper of kafkaio.py
then serves both streams.
"""

from __future__ import annotations

from fraudapp.settings import Settings
from fraudapp.tooling.simulation.kafkaio import SimTopics


def transaction_topics(s: Settings) -> SimTopics:
    return SimTopics(s.topic_transactions, s.topic_transaction_verdicts, s.topic_transactions_dlq, s.topic_blacklist)
