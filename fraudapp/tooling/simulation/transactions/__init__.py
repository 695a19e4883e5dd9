"""Labeled simulated transfers (CONTRACT §2b-§4b): populations, an exact brute-force truth,
the generator, the topics the shared runner (../runner.py) sends them to and the accuracy
report of `--stream transactions`.

Written from the contract alone: nothing here imports the worker's rules, state or stage
(tests/unit/test_simulation_transactions.py checks it), so the truth is a second opinion.
"""

from fraudapp.tooling.simulation.transactions.generator import (
    DEFAULT_TX_MIX,
    TxConfig,
    TxTraffic,
    generate_transactions,
    parse_tx_mix,
)

__all__ = ["DEFAULT_TX_MIX", "TxConfig", "TxTraffic", "generate_transactions", "parse_tx_mix"]
