"""A rule set: the hard rules' on/off, thresholds and windows, the score's tiers and the
alert policy, with overrides per campaign and publisher, as one versioned document
(CONTRACT §4c, issue 20).

The document's shape is `fraudapp/schemas/rule-set.json`; this module is its reference.
A field the document leaves out keeps the environment's setting: the environment is
version 0. A document is checked whole, every error named by its field path, and an
invalid one changes nothing (`RuleSetError`). What a click is judged under is
`RuleSet.for_click`: the set's values, then its publisher's override, then its
campaign's. Pure: no Faust, no I/O beyond reading the schema shipped with the package.

Two sets are applied, by their name (the `rules` topic's key): `default`, the live set
every verdict is judged under, and `shadow`, a candidate judged beside it without changing
any verdict (shadow.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import orjson

from fraudapp.models import FARM_FRAUD_TYPES, HARD_FRAUD_TYPES
from fraudapp.rules import FARM_RULES, HARD_RULES, Rule
from fraudapp.settings import Settings
from fraudapp.validate import Rejection, json_object

DEFAULT_NAME = "default"  # the live set
SHADOW_NAME = "shadow"  # the candidate judged beside it
APPLIED_NAMES = (DEFAULT_NAME, SHADOW_NAME)

# (section, rule or None, key) in the document -> the Settings field it sets
SETTING_OF: dict[tuple[str, str | None, str], str] = {
    ("rules", "click_spam", "threshold"): "click_spam_threshold",
    ("rules", "click_spam", "window_seconds"): "click_spam_window_seconds",
    ("rules", "session_url_repeat", "threshold"): "session_url_threshold",
    ("rules", "session_url_repeat", "window_seconds"): "session_url_window_seconds",
    ("rules", "duplicate_click", "horizon_seconds"): "dedup_seconds",
    ("rules", "device_farm", "fingerprint_devices"): "farm_fingerprint_devices",
    ("rules", "device_farm", "address_devices"): "farm_address_devices",
    ("rules", "device_farm", "network_devices"): "farm_network_devices",
    ("rules", "device_farm", "publisher_share"): "farm_publisher_share",
    ("score", None, "clean_above"): "score_clean_above",
    ("score", None, "suspicious_above"): "score_suspicious_above",
    ("alerts", None, "window_seconds"): "alert_window_seconds",
    ("alerts", None, "min_clicks"): "alert_min_clicks",
    ("alerts", None, "fraud_ratio"): "alert_fraud_ratio",
    ("alerts", None, "grace_seconds"): "alert_grace_seconds",
}

# the settings that size state: state is kept for the largest value any override allows
WINDOW_SETTINGS = ("click_spam_window_seconds", "session_url_window_seconds", "dedup_seconds")


class RuleSetError(ValueError):
    """An invalid rule set; `errors` holds (field path, message) pairs, path "" for the root."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors = sorted(set(errors))
        super().__init__("; ".join(f"{path or '(document)'}: {message}" for path, message in self.errors))


@cache
def schema() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(resources.files("fraudapp.schemas").joinpath("rule-set.json").read_bytes())
    return document


@dataclass(frozen=True)
class Tuning:
    """What one level of a rule set sets: Settings fields, and rules switched on or off."""

    values: Mapping[str, Any] = field(default_factory=dict)
    enabled: Mapping[str, bool] = field(default_factory=dict)

    def over(self, base: Tuning) -> Tuning:
        """This level's values on top of `base`'s."""
        return Tuning({**base.values, **self.values}, {**base.enabled, **self.enabled})


@dataclass(frozen=True)
class Judging:
    """What one click is judged under."""

    settings: Settings
    enabled: frozenset[str]  # hard and farm rules on
    version: int

    def hard_rules(self) -> tuple[Rule, ...]:
        """The hard rules on, in their order (`engine.judge(..., rules=)`)."""
        return _rules_on(HARD_RULES, self.enabled)

    def farm_rules(self) -> tuple[Rule, ...]:
        """The farm rules on (`engine.judge(..., farm_rules=)`)."""
        return _rules_on(FARM_RULES, self.enabled)


