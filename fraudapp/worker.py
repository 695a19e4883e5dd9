"""What `faust -A fraudapp worker` runs: the app with its stages and views registered.

`fraudapp.app` builds the app and declares its topics; the modules imported here declare
the tables, agents, timers and web views on it. They import the app, never the reverse,
so nothing is built in a circle."""

from fraudapp import agents, alert_stage, transaction_stage, views  # noqa: F401 - registration on the app
from fraudapp.app import app

__all__ = ["app"]
