"""Credentials without Kafka: Auth, the credentials file, `genesis auth`, and the secure cluster's
configuration. (How login, TLS and ACL failures are translated is in test_kafka.py.)"""

from __future__ import annotations

import io
import os
import stat
import tomllib
from pathlib import Path

import pytest

from genesis import auth as gauth
from genesis import errors
from genesis._kafka import random_group_id, resolve_auth, trust_of
from genesis._urls import parse_url
from genesis.cli import main
from genesis.cluster import _config, _tls

pytestmark = pytest.mark.timeout(60)

SECRET = 's3cr3t-Pa55"wo\\rd'


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own credentials file path and no GENESIS_* credentials from outside."""
    for name in ("GENESIS_USERNAME", "GENESIS_PASSWORD", "GENESIS_MECHANISM", "GENESIS_CA", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "cfg" / "auth.toml"
    monkeypatch.setenv("GENESIS_AUTH_FILE", str(path))
    return path


@pytest.fixture
def ca(tmp_path: Path) -> str:
    return str(_tls.write_ca(tmp_path / "ca.pem"))


# ------------------------------------------------------------------ Auth
def test_password_never_in_repr_or_str(ca: str) -> None:
    for a in (gauth.Auth("alice", SECRET, ca=ca), gauth.Auth.oidc("client", SECRET, "https://idp/token")):
        for text in (repr(a), str(a), f"{a}", repr([a])):
            assert SECRET not in text and "***" in text


def test_scram_config(ca: str) -> None:
    conf = gauth.Auth("alice", SECRET, ca=ca).librdkafka_config()
    assert conf == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": SECRET,
        "ssl.ca.location": ca,
    }
    plain = gauth.Auth("bob", "pw", mechanism="plain", ssl=False).librdkafka_config()
    assert plain["security.protocol"] == "SASL_PLAINTEXT" and plain["sasl.mechanism"] == "PLAIN"
    assert "ssl.ca.location" not in plain


def test_oidc_config_uses_librdkafkas_own_token_fetching() -> None:
    conf = gauth.Auth.oidc(
        "my-client", SECRET, "https://auth.example.org/oauth2/token", scope="gcn.nasa.gov/kafka-public-consumer"
    ).librdkafka_config()
    assert conf == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": "my-client",
        "sasl.oauthbearer.client.secret": SECRET,
        "sasl.oauthbearer.token.endpoint.url": "https://auth.example.org/oauth2/token",
        "sasl.oauthbearer.scope": "gcn.nasa.gov/kafka-public-consumer",
    }


def test_oidc_config_is_accepted_by_librdkafka() -> None:
    from confluent_kafka import Consumer  # builds the client only; nothing is contacted before a poll

    conf = gauth.Auth.oidc("c", SECRET, "https://auth.example.org/token").librdkafka_config()
    Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "g", **conf}).close()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(username="a", password="p", mechanism="GSSAPI"), "unknown SASL mechanism"),
        (dict(username="", password="p"), "user name"),
        (dict(username="a", password=""), "empty password"),
        (dict(username="a", password="p", mechanism="OAUTHBEARER"), "token_url"),
        (dict(username="a", password="p", ca="/nonexistent/ca.pem"), "does not exist"),
    ],
)
def test_bad_credentials_are_config_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(errors.ConfigError, match=words):
        gauth.Auth(**kwargs)


def test_trust_in_words(ca: str) -> None:
    assert gauth.Auth("a", "p", ca=ca).trust == f"CA file {ca}"
    assert gauth.Auth("a", "p").trust == "the system's CA store"
    assert trust_of({"security.protocol": "SASL_SSL"}).startswith("the system's CA store")
    assert trust_of({"security.protocol": "SASL_SSL", "ssl.ca.location": ca}) == f"the CA file {ca}"
    assert trust_of({"security.protocol": "SASL_PLAINTEXT"}) is None


# ------------------------------------------------------------------ the credentials file
def add(host: str, user: str, port: int | None = None, **kw) -> None:
    gauth.add_entry(gauth.Entry(host, gauth.Auth(user, SECRET, **kw), port))


def test_file_is_written_private_and_round_trips(isolated: Path, ca: str) -> None:
    add("kafka.example.org", "alice", ca=ca)
    add("127.0.0.1", "bob", port=9092, ssl=False, mechanism="SCRAM-SHA-256")
    assert stat.S_IMODE(isolated.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated.parent.stat().st_mode) == 0o700
    assert len(tomllib.loads(isolated.read_text())["auth"]) == 2  # valid TOML, also with quotes and backslashes
    alice, bob = gauth.read_entries()
    assert (alice.host, alice.port, alice.auth) == ("kafka.example.org", None, gauth.Auth("alice", SECRET, ca=ca))
    assert (bob.port, bob.auth.ssl, bob.auth.mechanism, bob.auth.password) == (9092, False, "SCRAM-SHA-256", SECRET)


def test_lookup_by_host_then_port(isolated: Path) -> None:
    add("broker.example.org", "anyport")
    add("broker.example.org", "port9093", port=9093)
    assert gauth.lookup(parse_url("kafka://broker.example.org/t")).username == "anyport"
    assert gauth.lookup(parse_url("kafka://BROKER.example.org:9093/t")).username == "port9093"
    assert gauth.lookup(parse_url("kafka://other.example.org/t")) is None
    found = gauth.find(parse_url("kafka://x.org,broker.example.org:9093/t"))
    assert found.auth.username == "port9093" and str(isolated) in found.source


def test_group_in_url_does_not_select_credentials(isolated: Path) -> None:
    add("h.example.org", "alice")
    spec = parse_url("kafka://bob-team@h.example.org/t")
    assert spec.group == "bob-team" and gauth.lookup(spec).username == "alice"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    add("h.example.org", "fromfile")
    monkeypatch.setenv("GENESIS_USERNAME", "fromenv")
    monkeypatch.setenv("GENESIS_PASSWORD", SECRET)
    assert gauth.lookup(parse_url("kafka://h.example.org/t")).username == "fromenv"


def test_explicit_auth_beats_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    add("h.example.org", "fromfile")
    spec = parse_url("kafka://h.example.org/t")
    mine = gauth.Auth("mine", SECRET)
    assert resolve_auth(mine, spec) is mine
    assert resolve_auth(None, spec).username == "fromfile"
    assert random_group_id(resolve_auth(None, spec).username).startswith("fromfile-")


def test_xdg_config_home_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GENESIS_AUTH_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert gauth.auth_file() == tmp_path / "xdg" / "genesis" / "auth.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert gauth.auth_file() == tmp_path / "home" / ".config" / "genesis" / "auth.toml"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_file_readable_by_others_is_refused(isolated: Path, mode: int) -> None:
    add("h.example.org", "alice")
    os.chmod(isolated, mode)
    with pytest.raises(errors.ConfigError, match=rf"chmod 600 {isolated}") as info:
        gauth.lookup(parse_url("kafka://h.example.org/t"))
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("[[auth]]\nhost = 'h'\nusername = 'u'\n", "missing password"),
        ("[[auth]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\npasword = 'typo'\n", "unknown keys pasword"),
        ("[[auth]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\nport = 99999\n", "port"),
        ("[[auth]\n", "not valid TOML"),
    ],
)
def test_malformed_file_names_the_problem(isolated: Path, text: str, words: str) -> None:
    isolated.parent.mkdir(parents=True)
    isolated.write_text(text)
    os.chmod(isolated, 0o600)
    with pytest.raises(errors.ConfigError, match=words):
        gauth.read_entries()


def test_ambiguous_entries_are_refused(isolated: Path) -> None:
    isolated.parent.mkdir(parents=True)
    isolated.write_text(
        "[[auth]]\nhost='h'\nusername='a'\npassword='p'\n[[auth]]\nhost='h'\nusername='b'\npassword='q'\n"
    )
    os.chmod(isolated, 0o600)
    with pytest.raises(errors.ConfigError, match="several logins"):
        gauth.lookup(parse_url("kafka://h/t"))


# ------------------------------------------------------------------ genesis auth
def test_cli_add_list_remove(
    isolated: Path, ca: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["auth", "add", "kafka.example.org:9093", "--username", "alice", "--password-stdin", "--ca", ca]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("other\n"))
    assert (
        main(
            [
                "auth",
                "add",
                "gcn.example.org",
                "--username",
                "client",
                "--password-stdin",
                "--mechanism",
                "oauthbearer",
                "--token-url",
                "https://idp/token",
            ]
        )
        == 0
    )
    [alice, oidc] = gauth.read_entries()
    assert (alice.host, alice.port, alice.auth.password, alice.auth.ca) == ("kafka.example.org", 9093, SECRET, ca)
    assert oidc.auth.mechanism == "OAUTHBEARER" and oidc.auth.token_url == "https://idp/token"
    capsys.readouterr()
    assert main(["auth", "list"]) == 0
    out = capsys.readouterr().out
    assert "kafka.example.org:9093" in out and "alice" in out and "OAUTHBEARER" in out
    assert SECRET not in out and "other" not in out
    assert main(["auth", "remove", "kafka.example.org"]) == 0
    assert [e.host for e in gauth.read_entries()] == ["gcn.example.org"]
    assert main(["auth", "remove", "kafka.example.org"]) == 1
    assert "no login for kafka.example.org" in capsys.readouterr().err


def test_cli_add_replaces_and_needs_a_password_source(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for user in ("first", "second"):
        monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
        main(["auth", "add", "h.example.org", "--username", user, "--password-stdin"])
    assert [e.auth.username for e in gauth.read_entries()] == ["second"]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, no --password-stdin
    assert main(["auth", "add", "h.example.org", "--username", "x"]) == 1
    assert "--password-stdin" in capsys.readouterr().err


# ------------------------------------------------------------------ the secure cluster's configuration
def test_secure_node_properties(tmp_path: Path) -> None:
    security = _config.Security(tmp_path / "ca.pem", tmp_path / "broker.pem", "adminpw")
    assert "adminpw" not in repr(security)
    props = _config.server_properties(_config.Layout(brokers=3, port=19092), 2, tmp_path / "data", security)
    assert props["listeners"] == "CLIENT://127.0.0.1:19093,CONTROLLER://127.0.0.1:20093"
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:19093"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,CLIENT:SASL_SSL"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["sasl.enabled.mechanisms"] == props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert 'username="admin" password="adminpw"' in props["listener.name.client.scram-sha-512.sasl.jaas.config"]
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:admin;User:ANONYMOUS"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    plain = _config.server_properties(_config.Layout(brokers=3, port=19092), 2, tmp_path / "data")
    assert "authorizer.class.name" not in plain and plain["listeners"].startswith("PLAINTEXT://")


def test_scram_format_arguments() -> None:
    assert _config.scram_format_arguments({"admin": "a-1", "alice": "b_2"}) == [
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=a-1]",
        "--add-scram",
        "SCRAM-SHA-512=[name=alice,password=b_2]",
    ]
    with pytest.raises(ValueError):
        _config.scram_format_arguments({"alice": "has,comma"})


def test_certificates(tmp_path: Path) -> None:
    from cryptography import x509

    files = _tls.create(tmp_path / "tls")
    assert stat.S_IMODE(files.broker.stat().st_mode) == 0o600
    pem = files.broker.read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8, what Kafka's PEM store reads
    [leaf, issuer] = x509.load_pem_x509_certificates(pem.split("-----END PRIVATE KEY-----")[1].encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.issuer == issuer.subject == x509.load_pem_x509_certificate(files.ca.read_bytes()).subject
    assert not list(tmp_path.rglob("*ca*key*"))  # the CA key is never written
