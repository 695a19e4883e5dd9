"""device_farm: many devices share the click's fingerprint, or its address (network) with most clicking for its publisher.

Not a hard rule: it reads the reputation table (state/reputation.py), which follows the
clicks by a fraction of a second (the lag is in tests/integration/test_reputation.py), so
a farm's first clicks pass before its devices add up. In the first reputation window
(`FRAUDAPP_REPUTATION_WINDOWS`, default 10 min):

* fingerprint: at least `FRAUDAPP_FARM_FINGERPRINT_DEVICES` (5) distinct device ids with
  the click's fingerprint. A browser fingerprint tells devices apart; one that comes back
  under ever new device ids is one device resetting its id, or an anti-detect browser's
  profile on many bots. What looks like it: fleets of identical devices (a school's
  identical tablets, one iPhone model and iOS version), whose fingerprints collide.
* address, network: at least `FRAUDAPP_FARM_ADDRESS_DEVICES` (8) devices on the click's
  address (`FRAUDAPP_FARM_NETWORK_DEVICES` (20) on its /24 or /64), of which at least
  `FRAUDAPP_FARM_PUBLISHER_SHARE` (90 %) last clicked for one publisher, the click's. An
  office, a carrier's NAT or a VPN exit puts hundreds of people on one address, but they
  click for many publishers; a farm's devices all work for the one that pays it. What
  looks like it: a shared address whose people all follow one publisher's campaign (an
  office on its own company's ads).
"""

from __future__ import annotations

from fraudapp.models import Click, Features, Hit, Summary, Window
from fraudapp.rules.base import Rule
from fraudapp.settings import Settings

NAME = "device_farm"


def first_window(summary: Summary | None) -> Window | None:
    """The shortest horizon's counts (summaries list them shortest first)."""
    return summary.windows[0] if summary is not None and summary.windows else None


def minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def apply(click: Click, features: Features, settings: Settings) -> Hit | None:
    reputation = features.reputation
    fp = first_window(reputation.fingerprint)
    limit = settings.farm_fingerprint_devices
    if fp is not None and fp.devices >= limit:
        return Hit(NAME, f"{fp.devices} devices with fingerprint {click.fingerprint} in {minutes(fp.seconds)} "
                         f"(limit {limit})")
    share = settings.farm_publisher_share
    for where, summary, limit in (
        (click.ip, reputation.ip, settings.farm_address_devices),
        (reputation.network.entity.partition(":")[2] if reputation.network else "", reputation.network,
         settings.farm_network_devices),
    ):
        w = first_window(summary)
        if (w is not None and w.devices >= limit and w.top_publisher == click.publisher_id
                and w.publisher_share >= share):
            return Hit(NAME, f"{w.devices} devices on {where} in {minutes(w.seconds)}, "
                             f"{w.publisher_share:.0%} of them clicking for {w.top_publisher} "
                             f"(limits {limit} devices, {share:.0%})")
    return None


RULE = Rule(name=NAME, apply=apply)
