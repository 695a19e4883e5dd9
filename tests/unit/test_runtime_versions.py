"""The worker refuses faust-streaming / aiokafka releases its runtime fixes were not checked
against, in one line."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError

import pytest

from fraudapp.runtime import versions as upstream


def test_the_installed_releases_are_the_checked_ones() -> None:
    assert upstream.unchecked() == []


@pytest.mark.parametrize(
    "installed,wrong",
    [
        ({"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}, []),
        ({"faust-streaming": "0.15.4", "aiokafka": "0.14.0"}, ["faust-streaming 0.15.4"]),
        ({"faust-streaming": "0.15.3"}, ["aiokafka (not installed)"]),
    ],
)
def test_unchecked(installed: dict[str, str], wrong: list[str]) -> None:
    def version(name: str) -> str:
        if name not in installed:
            raise PackageNotFoundError(name)
        return installed[name]

    assert upstream.unchecked(version) == wrong


def test_a_worker_on_another_release_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "unchecked", lambda: ["aiokafka 0.15.0"])
    with pytest.raises(SystemExit) as stop:
        upstream.require_checked_releases()
    message = str(stop.value)
    assert "aiokafka 0.15.0" in message and "aiokafka 0.14.0" in message and "\n" not in message
