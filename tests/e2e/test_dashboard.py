"""The live dashboard in a real headless Chromium: it loads offline (vendored Chart.js),
connects to its event stream, and its numbers and charts move when clicks flow; a candidate
rule set in shadow shows its would-flip counts; its Transactions section moves when transfers
flow (a velocity bot, a transfer to a blacklisted wallet) and the click numbers do not.

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from fraudapp.tooling.benchmark.kafkaio import produce
from tests.integration.conftest import Cluster, Worker, create_topics, wait_for
from tests.integration.test_http import call, click
from tests.integration.test_transactions import wallet

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


@pytest.fixture(scope="module")
def dashboard_cluster(kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One worker for the module's tests (a start costs ~10 s): their traffic is told apart by
    kind (clicks, transfers) and by run ids."""
    cluster = Cluster(
        broker_url=kafka_broker.url, bootstrap=kafka_broker.bootstrap,
        app_id="e" + uuid.uuid4().hex[:10], tmp=tmp_path_factory.mktemp("dashboard"), partitions=2,
    )
    asyncio.run(create_topics(cluster))
    try:
        cluster.start_worker("dash", FRAUDAPP_INGEST_TOKEN=TOKEN, FRAUDAPP_ADMIN_TOKEN=ADMIN,
                             FRAUDAPP_LOG_LEVEL="WARNING")
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def dashboard_worker(dashboard_cluster: Cluster) -> Worker:
    return dashboard_cluster.workers[0]


