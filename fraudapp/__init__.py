"""fraudapp: real-time ad click-fraud detection on Apache Kafka with Faust.

`faust -A fraudapp worker` finds the Faust app through the module attribute
``app``; it is built lazily so that the pure modules (rules, state, validation)
import without configuring Faust.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["app", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from fraudapp.app import app

        return app
    raise AttributeError(name)
