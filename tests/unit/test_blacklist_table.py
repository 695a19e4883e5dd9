"""The blacklist global table writes its changelog without asking the producer's metadata."""

from __future__ import annotations

from fraudapp import tables


def test_every_entry_goes_to_the_single_changelog_partition() -> None:
    # A partition chosen here, not by the producer's partitioner: a producer that has not
    # seen the changelog topic's metadata yet would fail the write (and lose the update).
    assert tables.blacklist.partitions == 1
    for key in ("ip:203.0.113.9", "cidr:10.0.0.0/8", "device:d1", "wallet:w"):
        assert tables.blacklist.partition_for_key(key) == 0
