"""A static member that rejoins on another URL keeps working (fraudapp.runtime.assignor)."""

from __future__ import annotations

import logging

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from faust.assignor.client_assignment import ClientAssignment, ClientMetadata

from fraudapp.app import app
from fraudapp.runtime.assignor import StaticMemberAssignor


def cached_assignment(url: str) -> ConsumerProtocolMemberAssignment:
    metadata = ClientMetadata(
        assignment=ClientAssignment(actives={}, standbys={}),
        url=url,
        changelog_distribution={},
        topic_groups={},
    )
    return ConsumerProtocolMemberAssignment(0, [], StaticMemberAssignor._compress(metadata.dumps()))


@pytest.mark.parametrize("same_url", [True, False], ids=["same-url", "moved"])
def test_rejoined_static_member_accepts_its_cached_assignment(same_url: bool, caplog: pytest.LogCaptureFixture) -> None:
    assignor = app.assignor
    assert isinstance(assignor, StaticMemberAssignor)
    current = str(assignor._url)
    url = current if same_url else "http://old-host:6099"
    with caplog.at_level(logging.WARNING, logger="fraudapp.runtime.assignor"):
        assignor.on_assignment(cached_assignment(url))  # upstream: AssertionError when moved
    assert assignor.assigned_actives() == set()
    assert ("old-host:6099" in caplog.text) is (not same_url)
