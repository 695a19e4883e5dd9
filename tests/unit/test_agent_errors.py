"""An exception escaping an agent stops the worker (FraudApp._on_agent_error)."""

from __future__ import annotations

from fraudapp.app import app


async def test_an_agent_error_crashes_the_app_instead_of_committing(monkeypatch) -> None:
    crashed: list[BaseException] = []
    committed: list[object] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    monkeypatch.setattr(app, "crash", crash)
    monkeypatch.setattr(app, "_consumer", type("C", (), {"on_task_error": lambda self, e: committed.append(e)})())
    agent = next(iter(app.agents.values()))
    error = RuntimeError("boom")
    await agent._on_error(agent, error)  # what Faust calls when an actor raises
    assert crashed == [error]
    assert committed == []  # upstream commits here and lets the agent restart
