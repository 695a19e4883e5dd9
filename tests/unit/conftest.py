"""Unit tests never touch a broker or disk state: Faust tables on the memory store.

The app reads its settings once, at import: import it here with the memory store, then
put the environment back, so that workers the integration tests start in the same
pytest run (they inherit os.environ) keep RocksDB.
"""

import os

_previous = os.environ.get("FRAUDAPP_STORE")
os.environ["FRAUDAPP_STORE"] = "memory://"
try:
    import fraudapp.app  # noqa: F401
finally:
    if _previous is None:
        del os.environ["FRAUDAPP_STORE"]
    else:
        os.environ["FRAUDAPP_STORE"] = _previous
