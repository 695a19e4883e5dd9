"""HTTP routes of contract §7 on Faust's web server.

  GET  /health                 200 when up and has partitions
  GET  /stats                  verdict / fraud-type counts since start and in the last window
                               (clicks; transfers under "transactions")
  GET  /devices/{device_id}    the device's window counts, answered by the worker that owns it
  GET  /wallets/{address}      the wallet's window state and taint, answered by the worker that owns it
  GET  /reputation             ?ip=&fingerprint=: what the reputation table says about an address, its
                               network and a fingerprint (any worker: every worker holds it all)
  GET  /blacklist              entries, paged (?limit=&offset=&kind=)
  GET  /blacklist/{value}      one entry or 404 (?kind= when the value is ambiguous)
  POST /blacklist              admin: publish add updates (202)
  DELETE /blacklist/{value}    admin: publish a remove update (202)
  POST /clicks                 ingest: validate and publish clicks (202 / 400)
  GET  /rules                  the rule set this worker applies (version 0: the environment's),
                               the candidate in shadow with its report, the versions kept
  PUT  /rules                  admin: check and publish a new version (202 / 400 / 409)
  GET  /rules/shadow           the candidate in shadow and what it would change (404: none)
  POST /rules/shadow           admin: start a shadow run of a candidate (202 / 400 / 409)
  DELETE /rules/shadow         admin: stop the shadow run (202)
  GET  /schemas                the JSON Schemas of the topics' values (names, titles, topics)
  GET  /schemas/{name}         one of them (application/schema+json), or 404
  GET  /metrics                Prometheus text format
  GET  /dashboard              the live page; /dashboard/events is its Server-Sent Events feed

The write routes publish through their own producer and the counts come from a tap on the
output topics (web/kafka.py), so every worker serves the same picture.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from statistics import median
from typing import Any

import orjson
from aiohttp import web as aioweb
from aiokafka.errors import KafkaError
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View

from fraudapp import metrics, schemas, tables, transaction_stage
from fraudapp.addresses import AddressError, canonical
from fraudapp.app import app, settings, topics
from fraudapp.models import Summary
from fraudapp.rules_stage import ACTION_HEADER, ACTOR_HEADER
from fraudapp.ruleset import DEFAULT_NAME, SHADOW_NAME, RuleSetError, parse
from fraudapp.runtime.producer import partitions_of
from fraudapp.runtime.sensors import use_cheaper_hooks
from fraudapp.shadow import ShadowReport
from fraudapp.state.blacklist_index import KINDS, entry_key
from fraudapp.state.reputation import entities_of
from fraudapp.state.sliding import DeviceWindows
from fraudapp.state.taint import in_force
from fraudapp.state.wallets import WalletActivity
from fraudapp.stats import TRANSFERS, VerdictStats, alert_stats
from fraudapp.web.auth import check_bearer
from fraudapp.web.body import BodyError, body_limit_middleware, json_body
from fraudapp.web.kafka import Publisher, TopicTap
from fraudapp.web.requests import infer_kind, parse_blacklist_entries, parse_clicks, removal

STATIC_DIR = Path(__file__).resolve().parent / "static"
SSE_INTERVAL_SECONDS = 1.0
MAX_PAGE = 1000

# -- live state of this worker's web side ---------------------------------------------------
# "The last window" of /stats is the alert window (ALERT_WINDOW_SECONDS, 60 s by default).
stats = VerdictStats(window_seconds=settings.alert_window_seconds)
# Transfers apart (their last window: WALLET_ALERT_WINDOW_SECONDS), with the wallet alerts.
transaction_stats = VerdictStats(window_seconds=settings.wallet_alert_window_seconds, kind=TRANSFERS)
shadow_report = ShadowReport()


class Live:
    """The web services' instances, once Faust has started them (None before)."""

    publisher: Publisher | None = None
    tap: TopicTap | None = None
    transaction_tap: TopicTap | None = None
    closing: asyncio.Event | None = None


live = Live()


