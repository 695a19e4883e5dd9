"""Shared test plumbing: path-based markers and the session's real Kafka broker."""

from __future__ import annotations

import atexit
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudapp.tooling import localkafka

_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `-m unit` / `-m integration` select by directory; an explicit marker on a test wins
    # (e.g. broker-free error-message tests that live next to the integration tests).
    for item in items:
        if item.get_closest_marker("unit") or item.get_closest_marker("integration"):
            continue
        parts = Path(item.path).resolve().relative_to(_TESTS.resolve()).parts
        if parts and parts[0] in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def kafka_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[localkafka.Cluster]:
    """A real single-node KRaft broker on free ports, started on first request only.

    Yields the Cluster: ``.bootstrap`` ("127.0.0.1:<port>") and ``.url`` ("kafka://...").
    """
    # Free ports rather than 9092: a developer's own broker or a parallel run may hold it.
    port = localkafka.free_port()
    controller_port = localkafka.free_port()
    while controller_port == port:  # two port-0 binds can hand out the same port
        controller_port = localkafka.free_port()
    data_dir = tmp_path_factory.mktemp("kafka")
    cluster = localkafka.start(port, data_dir, controller_port=controller_port)

    def _last_resort() -> None:
        # The broker runs in its own session, so it would outlive a test run that dies
        # without reaching the finally below; atexit still runs on most such exits.
        for i in range(len(cluster.nodes)):
            cluster.kill_node(i, signal.SIGKILL)

    atexit.register(_last_resort)
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            atexit.unregister(_last_resort)
