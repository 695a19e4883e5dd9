"""The layer contracts of setup.cfg ([importlinter]): the runtime never imports the app or
the tooling, rules stay pure, state never reaches up, the worker never imports the tooling,
and the simulators' truths never import the detector's rules, state or validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 kept, 0 broken" in done.stdout, done.stdout[-1000:]
