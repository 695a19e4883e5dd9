"""When may Faust's recovery under exactly_once take a changelog partition's position as
"read to the end" (`eos.changelog_read_to_end`)? Only after CHANGELOG_QUIET seconds with
nothing queued and nothing for the partition, counted from the start of *this* recovery:
upstream counted idle polls from before it began, and a long-idle survivor ended its
takeover's recovery while the records it had fetched were still queued (slow paused-worker
test, 3 Dec: 32 wrong labels)."""

from __future__ import annotations

import pytest

from fraudapp.runtime.exactly_once import CHANGELOG_QUIET, changelog_read_to_end

Q = CHANGELOG_QUIET


@pytest.mark.parametrize(
    "case,queue_empty,started,last_record,now,trusted",
    [
        ("idle for an hour, takeover recovery just began", True, 3600.0, None, 3600.5, False),
        ("quiet since this recovery began", True, 100.0, None, 100.0 + Q, True),
        ("a record came 1 s ago", True, 100.0, 100.0 + Q, 101.0 + Q, False),
        ("last record long enough ago", True, 100.0, 105.0, 105.0 + Q, True),
        ("records still queued", False, 100.0, None, 1000.0, False),
        ("no recovery has started", True, None, None, 1000.0, False),
    ],
)
def test_changelog_read_to_end(
    case: str, queue_empty: bool, started: float | None, last_record: float | None, now: float, trusted: bool
) -> None:
    assert changelog_read_to_end(queue_empty, started, last_record, now) is trusted, case
