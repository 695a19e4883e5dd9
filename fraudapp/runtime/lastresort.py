"""A crashed worker ends its process within a bound, however its graceful stop goes.

Why: a crashed worker (a fenced one, say: another member owns its partitions now) stops
through Faust's graceful path, which waits for streams, flushes producers and joins
non-daemon threads. With a fenced transactional producer any of those can wait for ever,
and while the process lives its consumer may rejoin the group and hold partitions it never
processes: every click on them waits (the CI hang of 3 Dec). Ending the process is safe:
nothing a fenced worker does can commit, and a worker that did not stop cleanly rebuilds
its tables from the changelogs on the next start (`FraudApp.worker_init`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the worker as a new member
GRACE = 30.0  # seconds; a stop after a crash takes about 1 s (paused-worker test)

_timer: threading.Timer | None = None


def end_process_after(
    grace: float, reason: str, exit: Callable[[int], object] = os._exit
) -> threading.Timer:
    """Arm (once per process) a daemon timer that ends the process with `EXIT_CODE`
    `grace` seconds from now unless it has exited by then."""
    global _timer
    if _timer is not None:
        return _timer

    def end() -> None:
        log.critical("%s; the stop has not finished after %.0f s: ending the process", reason, grace)
        for handler in logging.getLogger().handlers:
            handler.flush()
        exit(EXIT_CODE)

    _timer = threading.Timer(grace, end)
    _timer.daemon = True
    _timer.name = "fraudapp-last-resort-exit"
    _timer.start()
    return _timer


def disarm() -> None:
    """Cancel the timer (tests)."""
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None