# every rule a rule set can switch on or off
SWITCHED = HARD_FRAUD_TYPES + FARM_FRAUD_TYPES


@cache
def _rules_on(rules: tuple[Rule, ...], enabled: frozenset[str]) -> tuple[Rule, ...]:
    return tuple(rule for rule in rules if rule.name in enabled)


@dataclass(frozen=True)
class RuleSet:
    name: str
    version: int
    base: Settings  # the environment's settings (version 0)
    own: Tuning  # the set's own values, on top of the environment's
    campaign: Mapping[str, Tuning] = field(default_factory=dict)
    publisher: Mapping[str, Tuning] = field(default_factory=dict)
    description: str = ""
    # per (campaign, publisher) override pair met: what their clicks are judged under
    _judged: dict[tuple[str | None, str | None], Judging] = field(default_factory=dict, compare=False, repr=False)

    def for_click(self, campaign_id: str | None, publisher_id: str | None) -> Judging:
        key = (campaign_id if campaign_id in self.campaign else None,
               publisher_id if publisher_id in self.publisher else None)
        judging = self._judged.get(key)
        if judging is None:  # built once per pair: Settings.replace costs microseconds
            tuning = self.own
            if key[1] is not None:
                tuning = self.publisher[key[1]].over(tuning)
            if key[0] is not None:
                tuning = self.campaign[key[0]].over(tuning)
            judging = self._judged[key] = _judging(self.base, tuning, self.version)
        return judging

    def largest_windows(self) -> dict[str, float]:
        """Per window setting, the largest value any click can be judged under (each field
        of a click's judging comes from one level: the set, its publisher or its campaign)."""
        own = _judging(self.base, self.own, self.version).settings
        largest = {name: float(getattr(own, name)) for name in WINDOW_SETTINGS}
        for override in (*self.publisher.values(), *self.campaign.values()):
            for name in WINDOW_SETTINGS:
                if name in override.values:
                    largest[name] = max(largest[name], float(override.values[name]))
        return largest

    def document(self) -> dict[str, Any]:
        """The set as a document with every value in force written out (overrides as given)."""
        settings = _judging(self.base, self.own, self.version)
        body: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.description:
            body["description"] = self.description
        body.update(_sections(Tuning(_values_of(settings.settings), {r: r in settings.enabled for r in SWITCHED})))
        overrides = {
            kind: {key: _sections(tuning) for key, tuning in sorted(levels.items())}
            for kind, levels in (("campaign", self.campaign), ("publisher", self.publisher))
            if levels
        }
        if overrides:
            body["overrides"] = overrides
        return body


def version_zero(settings: Settings, name: str = DEFAULT_NAME) -> RuleSet:
    """The environment's settings as a rule set."""
    return RuleSet(name=name, version=0, base=settings, own=Tuning())


def parse(document: Any, base: Settings) -> RuleSet:
    """The rule set a document describes, on top of the environment's `base` settings;
    raises RuleSetError naming every invalid field."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = [(_path(error.absolute_path), error.message) for error in validator.iter_errors(document)]
    if errors:
        raise RuleSetError(errors)
    own = _tuning(document)
    overrides = document.get("overrides", {})
    campaign = {key: _tuning(body) for key, body in overrides.get("campaign", {}).items()}
    publisher = {key: _tuning(body) for key, body in overrides.get("publisher", {}).items()}
    ruleset = RuleSet(name=document.get("name", DEFAULT_NAME), version=document["version"], base=base, own=own,
                      campaign=campaign, publisher=publisher, description=document.get("description", ""))
    _check_tiers(ruleset)
    _check_limits(ruleset)
    return ruleset


# what a running deployment cannot change: its state is sized by the environment's windows
FIXED_SETTINGS = ("alert_window_seconds", "alert_grace_seconds")


def _check_limits(ruleset: RuleSet) -> None:
    """State is kept for the environment's windows (they are the largest any version may
    use: a window that grows cannot bring back state already expired), and the alert
    windows' size is fixed while windows are open."""
    paths = {name: ".".join(k for k in key if k) for key, name in SETTING_OF.items()}
    levels: list[tuple[str, Tuning]] = [("", ruleset.own)]
    levels += [(f"overrides.publisher.{key}.", t) for key, t in ruleset.publisher.items()]
    levels += [(f"overrides.campaign.{key}.", t) for key, t in ruleset.campaign.items()]
    errors = []
    for prefix, tuning in levels:
        for name, value in tuning.values.items():
            limit = getattr(ruleset.base, name)
            setting = f"FRAUDAPP_{name.upper()}={limit:g}"
            if name in WINDOW_SETTINGS and value > limit:
                errors.append((prefix + paths[name], f"{value:g} is above this deployment's state horizon {setting}"))
            elif name in FIXED_SETTINGS and value != limit:
                errors.append((prefix + paths[name], f"fixed at {setting} (open alert windows would change size)"))
    if errors:
        raise RuleSetError(errors)


