"""`fraudapp` command line: one click group, one module per command under commands/."""

from __future__ import annotations

import importlib

import click

# name -> module under fraudapp.commands exposing a click command called `command`
COMMANDS = {
    "kafka": "kafka",
    "blacklist": "blacklist",
    "simulate": "simulate",
    "evaluate": "evaluate",
    "replay": "replay",
    "demo": "demo",
    "bench": "bench",
    "rules": "rules",
}


class LazyGroup(click.Group):
    """Imports a command's module only when it runs: `fraudapp kafka` must not pay for Faust."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"fraudapp.commands.{module}").command


@click.group(cls=LazyGroup)
@click.version_option(package_name="fraudapp")
def main() -> None:
    """fraudapp: real-time ad click-fraud detection on Apache Kafka."""
