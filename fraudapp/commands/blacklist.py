"""`fraudapp blacklist add|remove|load`: publish contract §4 updates to blacklist-updates."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from fraudapp.blacklist_updates import KINDS, update_from_obj
from fraudapp.commands.publishing import publish
from fraudapp.settings import Settings
from fraudapp.validate import Rejection
from fraudapp.web.requests import infer_kind


def _check(update: dict[str, Any]) -> None:
    result = update_from_obj(update, time.time())
    if isinstance(result, Rejection):
        raise click.ClickException(f"{update.get('value')!r}: {result.detail}")


def _run(updates: list[dict[str, Any]], broker: str | None) -> None:
    settings = Settings.from_env(**({"broker": broker} if broker else {}))
    for u in updates:
        _check(u)
    records = [(u["value"].encode(), orjson.dumps(u)) for u in updates]
    asyncio.run(publish(settings, settings.topic_blacklist, records))
    click.echo(f"published {len(updates)} update(s) to {settings.topic_blacklist}")


# value, then an optional reason: "0xab..,phishing", "0xab..\tphishing", "0xab..  phishing"
COLUMNS = re.compile(r"\s*[,\t]\s*|\s+")
HEADER_NAMES = {"address": "wallet", "wallet": "wallet", "value": None, "ip": "ip", "device": "device"}

broker_option = click.option("--broker", help="Kafka URL (default FRAUDAPP_BROKER)")
kind_option = click.option("--kind", type=click.Choice(KINDS), help="entry kind (guessed from the value when omitted)")


@click.group(name="blacklist")
def command() -> None:
    """Change the blacklist of running workers (they apply it within a second)."""


@command.command()
@click.argument("value")
@kind_option
@click.option("--reason", default="", help="why it is blacklisted")
@click.option("--ttl", "ttl_seconds", type=float, default=None, help="seconds until the entry expires")
@broker_option
def add(value: str, kind: str | None, reason: str, ttl_seconds: float | None, broker: str | None) -> None:
    """Blacklist an IP, CIDR range, device or wallet."""
    update = {"op": "add", "kind": kind or infer_kind(value), "value": value, "reason": reason,
              "ttl_seconds": ttl_seconds}
    _run([update], broker)


@command.command()
@click.argument("value")
@kind_option
@broker_option
def remove(value: str, kind: str | None, broker: str | None) -> None:
    """Remove an entry."""
    _run([{"op": "remove", "kind": kind or infer_kind(value), "value": value}], broker)


@command.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@kind_option
@click.option("--reason", default="", help="reason for plain-value lines")
@broker_option
def load(file: Path, kind: str | None, reason: str, broker: str | None) -> None:
    """Publish every entry of FILE: JSON lines of §4 updates, or one value per line with an
    optional reason column after a comma, a tab or spaces (the form sanction and
    scam-tracking lists publish wallets in; a header line naming the columns is skipped,
    and `address` or `wallet` as its first column makes every line a wallet; '#' comments)."""
    updates = []
    for number, line in enumerate(file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                update = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise click.ClickException(f"{file}:{number}: not JSON: {exc}") from None
        else:
            columns = COLUMNS.split(line, maxsplit=1)
            value = columns[0].strip('"')
            own_reason = columns[1].strip().strip('"') if len(columns) > 1 else ""
            if not updates and value.lower() in HEADER_NAMES:
                # a header naming the column: "address"/"wallet" makes every line a wallet
                kind = kind or HEADER_NAMES[value.lower()]
                continue
            update = {"op": "add", "kind": kind or infer_kind(value), "value": value, "reason": own_reason or reason}
        updates.append(update)
    if not updates:
        click.echo(f"{file}: no entries", err=True)
        sys.exit(1)
    _run(updates, broker)
