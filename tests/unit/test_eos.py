"""fraudapp.eos pieces that need no broker."""

from __future__ import annotations

import asyncio

import pytest
from faust.tables import recovery

from fraudapp import eos


async def test_recovery_idle_poll_is_short_and_other_waits_unchanged() -> None:
    eos.shorten_recovery_idle_poll()
    eos.shorten_recovery_idle_poll()  # idempotent
    assert isinstance(recovery.asyncio, eos._RecoveryAsyncio)
    assert recovery.asyncio.TimeoutError is asyncio.TimeoutError
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        await recovery.asyncio.wait_for(asyncio.Event().wait(), timeout=5.0)  # the reader's idle poll
    assert loop.time() - started < 2.0
    assert await recovery.asyncio.wait_for(asyncio.sleep(0, result=7), timeout=30.0) == 7
