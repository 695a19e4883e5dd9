"""The live dashboard in a real headless Chromium: it loads offline (vendored Chart.js),
connects to its event stream, and its numbers and charts move when clicks flow; a candidate
rule set in shadow shows its would-flip counts.

Needs Debian's `chromium` (installed here with apt-get when missing and possible) and the
`playwright` package, driving that binary - never `playwright install`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Cluster, Worker, create_topics
from tests.integration.test_http import call, click

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "ingest-" + uuid.uuid4().hex
ADMIN = "admin-" + uuid.uuid4().hex
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def ensure_chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("no /usr/bin/chromium and no apt-get as root to install Debian's chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        result = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0 and not Path(CHROMIUM).exists():
            pytest.skip(f"could not install chromium: {' '.join(cmd)}: {result.stderr[-300:]}")
    return CHROMIUM


@pytest.fixture
def dashboard_worker(kafka_broker: Any, tmp_path: Path) -> Iterator[Worker]:
    cluster = Cluster(
        broker_url=kafka_broker.url, bootstrap=kafka_broker.bootstrap,
        app_id="e" + uuid.uuid4().hex[:10], tmp=tmp_path, partitions=2,
    )
    asyncio.run(create_topics(cluster))
    try:
        yield cluster.start_worker("dash", FRAUDAPP_INGEST_TOKEN=TOKEN, FRAUDAPP_ADMIN_TOKEN=ADMIN,
                                   FRAUDAPP_LOG_LEVEL="WARNING")
    finally:
        cluster.stop_all()


def test_dashboard_goes_live_and_moves_with_clicks(dashboard_worker: Worker) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
    executable = ensure_chromium()
    worker = dashboard_worker
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # Offline by construction: any request leaving the worker fails the test.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(worker.url)
                       else (errors.append("external request " + route.request.url), route.abort()))
            page.goto(worker.url + "/dashboard")
            page.wait_for_function("typeof Chart === 'function'", timeout=10_000)
            # Connected over SSE and the worker's tap positioned on the topics.
            page.wait_for_function("document.getElementById('status').textContent === 'live'", timeout=30_000)
            assert page.text_content("#total") == "0"
            # A candidate in shadow under which the spammer is no longer spam.
            status, answer = call(worker, "POST", "/rules/shadow",
                                  {"version": 1, "rules": {"click_spam": {"threshold": 1000}}}, token=ADMIN)
            assert status == 202, answer
            page.wait_for_function("document.getElementById('shadow-summary').textContent.includes('candidate version 1')",
                                   timeout=30_000)

            run = uuid.uuid4().hex[:6]
            deadline = time.monotonic() + 6
            sent = 0
            while time.monotonic() < deadline:  # ~6 s of traffic: humans, a spammer, a bot
                batch = [click(f"{run}-h{sent + i}", f"human-{run}-{sent + i}", campaign_id=f"camp-{i % 3}")
                         for i in range(8)]
                batch += [click(f"{run}-s{sent + i}", f"spammer-{run}", campaign_id="camp-0") for i in range(3)]
                batch.append(click(f"{run}-b{sent}", f"bot-{run}", user_agent="Googlebot/2.1", publisher_id="pub-bad"))
                status, answer = call(worker, "POST", "/clicks", batch, token=TOKEN)
                assert status == 202, answer
                sent += len(batch)
                time.sleep(0.5)  # pacing of the traffic, not an assertion
            page.wait_for_function(f"Number(document.getElementById('total').textContent) >= {sent}", timeout=60_000)
            # The charts were fed: clicks per second, fraud in the mix, fraud types, campaigns.
            drawn = page.evaluate("""() => ({
                rate: Chart.getChart('chart-rate').data.datasets[0].data.some(x => x > 0),
                fraud: Chart.getChart('chart-mix').data.datasets[2].data.some(x => x > 0),
                types: Chart.getChart('chart-types').data.labels,
                campaigns: Chart.getChart('chart-campaigns').data.labels,
            })""")
            assert drawn["rate"] and drawn["fraud"]
            assert {"click_spam", "bot_user_agent"} <= set(drawn["types"])
            assert "camp-0" in drawn["campaigns"]
            assert f"spammer-{run}" in page.text_content("#top-devices")
            assert "pub-bad" in page.text_content("#top-publishers")
            assert float(page.text_content("#rate")) > 0
            # The rule-set card: the would-flip counts of the candidate, with examples.
            page.wait_for_function("document.getElementById('shadow-summary').textContent.includes('would flip')",
                                   timeout=30_000)
            assert "click_spam" in page.text_content("#shadow-types")
            assert "→ clean" in page.text_content("#shadow-examples") or "→ suspicious" in page.text_content(
                "#shadow-examples")
            assert "live version 0" in page.text_content("#rules-live")
            page.wait_for_timeout(1200)  # one more SSE tick so the screenshot shows a settled page
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
