"""`fraudapp bench` from an install without the repository's bench/ folder: one clear line,
not a failure per peer after a broker was started."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fraudapp.commands import bench


@pytest.mark.parametrize(
    "args,refused",
    [
        (["--quick"], True),  # the default peers need bench/
        (["--quick", "--systems", "fraudapp", "--latency-systems", "fraudapp"], False),
    ],
)
def test_bench_without_a_checkout_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], refused: bool
) -> None:
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path / "no-bench")
    started: list[bool] = []

    def work_dir(**_: object) -> str:  # past the check the command starts a broker: stop there
        started.append(True)
        raise SystemExit(7)

    monkeypatch.setattr(bench.tempfile, "mkdtemp", work_dir)
    result = CliRunner().invoke(bench.command, args)
    if refused:
        assert result.exit_code == 1, result.output
        assert "bench/ folder" in result.output and "./run bench" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not started
    else:
        assert started
