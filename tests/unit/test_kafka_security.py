"""Kafka security settings: one set of options for every client, the local broker's config."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from fraudapp.app import broker_credentials
from fraudapp.kafkaconn import client_options, describe
from fraudapp.settings import Settings
from fraudapp.tooling import localkafka

SECURE = {
    "FRAUDAPP_BROKER": "kafka://127.0.0.1:9093",
    "FRAUDAPP_SASL_USERNAME": "alice",
    "FRAUDAPP_SASL_PASSWORD": "hunter2-pw",
}


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("PLAINTEXT", ""), ("SASL_PLAINTEXT", "PLAIN"), ("SASL_PLAINTEXT", ""), ("SASL_SSL", "SCRAM-SHA-256"),
     ("SASL_SSL", "SCRAM-SHA-512"), ("SSL", "")],
)
def test_faust_app_and_own_clients_get_the_same_options(protocol: str, mechanism: str) -> None:
    """The worker's Faust clients (app.broker_credentials) and fraudapp's own aiokafka
    clients (Settings.kafka_client_options) connect the same way."""
    s = Settings.from_env({**SECURE, "FRAUDAPP_SECURITY_PROTOCOL": protocol, "FRAUDAPP_SASL_MECHANISM": mechanism})
    ours = s.kafka_client_options()
    assert ours.pop("bootstrap_servers") == "127.0.0.1:9093"
    faust_side = dict(credentials_to_aiokafka_auth(broker_credentials(s)))
    if protocol == "PLAINTEXT":
        assert ours == {} and faust_side == {"security_protocol": "PLAINTEXT"}
        return
    for options in (ours, faust_side):
        context = options.pop("ssl_context", None)
        assert isinstance(context, ssl.SSLContext) == protocol.endswith("SSL")
        if context is not None:
            assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert faust_side == ours
    if protocol.startswith("SASL"):
        assert ours["sasl_mechanism"] == (mechanism or "PLAIN")
        assert ours["sasl_plain_username"] == "alice"


def test_describe_names_the_user_never_the_password() -> None:
    s = Settings.from_env({**SECURE, "FRAUDAPP_SECURITY_PROTOCOL": "SASL_SSL", "FRAUDAPP_SASL_MECHANISM": "SCRAM-SHA-256"})
    text = describe(s.kafka_client_options())
    assert text == "127.0.0.1:9093 (SASL_SSL, SCRAM-SHA-256 as alice)"
    assert describe("h:1") == "h:1" and client_options("h:1") == {"bootstrap_servers": "h:1"}


def test_security_defaults_and_validation() -> None:
    plain = localkafka.Security.create("sasl_plaintext")
    assert (plain.protocol, plain.mechanism, plain.username) == ("SASL_PLAINTEXT", "PLAIN", "fraudapp")
    assert len(plain.password) >= 20 and plain.password != plain.broker_password
    assert plain.password not in repr(plain) and plain.broker_password not in repr(plain)
    assert localkafka.Security.create("SASL_SSL").mechanism == "SCRAM-SHA-256"
    assert localkafka.Security.create("PLAINTEXT").users() == {}
    with pytest.raises(localkafka.KafkaError, match="not one of"):
        localkafka.Security.create("KERBEROS")
    with pytest.raises(localkafka.KafkaError, match="not one of"):
        localkafka.Security.create("SASL_SSL", "GSSAPI")
    with pytest.raises(localkafka.KafkaError, match="reserved"):
        localkafka.Security.create("SASL_SSL", username=localkafka.BROKER_USER)
    with pytest.raises(localkafka.KafkaError, match="may not contain") as err:
        localkafka.Security.create("SASL_SSL", password='pa"ss')
    assert 'pa"ss' not in str(err.value)


def test_secured_server_properties_and_client_env(tmp_path: Path) -> None:
    security = localkafka.Security.create("SASL_SSL", "SCRAM-SHA-512", "alice", "pw-123")
    node = localkafka.Node(0, 1, 19093, 19094, tmp_path / "node-1")
    cluster = localkafka.Cluster(tmp_path, [node], "cid", "3.9.1", security=security)
    props = dict(line.split("=", 1) for line in localkafka._server_properties(node, cluster).splitlines())
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19093,CONTROLLER://127.0.0.1:19094"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert 'user_alice="pw-123"' in props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    scram = localkafka._scram_arguments(security)
    assert "SCRAM-SHA-512=[name=alice,password=pw-123]" in scram and len(scram) == 2 * 2 * 2
    env = cluster.client_env()
    assert env == {
        "FRAUDAPP_BROKER": "kafka://127.0.0.1:19093",
        "FRAUDAPP_SECURITY_PROTOCOL": "SASL_SSL",
        "FRAUDAPP_SASL_MECHANISM": "SCRAM-SHA-512",
        "FRAUDAPP_SASL_USERNAME": "alice",
        "FRAUDAPP_SASL_PASSWORD": "pw-123",
        "FRAUDAPP_SSL_CAFILE": str(tmp_path / "tls" / "ca.pem"),
    }
    assert security.redact("x pw-123 y " + security.broker_password) == "x *** y ***"
    # Recorded for stop/status/restart, readable by the owner only.
    cluster._save()
    assert localkafka.load(tmp_path).security == security
    assert (tmp_path / "cluster.json").stat().st_mode & 0o077 == 0
    assert (tmp_path / "client.env").stat().st_mode & 0o077 == 0
    assert "FRAUDAPP_SASL_PASSWORD=pw-123" in (tmp_path / "client.env").read_text()


def test_plaintext_properties_are_unchanged(tmp_path: Path) -> None:
    node = localkafka.Node(0, 1, 19093, 19094, tmp_path / "node-1")
    cluster = localkafka.Cluster(tmp_path, [node], "cid", "3.9.1")
    text = localkafka._server_properties(node, cluster)
    assert "listeners=PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19094\n" in text
    assert "sasl" not in text and "ssl" not in text
    assert localkafka._scram_arguments(cluster.security) == []
