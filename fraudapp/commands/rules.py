"""`fraudapp rules show|check|set|shadow|promote|rollback`: rule sets (CONTRACT §4c).

`set` publishes a new live version to the `rules` topic, which every worker applies within
a second; `shadow` runs a candidate beside the live set without changing any verdict;
`promote` makes the candidate live; `rollback` republishes the live version before this
one as a new version. What a deployment holds is read from its rule-set table's
changelog (accepted versions only) and its rules-shadow topic; every change is audited on
the rules-audit topic with the `fraudapp-actor` this command sends (`cli:<user>@<host>`).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from fraudapp.commands.publishing import publish
from fraudapp.kafkaconn import KafkaUnreachable, explain_connection_errors
from fraudapp.ruleset import DEFAULT_NAME, SETTING_OF, SHADOW_NAME, RuleSet, RuleSetError, parse, version_zero
from fraudapp.settings import Settings, SettingsError
from fraudapp.shadow import ShadowReport


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _dump(document: object) -> None:
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


@click.group(name="rules")
def command() -> None:
    """Rule sets (CONTRACT §4c): thresholds, windows and on/off per rule, per campaign and publisher."""


def _load(file: Path, settings: Settings) -> tuple[Any, RuleSet]:
    """The document and its rule set; exits naming every error by its field path."""
    try:
        document = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{file}: not JSON: {exc}") from None
    try:
        return document, parse(document, settings)
    except RuleSetError as exc:
        for path, message in exc.errors:
            click.echo(f"{file}: {path or '(document)'}: {message}", err=True)
        sys.exit(1)


@command.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", help="also print what a click of this campaign would be judged under")
@click.option("--publisher", help="... and of this publisher")
def check(file: Path, campaign: str | None, publisher: str | None) -> None:
    """Check a rule-set document (JSON); every error is named by its field path."""
    _, ruleset = _load(file, _settings())
    windows = ", ".join(f"{name} {value:g} s" for name, value in sorted(ruleset.largest_windows().items()))
    click.echo(f"{file}: valid: rule set {ruleset.name!r} version {ruleset.version}, {len(ruleset.campaign)} "
               f"campaign and {len(ruleset.publisher)} publisher overrides; state kept for {windows}")
    if campaign is not None or publisher is not None:
        judging = ruleset.for_click(campaign, publisher)
        _dump({"version": judging.version, "rules_on": sorted(judging.enabled),
               "settings": {name: getattr(judging.settings, name) for name in SETTING_OF.values()}})


BROKER = click.option("--broker", help="Kafka URL (default FRAUDAPP_BROKER)")
WAIT = click.option("--wait/--no-wait", default=True, show_default=True,
                    help="wait until the deployment has applied it (60 s at most)")


def _deployment(broker: str | None) -> Settings:
    try:
        return Settings.from_env(**({"broker": broker} if broker else {}))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def actor() -> bytes:
    """Who runs this command, for the audit."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}".encode()


@dataclass
class Deployed:
    """What a deployment holds: its rule-set table's latest documents, and its shadow reports."""

    documents: dict[str, Any] = field(default_factory=dict)
    report: ShadowReport = field(default_factory=ShadowReport)

    @property
    def live(self) -> Any:
        return self.documents.get(DEFAULT_NAME)

    @property
    def shadow(self) -> Any:
        return self.documents.get(SHADOW_NAME)

    @property
    def live_version(self) -> int:
        return int(self.live["version"]) if self.live else 0

    def history(self) -> dict[int, Any]:
        """The live versions kept (`default@<version>`) by version."""
        prefix = DEFAULT_NAME + "@"
        return {int(key[len(prefix):]): doc for key, doc in self.documents.items()
                if key.startswith(prefix) and key[len(prefix):].isdigit()}


def changelog_of(settings: Settings) -> str:
    return f"{settings.app_id}-rule-sets-changelog"


async def read_deployed(settings: Settings, with_report: bool = True) -> Deployed:
    """Read the rule-set changelog (and the rules-shadow topic) to their ends, read committed."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    kafka = settings.kafka_client_options()
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest")
    try:
        with explain_connection_errors(kafka):
            await consumer.start()
    except KafkaUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    deployed = Deployed()
    try:
        topics = await consumer.topics()
        tps = [TopicPartition(t, 0) for t in (changelog_of(settings), settings.topic_rules_shadow)
               if t in topics and (with_report or t != settings.topic_rules_shadow)]
        if not tps:
            return deployed
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + 60.0

        async def behind() -> bool:
            positions = [await consumer.position(tp) for tp in tps]
            if time.monotonic() > deadline:
                raise click.ClickException(f"could not read {', '.join(t.topic for t in tps)} to their end in 60 s")
            return any(position < ends[tp] for position, tp in zip(positions, tps, strict=True))

        while await behind():
            for tp, records in (await consumer.getmany(*tps, timeout_ms=500)).items():
                for record in records:
                    if tp.topic == settings.topic_rules_shadow:
                        if record.value:
                            deployed.report.add(orjson.loads(record.value))
                        continue
                    key = orjson.loads(record.key)
                    if record.value is None:
                        deployed.documents.pop(key, None)
                    else:
                        deployed.documents[key] = orjson.loads(record.value)
        return deployed
    finally:
        await consumer.stop()


async def wait_applied(settings: Settings, name: str, version: int | None, timeout: float = 60.0) -> bool:
    """Until the deployment's rule-set table holds `version` under `name` (None: no `name`):
    the worker that applied it already judges under it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = (await read_deployed(settings, with_report=False)).documents.get(name)
        if (document.get("version") if document else None) == version:
            return True
        await asyncio.sleep(0.2)
    return False


