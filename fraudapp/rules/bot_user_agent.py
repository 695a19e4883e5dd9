"""bot_user_agent: the User-Agent matches a crawler/bot/headless signature of crawlerdetect.

The signatures are those of the maintained CrawlerDetect project (JayBizzle's list, ported
as the `crawlerdetect` package), not a hand-made list. What it flags includes search and
SEO crawlers (Googlebot, bingbot, AhrefsBot), HTTP libraries and tools (python-requests,
curl, Wget, Go-http-client, okhttp, axios, Scrapy) and headless browsers that announce
themselves (``HeadlessChrome`` through its generic ``...headless`` pattern, ``PhantomJS/``).
It does not flag "Selenium", "puppeteer" or "Electron" tokens, nor a missing User-Agent:
those lower the fingerprint score (rules/score.py) instead of being hard hits.
"""

from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect

from fraudapp.models import Click, Features, Hit
from fraudapp.rules.base import Rule
from fraudapp.settings import Settings

NAME = "bot_user_agent"

# One detector for the process: building it compiles ~1,500 patterns. The pipeline runs
# on one event loop, so its per-call `matches` attribute is never shared across threads.
_DETECTOR = CrawlerDetect()


@lru_cache(maxsize=65536)  # user agents repeat heavily; a miss costs a regex scan
def crawler_signature(user_agent: str) -> str | None:
    """The crawler signature `user_agent` matches, or None."""
    if not user_agent.strip():
        return None
    if _DETECTOR.is_crawler(user_agent):
        return _DETECTOR.get_matches() or "crawler"
    return None


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    if not click.user_agent:
        return None
    signature = crawler_signature(click.user_agent)
    if signature is None:
        return None
    return Hit(NAME, f"user agent matches crawler signature {signature!r}")


RULE = Rule(name=NAME, apply=apply)
