"""`fraudapp rules show --env|check|shadow|rollback` without a broker: the environment as
version 0; a candidate checked by field path; usage errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from fraudapp.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(main, ["rules", *args], env=env or {})


def test_show_env_prints_the_environment_as_version_zero() -> None:
    result = run("show", "--env", env={"FRAUDAPP_CLICK_SPAM_THRESHOLD": "7"})
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert document["version"] == 0
    assert document["rules"]["click_spam"]["threshold"] == 7


@pytest.mark.parametrize(
    ("document", "exit_code", "expected"),
    [
        ({"version": 2, "rules": {"click_spam": {"threshold": 3}}}, 0, "valid: rule set 'default' version 2"),
        ({"version": 2, "rules": {"click_spam": {"threshold": 0}}}, 1, "rules.click_spam.threshold: 0 is less than"),
        ({"version": 2, "score": {"clean_above": 10}}, 1, "score: suspicious_above 40 is above clean_above 10"),
    ],
)
def test_check_names_every_error_by_its_path(tmp_path: Path, document: object, exit_code: int, expected: str) -> None:
    file = tmp_path / "rules.json"
    file.write_bytes(orjson.dumps(document))
    result = run("check", str(file))
    assert result.exit_code == exit_code
    assert expected in result.output


def test_check_prints_what_a_campaigns_click_is_judged_under(tmp_path: Path) -> None:
    file = tmp_path / "rules.json"
    file.write_bytes(orjson.dumps({"version": 3, "overrides": {"campaign": {"c9": {
        "rules": {"click_spam": {"window_seconds": 5, "enabled": False}}}}}}))
    result = run("check", str(file), "--campaign", "c9")
    assert result.exit_code == 0, result.output
    judged = orjson.loads(result.stdout[result.stdout.index("{"):])
    assert judged["version"] == 3
    assert judged["settings"]["click_spam_window_seconds"] == 5
    assert "click_spam" not in judged["rules_on"]
    assert "state kept for click_spam_window_seconds 10 s" in result.stdout  # the environment's horizon


def test_check_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    file = tmp_path / "rules.json"
    file.write_text("{nope")
    result = run("check", str(file))
    assert result.exit_code == 1 and "not JSON" in result.output


def test_shadow_takes_a_file_or_stop_but_not_both(tmp_path: Path) -> None:
    file = tmp_path / "rules.json"
    file.write_bytes(orjson.dumps({"version": 2}))
    for args in ((), (str(file), "--stop")):
        result = run("shadow", *args)
        assert result.exit_code == 2
        assert "give a candidate FILE, or --stop" in result.output


def test_a_cli_change_names_its_actor() -> None:
    from fraudapp.commands.rules import actor

    assert actor().startswith(b"cli:") and b"@" in actor()
