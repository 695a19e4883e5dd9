"""Wallet addresses in the form they are compared in (CONTRACT §2b).

EVM addresses (`0x` + 40 hex digits) compare case-insensitively, so their canonical form
is lower case; a mixed-case one carries an EIP-55 checksum, and one whose checksum does
not verify is a typo or a forgery, refused rather than guessed at (eth-utils checks it).
Every other form (Bitcoin, Solana, Tron, ...) compares exactly, as given.
"""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils import is_checksum_address

EVM = re.compile(r"0[xX][0-9a-fA-F]{40}")
MAX_ADDRESS_LENGTH = 128


class AddressError(ValueError):
    """Not an address fraudapp can compare."""


@lru_cache(maxsize=65536)
def canonical(address: str) -> str:
    """The compared form of `address`; AddressError when it cannot be one."""
    if not 1 <= len(address) <= MAX_ADDRESS_LENGTH or address != address.strip():
        raise AddressError(f"{address[:64]!r} is not a wallet address (1..{MAX_ADDRESS_LENGTH} characters, "
                           "no surrounding spaces)")
    if EVM.fullmatch(address) is None:
        return address
    digits = address[2:]
    lowered = "0x" + digits.lower()
    if digits == digits.lower() or digits == digits.upper():
        return lowered  # no checksum to check
    if address[:2] != "0x" or not is_checksum_address(address):
        raise AddressError(f"{address!r} has mixed case but its EIP-55 checksum does not verify")
    return lowered
