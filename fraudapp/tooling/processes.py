"""Stopping the child processes fraudapp starts (workers in the demo, benchmarks, tests)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group of `proc` (started with start_new_session=True), wait up
    to `timeout`, then SIGKILL it: a worker stuck in shutdown must not outlive its caller."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass
