"""Unit tests never touch a broker or disk state: Faust tables on the memory store.

The app reads its settings once, at import: import it here with the memory store, then
put the environment back, so that workers the integration tests start in the same
pytest run (they inherit os.environ) keep RocksDB.
"""

import os
from collections.abc import Iterator

import pytest

_previous = os.environ.get("FRAUDAPP_STORE")
os.environ["FRAUDAPP_STORE"] = "memory://"
try:
    import fraudapp.worker  # noqa: F401 - the app with its stages and views
finally:
    if _previous is None:
        del os.environ["FRAUDAPP_STORE"]
    else:
        os.environ["FRAUDAPP_STORE"] = _previous


@pytest.fixture(autouse=True)
def no_last_resort_exit_left_armed() -> Iterator[None]:
    """A test that crashes an app in this process must not end pytest 30 s later."""
    yield
    from fraudapp.runtime import lastresort

    armed = lastresort._timer is not None
    lastresort.disarm()
    assert not armed, "a test left the last-resort exit armed (it crashed an app without disarming)"
