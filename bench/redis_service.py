"""The Redis-tutorial architecture: an HTTP scoring service in front of redis-server.

Each POST /click (one click JSON) costs one Redis round trip (a non-transactional
pipeline): sliding device window as a sorted set (ZREMRANGEBYSCORE, ZCOUNT, ZADD,
EXPIRE), dedup as SET NX EX, the session/url window as another sorted set, blacklist
SISMEMBERs (CIDR ranges are checked in memory: Redis has no range lookup). The answer is
the verdict. No Kafka: a concurrent HTTP client drives it (fraudapp.tooling.benchmark.harness).

    python bench/redis_service.py --port 8080 --redis-port 6379 --blacklist entries.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import orjson
import redis.asyncio as aioredis
import rules_common as rules
from aiohttp import web


def build_app(redis_port: int, blacklist: list[dict]) -> web.Application:
    bl = rules.Blacklist(blacklist)
    seq = itertools.count()
    app = web.Application()

    async def on_startup(app: web.Application) -> None:
        r = aioredis.Redis(host="127.0.0.1", port=redis_port, max_connections=256)
        if bl.ips:
            await r.sadd("bl:ip", *bl.ips)
        if bl.devices:
            await r.sadd("bl:device", *bl.devices)
        app["redis"] = r

    async def on_cleanup(app: web.Application) -> None:
        await app["redis"].aclose()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def score(request: web.Request) -> web.Response:
        click = orjson.loads(await request.read())
        ts, dev, cid = click["ts"], click["device_id"], click["click_id"]
        member = f"{cid}:{next(seq)}"
        dkey = f"dev:{dev}"
        pipe = request.app["redis"].pipeline(transaction=False)
        pipe.zremrangebyscore(dkey, "-inf", ts - rules.CLICK_SPAM_W - rules.LATENESS)
        pipe.zcount(dkey, ts - rules.CLICK_SPAM_W, ts)
        pipe.zadd(dkey, {member: ts})
        pipe.expire(dkey, int(rules.CLICK_SPAM_W + rules.LATENESS) + 1)
        pipe.set(f"seen:{cid}", ts, nx=True, ex=int(rules.DEDUP_SECONDS))
        session = click.get("session_id") and click.get("url")
        if session:
            skey = f"sess:{click['session_id']}:{click['url']}"
            pipe.zremrangebyscore(skey, "-inf", ts - rules.SESSION_W - rules.LATENESS)
            pipe.zcount(skey, ts - rules.SESSION_W, ts)
            pipe.zadd(skey, {member: ts})
            pipe.expire(skey, int(rules.SESSION_W + rules.LATENESS) + 1)
        pipe.sismember("bl:ip", click["ip"])
        pipe.sismember("bl:device", dev)
        res = await pipe.execute()
        if session:
            device_prior, first, session_prior, ip_hit, dev_hit = res[1], res[4], res[6], res[9], res[10]
        else:
            device_prior, first, session_prior, ip_hit, dev_hit = res[1], res[4], None, res[5], res[6]
        body = rules.verdict(
            click,
            device_prior=device_prior,
            duplicate=not first,
            session_prior=session_prior,
            ip_blacklisted=bool(ip_hit) or bl.ip_hit(click["ip"]),
            device_blacklisted=bool(dev_hit),
        )
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/health", health)
    app.router.add_post("/click", score)
    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--blacklist", required=True)
    args = p.parse_args()
    with open(args.blacklist) as f:
        entries = json.load(f)
    web.run_app(build_app(args.redis_port, entries), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
