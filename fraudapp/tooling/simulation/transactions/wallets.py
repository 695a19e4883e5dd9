"""Wallet addresses for simulated transfers, in the forms CONTRACT §2b tells apart.

Every address is derived from the run tag, a role and a counter (sha256), so a run's
wallets are its own: a wallet blacklisted or tainted by an earlier run against the same
detector never appears in a later one, and the same seed gives the same addresses.

* EVM (`0x` + 40 hex digits) compares case-insensitively. Generated in lower case, the
  form the worker compares and the form records are keyed by; sometimes written EIP-55
  checksummed (it must be judged like the lower-case form), and for bad input with one
  letter's case flipped (a mixed-case address whose checksum fails: dead-lettered).
* Tron (`T` + 33 base58 characters) compares exactly, as given.
"""

from __future__ import annotations

import hashlib

from eth_utils import to_checksum_address

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("/".join(map(str, parts)).encode()).digest()


def evm_address(run: str, role: str, n: int) -> str:
    """A lower-case EVM address with at least two letters among its digits (what
    `bad_checksum` needs; all but about one address in two million have them)."""
    attempt = 0
    while True:
        address = "0x" + _digest(run, role, n, attempt).hex()[:40]
        if sum(c.isalpha() for c in address[2:]) >= 2:
            return address
        attempt += 1


def checksummed(address: str) -> str:
    """The EIP-55 form of a lower-case EVM address (what wallets and explorers display)."""
    return to_checksum_address(address)


def bad_checksum(address: str) -> str:
    """`address` in EIP-55 form with the case of one letter flipped, a letter of the more
    common case: the result has both cases (so its checksum is checked) and fails it."""
    text = checksummed(address)
    letters = [k for k in range(2, len(text)) if text[k].isalpha()]
    upper = [k for k in letters if text[k].isupper()]
    lower = [k for k in letters if text[k].islower()]
    i = (upper if len(upper) >= len(lower) else lower)[0]
    return text[:i] + text[i].swapcase() + text[i + 1 :]


def tron_address(run: str, role: str, n: int) -> str:
    """A Tron-style address (`T` + 33 base58 characters): compared exactly, case and all."""
    digest = _digest(run, role, n) + _digest(run, role, n, "more")
    return "T" + "".join(BASE58[b % 58] for b in digest[:33])
