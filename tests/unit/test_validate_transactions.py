"""Transactions (CONTRACT §2b): what is accepted, in which compared form, and why the rest
is refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fraudapp.addresses import canonical
from fraudapp.models import Transaction
from fraudapp.validate import Rejection, parse_transaction

CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example
OK = {"tx_id": "t1", "ts": 1_800_000_000, "from": CHECKSUMMED, "to": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
      "amount": 12.5, "asset": "ETH"}


def parse(**changes: Any) -> Transaction | Rejection:
    body = {k: v for k, v in {**OK, **changes}.items() if v is not ...}
    return parse_transaction(orjson.dumps(body))


def test_a_transfer_is_accepted_with_evm_addresses_in_lower_case() -> None:
    tx = parse(fee=0.001, ip="2001:db8::1", chain="ethereum", device_id="d", platform_user="u")
    assert isinstance(tx, Transaction)
    assert tx.sender == CHECKSUMMED.lower() and tx.recipient == OK["to"]  # other forms as given
    assert (tx.amount, tx.asset, tx.fee, tx.ip, tx.ts) == (12.5, "ETH", 0.001, "2001:db8::1", 1_800_000_000.0)


@pytest.mark.parametrize(
    ("changes", "error", "detail"),
    [
        ({"tx_id": ...}, "missing_field", "'tx_id'"),
        ({"from": ...}, "missing_field", "'from'"),
        ({"to": 7}, "wrong_type", "'to' must be a string"),
        ({"from": CHECKSUMMED[:-1] + "e"}, "invalid_value", "EIP-55 checksum does not verify"),
        ({"to": " 0xabc"}, "invalid_value", "no surrounding spaces"),
        ({"to": ""}, "invalid_value", "not a wallet address"),
        ({"amount": -1}, "invalid_value", "'amount' must be a finite number >= 0"),
        ({"amount": "5"}, "wrong_type", "'amount' must be a number"),
        ({"amount": True}, "wrong_type", "'amount' must be a number"),
        ({"amount": ...}, "missing_field", "'amount'"),
        ({"fee": -0.1}, "invalid_value", "'fee'"),
        ({"asset": ""}, "invalid_value", "'asset' must be 1..128"),
        ({"ts": 1_800_000_000_000}, "invalid_time", "outside 2000..2100"),
        ({"ip": "300.1.1.1"}, "invalid_ip", "'ip'"),
    ],
)
def test_bad_transfers_are_refused_with_a_reason(changes: dict[str, Any], error: str, detail: str) -> None:
    rejection = parse(**changes)
    assert isinstance(rejection, Rejection)
    assert rejection.error == error and detail in rejection.detail


@pytest.mark.parametrize("raw", [b"", b"[1]", b"{nope", b"\xff\xfe"])
def test_undecodable_records_are_refused(raw: bytes) -> None:
    assert isinstance(parse_transaction(raw), Rejection)


@pytest.mark.parametrize(
    ("address", "compared"),
    [
        (CHECKSUMMED, CHECKSUMMED.lower()),
        (CHECKSUMMED.lower(), CHECKSUMMED.lower()),
        ("0x" + CHECKSUMMED[2:].upper(), CHECKSUMMED.lower()),  # all upper: no checksum to check
        ("TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9", "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9"),  # Tron: exact
    ],
)
def test_addresses_compare_in_their_chains_form(address: str, compared: str) -> None:
    assert canonical(address) == compared
