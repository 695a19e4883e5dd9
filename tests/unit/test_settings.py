"""Settings: parsed from FRAUDAPP_* variables, with clear errors, and all documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudapp.settings import Settings, SettingsError, bootstrap_of, documented

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_are_the_contracts() -> None:
    s = Settings.from_env({})
    assert (s.click_spam_threshold, s.click_spam_window_seconds) == (2, 10.0)
    assert (s.session_url_threshold, s.session_url_window_seconds) == (3, 10.0)
    assert s.dedup_seconds == 86400.0
    assert (s.alert_window_seconds, s.alert_min_clicks, s.alert_fraud_ratio) == (60.0, 20, 0.30)
    assert s.broker == "kafka://127.0.0.1:9092" and s.web_port == 6066
    assert (s.topic_clicks, s.topic_verdicts, s.topic_alerts, s.topic_blacklist, s.topic_dlq) == (
        "clicks", "verdicts", "fraud-alerts", "blacklist-updates", "clicks-dlq")


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"FRAUDAPP_CLICK_SPAM_THRESHOLD": "5"}, "click_spam_threshold", 5),
        ({"FRAUDAPP_ALERT_FRAUD_RATIO": "0.5"}, "alert_fraud_ratio", 0.5),
        ({"FRAUDAPP_WEB_TABLES_ENABLED": "yes"}, "web_tables_enabled", True),
        ({"FRAUDAPP_WEB_TABLES_ENABLED": "0"}, "web_tables_enabled", False),
        ({"FRAUDAPP_TOPIC_CLICKS": "c2"}, "topic_clicks", "c2"),
    ],
)
def test_parsed_from_environment(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize("env", [{"FRAUDAPP_PARTITIONS": "four"}, {"FRAUDAPP_WEB_TABLES_ENABLED": "maybe"}])
def test_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)


def test_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env({"FRAUDAPP_SASL_PASSWORD": "hunter2", "FRAUDAPP_ADMIN_TOKEN": "tok-123"})
    assert "hunter2" not in repr(s) and "tok-123" not in repr(s)


@pytest.mark.parametrize(
    ("broker", "bootstrap"),
    [
        ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka://h1:9092;kafka://h2:9093", "h1:9092,h2:9093"),
        ("h1:9092,h2:9092", "h1:9092,h2:9092"),
    ],
)
def test_bootstrap_servers(broker: str, bootstrap: str) -> None:
    assert bootstrap_of(broker) == bootstrap


def test_readme_documents_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [var for var, _, _ in documented() if f"`{var}`" not in text]
    assert not missing, f"README settings table lacks {missing}"


def test_rocksdb_options_are_bounded_and_fresh_per_table() -> None:
    from fraudapp.settings import Settings

    s = Settings.from_env({"FRAUDAPP_ROCKSDB_WRITE_BUFFER_MB": "2", "FRAUDAPP_ROCKSDB_BLOCK_CACHE_MB": "16"})
    options = s.rocksdb_options()
    assert options == {"write_buffer_size": 2 << 20, "max_write_buffer_number": 2, "block_cache_size": 16 << 20}
    assert s.rocksdb_options() is not options  # Faust pops keys from the dict it is given


def test_every_table_store_gets_the_bounded_options() -> None:
    from fraudapp import tables

    for table in (*tables.STATE_TABLES, tables.blacklist):
        assert table.options["write_buffer_size"] == tables.settings.rocksdb_options()["write_buffer_size"], table.name


@pytest.mark.parametrize(
    ("text", "limits"),
    [("", {}), ("ETH=100", {"ETH": 100.0}), (" ETH = 1.5 , USDT=1000000 ,", {"ETH": 1.5, "USDT": 1e6})],
)
def test_large_amount_limits_parse(text: str, limits: dict[str, float]) -> None:
    assert Settings(large_amount_limits=text).large_amount_limit_of == limits


@pytest.mark.parametrize("text", ["ETH", "ETH=", "=5", "ETH=-1", "ETH=lots"])
def test_malformed_large_amount_limits_name_the_setting(text: str) -> None:
    with pytest.raises(SettingsError, match="FRAUDAPP_LARGE_AMOUNT_LIMITS"):
        Settings(large_amount_limits=text).large_amount_limit_of  # noqa: B018 - parsing is the point