def _on_tap_record(topic: str, value: Any) -> None:
    if not isinstance(value, dict):
        return
    if topic == settings.topic_verdicts:
        stats.add_verdict(value)
        metrics.tap_records.labels("verdicts").inc()
    elif topic == settings.topic_transaction_verdicts:
        transaction_stats.add_verdict(value)
        metrics.tap_records.labels("transaction_verdicts").inc()
    else:
        alert_stats(value, stats, transaction_stats).add_alert(value)
        metrics.tap_records.labels("alerts").inc()


def tap_ready(tap: TopicTap | None) -> bool:
    return bool(tap and tap.assigned)


def _tap_state(tap: TopicTap | None) -> dict[str, Any]:
    return {"ready": tap_ready(tap), "partitions": len(tap.assigned) if tap else 0}


@app.service
class WebPublisher(Publisher):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        live.publisher = self


@app.service
class WebTap(TopicTap):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings, [settings.topic_verdicts, settings.topic_alerts], _on_tap_record, **kwargs)
        live.tap = self


@app.service
class TransactionTap(TopicTap):
    """The transaction verdicts, in a tap of their own: a deployment with no transfers (no
    such topic yet) keeps its clicks' tap ready."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings, [settings.topic_transaction_verdicts], _on_tap_record, **kwargs)
        live.transaction_tap = self


@app.service
class ShadowTap(TopicTap):
    """The rules-shadow topic from its beginning: a shadow run's report covers all of it,
    whenever this worker started."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings, [settings.topic_rules_shadow], lambda _topic, record: shadow_report.add(record),
                         from_beginning=True, **kwargs)


@app.timer(interval=5.0)
async def refresh_state_gauges() -> None:
    """Levels (blacklist size, keys in window state) for /metrics; events count themselves."""
    rule_sets = tables.rule_sets
    metrics.update_state_gauges(len(tables.blacklist.index), tables.STATE_TABLES, rule_sets.live.version,
                                rule_sets.shadow.version if rule_sets.shadow is not None else 0,
                                len(tables.reputation.index))


# Faust's sensors and ours on one registry; a fixed prefix (not the app id) keeps the
# series names stable across deployments.
setup_prometheus_sensors(app, pattern="/metrics", registry=metrics.REGISTRY, name_prefix="faust")
use_cheaper_hooks(app)


# -- helpers ------------------------------------------------------------------------------
def _error(view: View, status: int, reason: str, **extra: Any) -> Response:
    return view.json({"error": reason, **extra}, status=status)


def _denied(view: View, request: Request, token: str, setting: str, route: str) -> Response | None:
    denial = check_bearer(request.headers.get("Authorization"), token, setting)
    if denial is None:
        return None
    metrics.http_rejected.labels(route, f"auth_{denial.status}").inc()
    return _error(view, denial.status, denial.reason)


def _admitted_body(view: View, request: Request, token: str, setting: str, route: str) -> tuple[Any, Response | None]:
    """(JSON body, None) for an authorised request with a readable body, else (None, refusal)."""
    denied = _denied(view, request, token, setting, route)
    if denied is not None:
        return None, denied
    try:
        return json_body(request), None
    except BodyError as exc:
        return None, _error(view, exc.status, exc.reason)


