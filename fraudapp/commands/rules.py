"""`fraudapp rules show|check`: the rule set in force and a candidate's checks (issue 20;
`set`, `shadow`, `promote` and `rollback` come with the `rules` topic)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from fraudapp.ruleset import SETTING_OF, RuleSetError, parse, version_zero
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


@command.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", help="also print what a click of this campaign would be judged under")
@click.option("--publisher", help="... and of this publisher")
def check(file: Path, campaign: str | None, publisher: str | None) -> None:
    """Check a rule-set document (JSON); every error is named by its field path."""
    try:
        document = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{file}: not JSON: {exc}") from None
    try:
        ruleset = parse(document, _settings())
    except RuleSetError as exc:
        for path, message in exc.errors:
            click.echo(f"{file}: {path or '(document)'}: {message}", err=True)
        sys.exit(1)
    windows = ", ".join(f"{name} {value:g} s" for name, value in sorted(ruleset.largest_windows().items()))
    click.echo(f"{file}: valid: rule set {ruleset.name!r} version {ruleset.version}, {len(ruleset.campaign)} "
               f"campaign and {len(ruleset.publisher)} publisher overrides; state kept for {windows}")
    if campaign is not None or publisher is not None:
        judging = ruleset.for_click(campaign, publisher)
        _dump({"version": judging.version, "rules_on": sorted(judging.enabled),
               "settings": {name: getattr(judging.settings, name) for name in SETTING_OF.values()}})