def _tuning(body: Mapping[str, Any]) -> Tuning:
    values: dict[str, Any] = {}
    enabled: dict[str, bool] = {}
    for section in ("rules", "score", "alerts"):
        part = body.get(section, {})
        if section == "rules":
            for rule, settings in part.items():
                for key, value in settings.items():
                    if key == "enabled":
                        enabled[rule] = value
                    else:
                        values[SETTING_OF[("rules", rule, key)]] = value
        else:
            for key, value in part.items():
                values[SETTING_OF[(section, None, key)]] = value
    return Tuning(values, enabled)


def _judging(base: Settings, tuning: Tuning, version: int) -> Judging:
    settings = base.replace(**tuning.values) if tuning.values else base
    enabled = frozenset(rule for rule in SWITCHED if tuning.enabled.get(rule, True))
    return Judging(settings, enabled, version)


def _check_tiers(ruleset: RuleSet) -> None:
    errors = []
    levels: list[tuple[str, Tuning]] = [("score", ruleset.own)]
    levels += [(f"overrides.publisher.{key}.score", t.over(ruleset.own)) for key, t in ruleset.publisher.items()]
    levels += [(f"overrides.campaign.{key}.score", t.over(ruleset.own)) for key, t in ruleset.campaign.items()]
    for path, tuning in levels:
        settings = _judging(ruleset.base, tuning, ruleset.version).settings
        if settings.score_suspicious_above > settings.score_clean_above:
            message = (f"suspicious_above {settings.score_suspicious_above:g} is above clean_above "
                       f"{settings.score_clean_above:g}")
            errors.append((path, message))
    if errors:
        raise RuleSetError(errors)


def _values_of(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in SETTING_OF.values()}


def _sections(tuning: Tuning) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for (section, rule, key), name in SETTING_OF.items():
        if name in tuning.values:
            part = body.setdefault(section, {})
            (part.setdefault(rule, {}) if rule else part)[key] = tuning.values[name]
    for rule, on in tuning.enabled.items():
        body.setdefault("rules", {}).setdefault(rule, {})["enabled"] = on
    return body


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(part) for part in parts)


def parse_rule_set_record(key: bytes | None, value: bytes | None, base: Settings) -> tuple[str, Any] | Rejection:
    """A record of the rules topic: (name, document), (name, None) for a deletion (a
    tombstone), or why it is refused. The key is the set's name; a document's `name`,
    when given, must agree with it."""
    if not key:
        return Rejection("missing_field", "a rule-set record needs its name as the key")
    try:
        name = key.decode()
    except UnicodeDecodeError:
        return Rejection("invalid_utf8", "a rule-set record's key must be UTF-8")
    if name not in APPLIED_NAMES:
        return Rejection("invalid_value", f"rule set {name[:64]!r}: only {DEFAULT_NAME!r} (live) and "
                                          f"{SHADOW_NAME!r} (candidate) are applied")
    if value is None:
        return name, None
    document = json_object(value, "a rule set")
    if isinstance(document, Rejection):
        return document
    if document.setdefault("name", name) != name:
        return Rejection("invalid_value", f"the rule set's name {document['name']!r} is not its key {name!r}")
    try:
        parse(document, base)
    except RuleSetError as exc:
        return Rejection("invalid_value", str(exc)[:1000])
    return name, document
