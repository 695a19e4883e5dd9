"""Static group membership (FRAUDAPP_GROUP_INSTANCE_ID): Faust's assignor made to accept it.

With a group instance id, a worker that restarts within the session timeout rejoins as the
same member, and the broker hands it its previous assignment without a rebalance (KIP-345),
including the Faust metadata the leader wrote for it then. faust-streaming 0.15.3 asserts
that this metadata names the worker's current URL; a worker that came back on another
host:port failed that assert inside the consumer's coordinator task and never processed
anything. Here the mismatch is a warning: the partitions are processed; only Faust's table
routing to this worker keeps the old URL until the next rebalance.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientMetadata

log = logging.getLogger(__name__)


class StaticMemberAssignor(PartitionAssignor):
    def on_assignment(self, assignment: Any) -> None:
        metadata = ClientMetadata.loads(self._decompress(assignment.user_data))
        current = str(self._url)
        if metadata.url == current:
            super().on_assignment(assignment)
            return
        log.warning(
            "rejoined with the assignment made for %s while this worker serves %s: keep a static "
            "member's web host and port stable across restarts (table routing uses the old URL "
            "until the next rebalance)",
            metadata.url,
            current,
        )
        metadata.url = current
        assignment.user_data = self._compress(metadata.dumps())
        super().on_assignment(assignment)
