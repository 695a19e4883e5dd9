"""Unit tests never touch a broker or disk state: Faust tables on the memory store."""

import os

os.environ.setdefault("FRAUDAPP_STORE", "memory://")