async def _publish(view: View, topic: str, records: list[tuple[bytes, bytes | None]], route: str,
                   headers: list[tuple[str, bytes]] | None = None) -> Response | None:  # fmt: skip
    """None once every record is acknowledged by Kafka; a 503 answer otherwise."""
    publisher = live.publisher
    if publisher is None or publisher.producer is None:
        return _error(view, 503, "worker is starting: publisher not ready, retry shortly")
    try:
        await publisher.send_many(topic, records, headers)
    except (KafkaError, OSError) as exc:  # the client may retry
        metrics.http_rejected.labels(route, "kafka").inc()
        return _error(view, 503, f"could not publish to Kafka: {type(exc).__name__}")
    metrics.http_published.labels(route).inc(len(records))
    return None


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BodyError(400, f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise BodyError(400, f"'{name}' must be between {low} and {high}")
    return value


def _entry_view(key: str, value: dict[str, Any], now: float) -> dict[str, Any]:
    expires_at = value.get("expires_at")
    return {**value, "key": key, "active": expires_at is None or now < expires_at}


def _lookup_key(request: Request, value: str) -> str:
    kind = request.query.get("kind") or infer_kind(value)
    if kind not in KINDS:
        raise BodyError(400, f"'kind' must be one of {', '.join(KINDS)}")
    try:
        return entry_key(kind, value)
    except ValueError as exc:
        raise BodyError(400, str(exc)[:200]) from None


# -- routes -------------------------------------------------------------------------------
@app.page("/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        ready = app.rebalancing is False and bool(app.assignor.assigned_actives())
        return self.json({"status": "ok" if ready else "starting"}, status=200 if ready else 503)


@app.page("/stats")
class Stats(View):
    async def get(self, request: Request) -> Response:
        body = stats.summary()
        body["shadow"] = rules_state()["shadow"]
        body["tap"] = _tap_state(live.tap)
        body["transactions"] = {**transaction_stats.summary(), "tap": _tap_state(live.transaction_tap)}
        return self.json(body)


_producer_knows: set[str] = set()


async def _producer_metadata(topic: str) -> bool:
    """Make Faust's producer learn `topic`'s partitions (topic_route hashes with them).

    Its metadata only holds topics it has sent to; a worker that never re-keyed a click
    does not know clicks-by-device, and topic_route would fail with a TypeError.
    """
    if topic in _producer_knows:
        return True
    try:
        await partitions_of(app, topic, 5.0)
    except (KafkaError, TimeoutError):
        return False
    _producer_knows.add(topic)
    return True


@app.page("/devices/{device_id}")
class Device(View):
    # Not `table_route`: the tables' keys are JSON-serialized ('"d1"'), so Faust's router
    # would hash the quoted key and pick the wrong worker. The device's partition is that
    # of its raw id on the co-partitioned clicks-by-device topic, whose owner also owns
    # the device's partition of every device table.
    async def get(self, request: Request, device_id: str) -> Response:
        if not await _producer_metadata(topics.clicks_rekeyed.get_topic_name()):
            return _error(self, 503, "partition metadata not available yet, retry shortly")
        return await self.routed_get(request, device_id)

    @app.topic_route(topic=topics.clicks_rekeyed, match_info="device_id")
    async def routed_get(self, request: Request, device_id: str) -> Response:
        window = DeviceWindows.from_json(tables.device_clicks.get(device_id)).clicks
        latest = window.max_ts
        spam_seconds = settings.click_spam_window_seconds
        # The state holds event times back to latest - click_spam window - lateness, so a
        # minute's count is exact when that span covers it (the defaults: 70 s).
        held = spam_seconds + settings.lateness_seconds
        return self.json(
            {
                "device_id": device_id,
                "served_by": str(app.conf.canonical_url),
                # Exact event times the click_spam rule counts (pruned to window + lateness).
                "recent_click_times": window.times,
                "click_spam_window": {
                    "seconds": spam_seconds,
                    "latest_ts": latest,
                    "clicks": window.result(latest, spam_seconds) if latest is not None else 0,
                },
                "last_minute": {
                    "seconds": 60,
                    "latest_ts": latest,
                    "clicks": window.result(latest, 60.0) if latest is not None else 0,
                    "exact": held >= 60,
                },
            }
        )


@app.page("/wallets/{address}")
class Wallet(View):
    """A wallet's state as its transfers are judged (CONTRACT §7), from the worker that owns it."""

    async def get(self, request: Request, address: str) -> Response:
        try:
            compared = canonical(address)
        except AddressError as exc:
            return _error(self, 400, str(exc))
        if not await _producer_metadata(topics.transactions_rekeyed.get_topic_name()):
            return _error(self, 503, "partition metadata not available yet, retry shortly")
        request.match_info["address"] = compared  # the owner is that of the compared form's partition
        return await self.routed_get(request, compared)

    @app.topic_route(topic=topics.transactions_rekeyed, match_info="address")
    async def routed_get(self, request: Request, address: str) -> Response:
        state = WalletActivity.from_json(tables.wallet_activity.get(address))
        latest = state.max_ts
        windows = transaction_stage.WINDOWS
        now = time.time()
        taint = in_force(tables.wallet_taint.index.of(address), latest if latest is not None else now,
                         settings.taint_seconds)
        entry = tables.blacklist.index.match_wallet(address, now)
        counts = state.result(latest, "", "", windows) if latest is not None else None
        return self.json({
            "address": address,
            "served_by": str(app.conf.canonical_url),
            "blacklisted": entry.to_dict() if entry is not None else None,
            "latest_ts": latest,
            "recent_transfer_times": state.sends.times,
            "velocity_window": {"seconds": windows.velocity,
                                "transfers": state.sends.result(latest, windows.velocity) if latest else 0},
            "fan_out_window": {"seconds": windows.fan_out,
                               "recipients": sorted({to for t, to in state.recipients
                                                     if latest is not None and t >= latest - windows.fan_out})},
            "amounts": {asset: {"known": len(amounts), "median": median(amounts) if amounts else None}
                        for asset, amounts in state.amounts.items()},
            "taint": None if taint is None else {"ts": taint.ts, "hops": taint.hops, "source": taint.source,
                                                  "tx_id": taint.tx_id,
                                                  "in_force_until": taint.until or taint.ts + settings.taint_seconds},
            "known": counts is not None or taint is not None or entry is not None,
        })


@app.page("/reputation")
class Reputation(View):
    async def get(self, request: Request) -> Response:
        ip, fingerprint = request.query.get("ip"), request.query.get("fingerprint")
        if not ip and not fingerprint:
            return _error(self, 400, "give ?ip= and/or ?fingerprint=")
        index = tables.reputation.index
        entities = entities_of(ip, fingerprint) if ip else [f"fp:{fingerprint}"]
        return self.json({
            "entities": {entity: _summary_view(index.get(entity)) for entity in entities},
            "windows": list(settings.reputation_horizons),
            "note": "an entity seen with fewer than two devices has no summary (null)",
        })


def _summary_view(summary: Summary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"t": summary.t, "windows": [
        {"seconds": w.seconds, "devices": w.devices, "clicks": w.clicks, "user_agents": w.user_agents,
         "new_devices": w.new_devices, "top_publisher": w.top_publisher,
         "top_publisher_devices": w.top_publisher_devices} for w in summary.windows]}


@app.page("/blacklist")
class Blacklist(View):
    async def get(self, request: Request) -> Response:
        try:
            limit = _int_arg(request, "limit", 100, 1, MAX_PAGE)
            offset = _int_arg(request, "offset", 0, 0, 1 << 62)
        except BodyError as exc:
            return _error(self, exc.status, exc.reason)
        kind = request.query.get("kind")
        now = time.time()
        items = sorted(
            (key, value)
            for key, value in tables.blacklist.items()
            if value is not None and (kind is None or key.startswith(kind + ":"))
        )
        page = [_entry_view(key, value, now) for key, value in items[offset : offset + limit]]
        return self.json({"total": len(items), "limit": limit, "offset": offset, "entries": page})

    async def post(self, request: Request) -> Response:
        body, refusal = _admitted_body(self, request, settings.admin_token, "FRAUDAPP_ADMIN_TOKEN", "blacklist")
        if refusal is not None:
            return refusal
        parsed = parse_blacklist_entries(body, time.time())
        if parsed.errors:
            metrics.http_rejected.labels("blacklist", "invalid").inc()
            return _error(self, 400, "invalid blacklist entries: nothing published", errors=parsed.errors)
        failed = await _publish(self, settings.topic_blacklist, parsed.records, "blacklist")
        if failed is not None:
            return failed
        return self.json({"published": len(parsed.items), "entries": parsed.items}, status=202)


@app.page("/blacklist/{value:.+}")
class BlacklistItem(View):
    async def get(self, request: Request, value: str) -> Response:
        try:
            key = _lookup_key(request, value)
        except BodyError as exc:
            return _error(self, exc.status, exc.reason)
        entry = tables.blacklist.get(key)
        if entry is None:
            return _error(self, 404, f"{key} is not blacklisted")
        return self.json(_entry_view(key, entry, time.time()))

    async def delete(self, request: Request, value: str) -> Response:
        denied = _denied(self, request, settings.admin_token, "FRAUDAPP_ADMIN_TOKEN", "blacklist")
        if denied is not None:
            return denied
        kind = request.query.get("kind")
        if kind is not None and kind not in KINDS:
            return _error(self, 400, f"'kind' must be one of {', '.join(KINDS)}")
        update = removal(value, kind)
        if not isinstance(update, tuple):
            return _error(self, 400, update.detail)
        key, kafka_key, message = update
        failed = await _publish(self, settings.topic_blacklist, [(kafka_key, message)], "blacklist")
        if failed is not None:
            return failed
        present = tables.blacklist.get(key) is not None
        return self.json({"published": 1, "key": key, "was_present": present, **orjson.loads(message)}, status=202)


def _actor(request: Request) -> bytes:
    """Who made a change, for the audit: the caller's address, and the name it gives itself
    in `X-Fraudapp-Actor` (the admin token is shared, so it names no one)."""
    named = request.headers.get("X-Fraudapp-Actor", "").strip()[:128]
    remote = getattr(request, "remote", None) or "unknown"
    return f"http:{named + '@' if named else ''}{remote}".encode()


def rules_state() -> dict[str, Any]:
    """GET /rules: the live set, the candidate with its shadow report, the versions kept."""
    rule_sets = tables.rule_sets
    live, candidate = rule_sets.live, rule_sets.shadow
    shadow = None
    if candidate is not None:
        shadow = {"version": candidate.version, "rule_set": candidate.document(),
                  "report": shadow_report.of(candidate.version)}
    return {"version": live.version, "rule_set": live.document(), "shadow": shadow,
            "history": [tables.history_version(key) for key, _ in rule_sets.history()]}


async def _publish_rule_set(view: View, request: Request, name: str, action: str) -> Response:
    """Admin: check a rule-set document and publish it under `name` (202); every worker applies it."""
    body, refusal = _admitted_body(view, request, settings.admin_token, "FRAUDAPP_ADMIN_TOKEN", "rules")
    if refusal is not None:
        return refusal
    if isinstance(body, dict):
        body["name"] = name
    try:
        ruleset = parse(body, settings)
    except RuleSetError as exc:
        metrics.http_rejected.labels("rules", "invalid").inc()
        errors = [{"path": path, "error": message} for path, message in exc.errors]
        return _error(view, 400, "invalid rule set: nothing published", errors=errors)
    stale = tables.rule_sets.stale(name, body)
    if stale is not None:
        return _error(view, 409, stale.detail)
    headers = [(ACTOR_HEADER, _actor(request)), (ACTION_HEADER, action.encode())]
    failed = await _publish(view, settings.topic_rules, [(name.encode(), orjson.dumps(body))], "rules", headers)
    if failed is not None:
        return failed
    return view.json({"published": ruleset.version, "name": name}, status=202)


@app.page("/rules")
class Rules(View):
    async def get(self, request: Request) -> Response:
        """The rule set this worker applies (version 0: the environment's settings), and the
        candidate in shadow with what it would change."""
        return self.json(rules_state())

    async def put(self, request: Request) -> Response:
        """Admin: publish a new live version (202; 400 invalid; 409 not above the live one)."""
        return await _publish_rule_set(self, request, DEFAULT_NAME, "set")


@app.page("/rules/shadow")
class RulesShadow(View):
    async def get(self, request: Request) -> Response:
        """The candidate in shadow and its report (404: none)."""
        state = rules_state()["shadow"]
        return self.json(state) if state is not None else _error(self, 404, "no rule set in shadow")

    async def post(self, request: Request) -> Response:
        """Admin: start a shadow run of a candidate (its version must be above the live one)."""
        return await _publish_rule_set(self, request, SHADOW_NAME, "shadow")

    async def delete(self, request: Request) -> Response:
        """Admin: stop the shadow run (its report stays readable by version)."""
        denied = _denied(self, request, settings.admin_token, "FRAUDAPP_ADMIN_TOKEN", "rules")
        if denied is not None:
            return denied
        candidate = tables.rule_sets.shadow
        headers = [(ACTOR_HEADER, _actor(request)), (ACTION_HEADER, b"stop-shadow")]
        failed = await _publish(self, settings.topic_rules, [(SHADOW_NAME.encode(), None)], "rules", headers)
        if failed is not None:
            return failed
        return self.json({"stopped": candidate.version if candidate is not None else None}, status=202)


@app.page("/clicks")
class Clicks(View):
    async def post(self, request: Request) -> Response:
        body, refusal = _admitted_body(self, request, settings.ingest_token, "FRAUDAPP_INGEST_TOKEN", "clicks")
        if refusal is not None:
            return refusal
        if isinstance(body, list) and not body:
            return _error(self, 400, "empty array: no clicks to publish")
        parsed = parse_clicks(body, settings.max_click_bytes)
        if parsed.errors:
            metrics.http_rejected.labels("clicks", "invalid").inc(len(parsed.errors))
        if not parsed.records:
            return _error(self, 400, "no valid click: nothing published", rejected=parsed.errors)
        failed = await _publish(self, settings.topic_clicks, parsed.records, "clicks")
        if failed is not None:
            return failed
        return self.json({"accepted": len(parsed.records), "clicks": parsed.items, "rejected": parsed.errors}, status=202)


@app.page("/schemas")
class SchemaIndex(View):
    async def get(self, request: Request) -> Response:
        return self.json({"schemas": schemas.index(settings)})


@app.page("/schemas/{name}")
class SchemaDocument(View):
    async def get(self, request: Request, name: str) -> Response:
        try:
            document = schemas.raw(name)
        except schemas.UnknownSchema:
            return _error(self, 404, f"no schema named {name[:64]!r}", schemas=list(schemas.names()))
        return self.bytes(document, content_type=schemas.MEDIA_TYPE)


@app.page("/dashboard")
class Dashboard(View):
    async def get(self, request: Request) -> Response:
        return self.html((STATIC_DIR / "dashboard.html").read_text())


async def dashboard_events(request: aioweb.Request) -> aioweb.StreamResponse:
    """Server-Sent Events: one snapshot of the stats a second, until either side closes."""
    response = aioweb.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    closing = live.closing
    try:
        while closing is None or not closing.is_set():
            snapshot = stats.snapshot()
            snapshot["tap_ready"] = tap_ready(live.tap)
            snapshot["transactions"] = {**transaction_stats.snapshot(), "tap_ready": tap_ready(live.transaction_tap)}
            snapshot["served_by"] = str(app.conf.canonical_url)
            state = rules_state()
            shadow = state["shadow"] and {"version": state["shadow"]["version"], "report": state["shadow"]["report"]}
            snapshot["rules"] = {"version": state["version"], "shadow": shadow}
            await response.write(b"data: " + orjson.dumps(snapshot) + b"\n\n")
            if closing is None:
                await asyncio.sleep(SSE_INTERVAL_SECONDS)
            else:
                try:
                    await asyncio.wait_for(closing.wait(), SSE_INTERVAL_SECONDS)
                except TimeoutError:
                    pass
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    return response


async def _end_streams(_: aioweb.Application) -> None:
    # Open dashboards would otherwise hold the worker's shutdown for aiohttp's grace period.
    if live.closing is not None:
        live.closing.set()


_previous_webserver_init = app.on_webserver_init


_initialised_web_apps: set[int] = set()


def _on_webserver_init(web: Any) -> None:
    """Raw aiohttp additions: body limit on every route, the SSE feed, static files."""
    _previous_webserver_init(web)
    # `faust worker` runs init_server twice (worker init, then Web.on_start): a second body
    # middleware would find the body already read and hand the views an empty one.
    if id(web.web_app) in _initialised_web_apps:
        return
    _initialised_web_apps.add(id(web.web_app))
    live.closing = asyncio.Event()
    web.web_app.middlewares.append(body_limit_middleware(settings.max_body_bytes))
    web.web_app.on_shutdown.append(_end_streams)
    web.web_app.router.add_get("/dashboard/events", dashboard_events)
    web.web_app.router.add_static("/static/", STATIC_DIR)


app.on_webserver_init = _on_webserver_init  # type: ignore[method-assign]
