"""fraudapp: real-time ad click-fraud detection on Apache Kafka with Faust.

`faust -A fraudapp worker` finds the Faust app through the module attribute
``app``; it is built lazily so that the pure modules (rules, state, validation)
import without configuring Faust.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from fraudapp.worker import app

        # Importing the submodule fraudapp.app bound the *module* to this name; the
        # Faust CLI (`-A fraudapp`) wants the App instance there, with its stages and views.
        globals()["app"] = app
        return app
    raise AttributeError(name)
