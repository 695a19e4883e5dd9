"""A worker that must not go on (fenced under exactly_once) leaves the group at once, on
its consumer's own loop, commits nothing more, and its process ends within a bound even
if the graceful stop hangs (the CI hang of 3 Dec: a fenced worker stuck in "Wait for
streams..." while its consumer held partitions)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from fraudapp.runtime import lastresort
from fraudapp.runtime.app import FraudApp
from fraudapp.runtime.consumer import ConsumerThread
from fraudapp.runtime.exactly_once import EOSConsumer


@pytest.fixture(autouse=True)
def no_timer_left() -> Iterator[None]:
    lastresort.disarm()
    yield
    lastresort.disarm()


def test_the_process_ends_with_its_exit_code_after_the_grace() -> None:
    ended = threading.Event()
    codes: list[int] = []

    def exit(code: int) -> None:
        codes.append(code)
        ended.set()

    timer = lastresort.end_process_after(0.05, "fenced", exit=exit)
    assert ended.wait(5)
    timer.join(5)
    assert codes == [lastresort.EXIT_CODE]


def test_armed_once_per_process_and_a_cancelled_timer_never_fires() -> None:
    calls: list[int] = []
    first = lastresort.end_process_after(30, "fenced", exit=calls.append)
    assert lastresort.end_process_after(0.01, "again", exit=calls.append) is first
    assert first.daemon  # never keeps a finished process alive itself
    lastresort.disarm()
    first.join(5)
    assert not first.is_alive() and calls == []


class FakeApp:
    def __init__(self) -> None:
        self.crashed: list[BaseException] = []

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


def failing_consumer() -> tuple[Any, list[str]]:
    events: list[str] = []
    consumer = SimpleNamespace(_failed=False, app=FakeApp(), close=lambda: events.append("close"))
    return consumer, events


def test_a_fenced_consumer_leaves_the_group_and_crashes_the_app_once() -> None:
    consumer, events = failing_consumer()
    fenced = ProducerFenced()

    async def fail_twice() -> None:
        await EOSConsumer.fail(consumer, fenced, "fenced")
        await EOSConsumer.fail(consumer, RuntimeError("commit failed"), "the commit before the rebalance failed")

    asyncio.run(fail_twice())
    assert consumer._failed
    assert events == ["close"]
    assert consumer.app.crashed == [fenced]


def test_a_crash_of_the_app_arms_the_last_resort_exit() -> None:
    app = FraudApp("t-lastresort", autodiscover=False)
    app._crash(ProducerFenced())
    assert app.crashed
    assert lastresort._timer is not None and lastresort._timer.is_alive()


def test_a_failed_consumer_commits_nothing_and_does_not_wait_for_streams() -> None:
    consumer, _ = failing_consumer()
    consumer._failed = True
    # neither may touch the gate, the transactions or the unacked messages (the fake has none)
    assert asyncio.run(EOSConsumer.force_commit(consumer)) is False
    assert asyncio.run(EOSConsumer.wait_empty(consumer)) is None


def test_leaving_the_group_runs_on_the_consumer_threads_own_loop() -> None:
    thread_loop = asyncio.new_event_loop()
    runner = threading.Thread(target=thread_loop.run_forever, daemon=True)
    runner.start()
    ran_on: list[str] = []
    done = threading.Event()

    async def coordinator_close() -> None:
        ran_on.append("coordinator" if asyncio.get_running_loop() is thread_loop else "wrong loop")

    async def client_close() -> None:
        ran_on.append("client" if asyncio.get_running_loop() is thread_loop else "wrong loop")
        done.set()

    aiokafka_consumer = SimpleNamespace(
        _closed=False, _coordinator=SimpleNamespace(close=coordinator_close), _client=SimpleNamespace(close=client_close)
    )
    thread = SimpleNamespace(_consumer=aiokafka_consumer, thread_loop=thread_loop)
    try:
        ConsumerThread.close(thread)
        assert done.wait(5)
        assert ran_on == ["coordinator", "client"]
        assert aiokafka_consumer._closed  # aiokafka's stop() later is a no-op
    finally:
        thread_loop.call_soon_threadsafe(thread_loop.stop)
        runner.join(5)
        thread_loop.close()


def test_closing_after_the_consumer_thread_ended_does_nothing() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    consumer = SimpleNamespace(_closed=False)
    ConsumerThread.close(SimpleNamespace(_consumer=consumer, thread_loop=loop))
    assert consumer._closed is False
