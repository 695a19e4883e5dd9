"""`fraudapp blacklist load FILE` without a broker: what it would publish from the list
forms users have (JSON lines, one value per line, a wallet list with a reason column)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from fraudapp.cli import main
from fraudapp.commands import blacklist

CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def capture(_settings: Any, _topic: str, records: list[tuple[bytes, bytes]], *_: Any) -> None:
        out.extend(orjson.loads(value) for _, value in records)

    monkeypatch.setattr(blacklist, "publish", capture)
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a sanction list's CSV with a header: address, reason
        (f"address,reason\n{CHECKSUMMED},OFAC SDN\nbc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,\"ransomware\"\n",
         [("wallet", CHECKSUMMED, "OFAC SDN"), ("wallet", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "ransomware")]),
        # tab-separated, and a bare address (the --reason default)
        (f"{CHECKSUMMED.lower()}\tdrainer contract\n0x{'ab' * 20}\n",
         [("wallet", CHECKSUMMED.lower(), "drainer contract"), ("wallet", "0x" + "ab" * 20, "listed")]),
        # mixed kinds, comments, JSON lines
        ("# ips\n203.0.113.7 scraper farm\n10.0.0.0/8\n" + '{"op": "remove", "kind": "device", "value": "d1"}\n',
         [("ip", "203.0.113.7", "scraper farm"), ("cidr", "10.0.0.0/8", "listed"), ("device", "d1", None)]),
    ],
)
def test_load_reads_each_list_form(tmp_path: Path, published: list[dict[str, Any]], text: str,
                                   expected: list[tuple[str, str, str | None]]) -> None:  # fmt: skip
    file = tmp_path / "list.txt"
    file.write_text(text)
    result = CliRunner().invoke(main, ["blacklist", "load", str(file), "--reason", "listed"], env={})
    assert result.exit_code == 0, result.output
    assert [(u["kind"], u["value"], u.get("reason")) for u in published] == expected


def test_load_refuses_a_wallet_with_a_bad_checksum_before_publishing(tmp_path: Path,
                                                                    published: list[dict[str, Any]]) -> None:  # fmt: skip
    file = tmp_path / "list.txt"
    file.write_text(f"{CHECKSUMMED},ok\n{CHECKSUMMED[:-1]}e,typo\n")
    result = CliRunner().invoke(main, ["blacklist", "load", str(file)], env={})
    assert result.exit_code == 1 and "EIP-55 checksum does not verify" in result.output
    assert published == []