def _publish(settings: Settings, name: str, document: Any, action: str, wait: bool) -> None:
    """Publish a document (None: delete) under `name`; wait until the deployment applied it."""
    if document is not None:
        document["name"] = name
    value = orjson.dumps(document) if document is not None else None
    headers = [("fraudapp-actor", actor()), ("fraudapp-action", action.encode())]
    asyncio.run(publish(settings, settings.topic_rules, [(name.encode(), value)], headers))  # type: ignore[list-item]
    version = document["version"] if document is not None else None
    click.echo(f"published {action}: rule set {name!r} version {version} to {settings.topic_rules}")
    if wait:
        if not asyncio.run(wait_applied(settings, name, version)):
            raise click.ClickException(
                f"the deployment did not apply it within 60 s: a version at or below the live one is refused "
                f"(see the audit topic {settings.topic_rules_audit} and the dead-letter topic {settings.topic_dlq})")
        click.echo("applied")


@command.command()
@BROKER
@click.option("--env", "from_env", is_flag=True, help="print the environment's settings as version 0 instead")
@click.option("--history", is_flag=True, help="also print every live version kept")
def show(broker: str | None, from_env: bool, history: bool) -> None:
    """Print the live rule set, and the candidate in shadow with what it would change."""
    settings = _deployment(broker)
    if from_env:
        _dump(version_zero(settings).document())
        return
    deployed = asyncio.run(read_deployed(settings))
    live = deployed.live or version_zero(settings).document()
    shadow = deployed.shadow
    body: dict[str, Any] = {"live": live, "shadow": None}
    if shadow is not None:
        body["shadow"] = {"rule_set": shadow, "report": deployed.report.of(shadow["version"])}
    if history:
        body["history"] = {str(v): doc for v, doc in sorted(deployed.history().items())}
    _dump(body)


@command.command(name="set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@BROKER
@WAIT
def set_(file: Path, broker: str | None, wait: bool) -> None:
    """Check a rule-set document and publish it as the live set: every worker applies it
    within a second, if its version is above the one in force (else it is refused)."""
    publish_file(file, _deployment(broker), wait=wait)


def publish_file(file: Path, settings: Settings, wait: bool = True, name: str = DEFAULT_NAME,
                 action: str = "set") -> RuleSet:  # fmt: skip
    """Check the rule set in `file` and publish it under `name` (also `replay --rules`)."""
    document, ruleset = _load(file, settings)
    _publish(settings, name, document, action, wait)
    return ruleset


@command.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--stop", is_flag=True, help="stop the shadow run instead")
@BROKER
@WAIT
def shadow(file: Path | None, stop: bool, broker: str | None, wait: bool) -> None:
    """Run a candidate rule set in shadow: judged beside the live set on every click, no
    verdict changed; `rules show` and GET /rules report what it would flip. Its version
    must be above the live one (`promote` makes it the next live version)."""
    settings = _deployment(broker)
    if stop == (file is not None):
        raise click.UsageError("give a candidate FILE, or --stop")
    if stop:
        _publish(settings, SHADOW_NAME, None, "stop-shadow", wait)
        return
    assert file is not None
    publish_file(file, settings, wait, SHADOW_NAME, "shadow")


@command.command()
@BROKER
@WAIT
def promote(broker: str | None, wait: bool) -> None:
    """Make the candidate in shadow the live set (the shadow run ends)."""
    settings = _deployment(broker)
    deployed = asyncio.run(read_deployed(settings, with_report=False))
    if deployed.shadow is None:
        raise click.ClickException("no rule set in shadow: start one with 'fraudapp rules shadow FILE'")
    candidate = dict(deployed.shadow)
    if candidate["version"] <= deployed.live_version:
        raise click.ClickException(f"the candidate's version {candidate['version']} is not above the live version "
                                   f"{deployed.live_version}: publish it again with a higher version")
    _publish(settings, DEFAULT_NAME, candidate, "promote", wait)


@command.command()
@click.option("--to", "target", type=int, help="the kept version to go back to (default: the one before the live one)")
@BROKER
@WAIT
def rollback(target: int | None, broker: str | None, wait: bool) -> None:
    """Go back to an earlier live version: its content is published as a new version (versions
    only go up, so every verdict still names what it was judged under)."""
    settings = _deployment(broker)
    deployed = asyncio.run(read_deployed(settings, with_report=False))
    live = deployed.live_version
    kept = {v: doc for v, doc in deployed.history().items() if v < live}
    if target is None:
        target = max(kept, default=0)
    if target != 0 and target not in kept:
        raise click.ClickException(f"version {target} is not kept (kept: {sorted(kept) or 'none'}; 0 is the "
                                   "environment's settings)")
    if live == 0:
        raise click.ClickException("the live set is the environment's (version 0): nothing to roll back")
    document = dict(kept[target]) if target else version_zero(settings).document()
    document["version"] = live + 1
    document["description"] = f"rollback of version {live} to version {target}"
    _publish(settings, DEFAULT_NAME, document, "rollback", wait)
