"""`fraudapp rules show|check|set`: the environment's rule set (version 0), a candidate's
checks, and publishing one to the `rules` topic, which every worker applies (CONTRACT
§4c). The set in force on a running worker: `GET /rules`. (`shadow`, `promote` and
`rollback` are not built yet: issue 20.)"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from fraudapp.commands.publishing import publish
from fraudapp.ruleset import DEFAULT_NAME, SETTING_OF, RuleSet, RuleSetError, parse, version_zero
from fraudapp.settings import Settings, SettingsError


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


@command.command()
def show() -> None:
    """Print the rule set in force as a document: today the environment's settings (version 0)."""
    _dump(version_zero(_settings()).document())
    click.echo("(version 0: the FRAUDAPP_* settings; workers do not read the rules topic yet)", err=True)


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


@command.command(name="set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--broker", help="Kafka URL (default FRAUDAPP_BROKER)")
def set_(file: Path, broker: str | None) -> None:
    """Check a rule-set document and publish it to the rules topic: every worker applies it
    within a second, if its version is above the one in force (else it is dead-lettered)."""
    publish_file(file, Settings.from_env(**({"broker": broker} if broker else {})))


def publish_file(file: Path, settings: Settings) -> RuleSet:
    """Check the rule set in `file` and publish it to the rules topic (also `replay --rules`)."""
    document, ruleset = _load(file, settings)
    if ruleset.name != DEFAULT_NAME:
        raise click.ClickException(f"only the rule set named {DEFAULT_NAME!r} is applied; this one is {ruleset.name!r}")
    document.setdefault("name", ruleset.name)
    asyncio.run(publish(settings, settings.topic_rules, [(ruleset.name.encode(), orjson.dumps(document))]))
    click.echo(f"published rule set {ruleset.name!r} version {ruleset.version} to {settings.topic_rules}")
    return ruleset