@contextmanager
def dashboard_page(worker: Worker) -> Iterator[Any]:
    """The dashboard in headless Chromium, connected over SSE with the worker's tap positioned
    on the topics; fails on a page error or any request leaving the worker."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
    executable = ensure_chromium()
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
            yield page
            assert not errors, errors
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    page.wait_for_timeout(1200)  # one more SSE tick so the screenshot shows a settled page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_dashboard_goes_live_and_moves_with_clicks(dashboard_worker: Worker) -> None:
    worker = dashboard_worker
    with dashboard_page(worker) as page:
        assert page.text_content("#total") == "0"
        transfers_before = page.text_content("#tx-total")
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
        # the spammer and the crawler are general IVT (lists and routine filters)
        givt, sivt = (int(x) for x in page.text_content("#ivt").split(" / "))
        assert givt > 0 and sivt >= 0
        # The rule-set card: the would-flip counts of the candidate, with examples.
        page.wait_for_function("document.getElementById('shadow-summary').textContent.includes('would flip')",
                               timeout=30_000)
        assert "click_spam" in page.text_content("#shadow-types")
        assert "→ clean" in page.text_content("#shadow-examples") or "→ suspicious" in page.text_content(
            "#shadow-examples")
        assert "live version 0" in page.text_content("#rules-live")
        assert page.text_content("#tx-total") == transfers_before  # clicks are not transfers
        screenshot(page, "dashboard.png")


def text_of(page: Any, selector: str) -> str:
    return page.text_content(selector) or ""


def test_transactions_section_moves_with_transfers(dashboard_cluster: Cluster) -> None:
    worker = dashboard_cluster.workers[0]
    run = uuid.uuid4().hex[:6]
    bot, victim, scam = wallet(f"{run}-bot"), wallet(f"{run}-victim"), wallet(f"{run}-scam")
    with dashboard_page(worker) as page:
        # The transactions' own tap positioned too: what is produced from now on is counted.
        page.wait_for_function("document.getElementById('tx-status').dataset.state === 'live'", timeout=30_000)
        assert text_of(page, "#tx-total") == "0"  # only this test sends transfers to this worker
        clicks_before = text_of(page, "#total")
        status, answer = call(worker, "POST", "/blacklist", {"kind": "wallet", "value": scam, "reason": "phishing"},
                              token=ADMIN)
        assert status == 202, answer
        wait_for(lambda: call(worker, "GET", f"/blacklist/{scam}?kind=wallet")[0] == 200, 30,
                 "the scam wallet in the worker's blacklist")

        start = (time.time() // 60) * 60 - 60  # the bot's transfers in one alert window
        transfers: list[dict[str, Any]] = []

        def send(sender: str, to: str, ts: float, amount: float) -> None:
            transfers.append({"tx_id": f"{run}-{len(transfers)}", "ts": ts, "from": sender, "to": to,
                              "amount": amount, "asset": "ETH"})

        for u in range(100):  # users: 3 transfers each, 10 s apart
            for i in range(3):
                send(wallet(f"{run}-user{u}"), wallet(f"{run}-shop{u % 5}"), start + u * 0.1 + 10 * i, 1.0 + u % 4)
        for i in range(10):  # a velocity bot: 10 transfers in 3 s, the 6th on is wallet_velocity
            send(bot, wallet(f"{run}-sink{i % 2}"), start + 30 + 0.3 * i, 0.5)
        send(victim, scam, start + 40, 2.0)  # a victim pays the blacklisted wallet: scam_wallet, alert at once
        records = [(tx["from"].encode(), orjson.dumps(tx)) for tx in transfers]
        # At full speed, from a thread of its own: playwright's sync API runs an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, produce(dashboard_cluster.bootstrap, dashboard_cluster.topic("transactions"),
                                             records)).result(timeout=60)

        expected = len(transfers)
        # Every verdict counted while the rate tile still covers them (it spans the last 5 s).
        page.wait_for_function(f"Number(document.getElementById('tx-total').textContent) >= {expected}"
                               " && Number(document.getElementById('tx-rate').textContent) > 0", timeout=60_000)
        page.wait_for_function(f"""(() => {{
            const feed = document.getElementById('tx-alert-feed').textContent;
            return feed.includes('{bot}') && feed.includes('{scam}');
        }})()""", timeout=30_000)
        assert int(text_of(page, "#tx-total")) == expected
        assert text_of(page, "#tx-fraud") == "6"  # the bot's last 5 and the victim's
        assert text_of(page, "#tx-alerts-count") == "2"
        drawn = page.evaluate("""() => ({
            rate: Chart.getChart('chart-tx-rate').data.datasets[0].data.some(x => x > 0),
            classes: Chart.getChart('chart-tx-mix').data.datasets.map(d => d.label),
            fraud: Chart.getChart('chart-tx-mix').data.datasets[1].data.some(x => x > 0),
            types: Object.fromEntries(Chart.getChart('chart-tx-types').data.labels.map(
                (t, i) => [t, Chart.getChart('chart-tx-types').data.datasets[0].data[i]])),
        })""")
        assert drawn["rate"] and drawn["fraud"] and drawn["classes"] == ["clean", "fraud"]
        assert drawn["types"] == {"wallet_velocity": 5, "scam_wallet": 1}
        rows = page.eval_on_selector_all("#top-wallets tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        assert rows == [[bot, "5"], [victim, "1"]]  # senders of fraud, most first
        feed = text_of(page, "#tx-alert-feed")
        assert f"wallet {bot}: 3/8 transfers flagged" in feed and "wallet_velocity" in feed
        assert f"blacklisted wallet {scam} received 2 ETH (from {victim}, tx {run}-310): phishing" in feed
        # The clicks' view did not move: no click counted, no wallet alert in its feed.
        assert text_of(page, "#total") == clicks_before
        assert bot not in text_of(page, "#alert-feed") and scam not in text_of(page, "#alert-feed")
        status, body = call(worker, "GET", "/stats")
        assert status == 200 and body["since_start"]["clicks"] == int(clicks_before)
        tx = body["transactions"]
        assert tx["tap"]["ready"] and tx["since_start"]["transfers"] == expected and tx["alerts"] == 2
        assert tx["since_start"]["verdicts"]["fraud"] == 6
        page.locator("#transactions").scroll_into_view_if_needed()
        screenshot(page, "dashboard-transactions.png")
