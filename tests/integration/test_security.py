"""A secured broker, for real: SASL_SSL + SCRAM-SHA-512 + ACLs on a one-broker LocalCluster(secure=True).

Who may read what is decided by real ACLs (``LocalCluster.grant``); every failure must surface
from ``gs.open`` or the first iteration as a genesis error that says what to fix, fast, and
without the password anywhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import genesis.streaming as gs
from genesis import errors
from genesis.auth import Auth, Entry, write_entries
from genesis.cluster import LocalCluster
from genesis.cluster._tls import write_ca
from genesis.errors import PortInUseError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOPIC = "secured"
ALERTS = 5
#: connect_timeout of the failing opens below: how long genesis would wait for brokers that do not answer
CONNECT_TIMEOUT = 15
#: "fast": a refusal the broker states is raised at once; a genesis that noticed it only when
#: connect_timeout ran out (the right error, but after 15 s) fails this bound, and a busy
#: 2-core machine has 10 s for a TLS handshake and a SCRAM exchange
FAST = 10


@pytest.fixture(scope="module")
def secure(free_base_port, data_dir: Path) -> Iterator[LocalCluster]:
    """A started one-broker secure cluster with topic ``secured`` holding a few real alerts (written as admin).

    Its directory is not under pytest's basetemp: a pytest session started meanwhile by someone
    else in the repo prunes old ``pytest-N`` directories, and a broker whose files vanish dies.
    """
    parent = Path(tempfile.mkdtemp(prefix="genesis-secure-"))
    directory = parent / "cluster"
    for attempt in range(3):
        cluster = LocalCluster(directory, brokers=1, port=free_base_port(1), secure=True)
        try:
            started = time.monotonic()
            cluster.start()
            print(f"secure cluster started in {time.monotonic() - started:.1f} s")
            break
        except PortInUseError:
            if attempt == 2:
                raise
    try:
        cluster.create_topic(TOPIC, partitions=2)
        packets = [p.read_bytes() for p in sorted((data_dir / "ztf" / "raw").rglob("*.avro"))[:ALERTS]]
        with gs.open(cluster.url(TOPIC), "w", auth=cluster.auth("admin")) as writer:
            for packet in packets:
                writer.write(packet)
        yield cluster
    finally:
        cluster.stop(kill=True)  # throwaway
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_outside_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials from the environment or the user's own file leak into these tests."""
    for name in ("GENESIS_USERNAME", "GENESIS_PASSWORD", "GENESIS_MECHANISM", "GENESIS_CA"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "auth.toml"
    monkeypatch.setenv("GENESIS_AUTH_FILE", str(path))
    return path


def read_all(url: str, auth, **kwargs) -> list:
    with gs.open(url, auth=auth, start_at="earliest", connect_timeout=15, **kwargs) as stream:
        return [alert for _, alert in stream(timeout=10, until_eos=True)]


#: users the tests below add to the module's cluster (``genesis cluster add-user dave``)
ADDED_BY_TESTS = {"dave"}


def test_the_cluster_keeps_its_secrets_private(secure: LocalCluster) -> None:
    # the fixture's users, and those a test of this module adds to the shared cluster (it may run first)
    assert set(secure.credentials) - ADDED_BY_TESTS == {"admin", "alice", "bob"}
    for path in (
        secure.dir / "credentials.json",
        secure.dir / "tls" / "broker.pem",
        secure.dir / "node1" / "server.properties",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert secure.admin_config()["sasl.username"] == "admin"
    assert "password" not in repr(secure) and secure.credentials["admin"] not in repr(secure.auth())
    assert LocalCluster.attach(secure.dir).secure  # status, admin helpers of an attached cluster log in too
    assert TOPIC in LocalCluster.attach(secure.dir).status().topics


def test_user_with_read_acl_consumes(secure: LocalCluster) -> None:
    secure.grant("alice", topic=TOPIC, group_prefix="alice-")
    alerts = read_all(secure.url(TOPIC), secure.auth("alice"))
    assert len(alerts) == ALERTS and all("candid" in a for a in alerts)


def test_user_without_acl_gets_an_authorization_error_naming_the_topic(secure: LocalCluster) -> None:
    started = time.monotonic()
    with pytest.raises(errors.AuthorizationError, match=f"topic '{TOPIC}'"):
        gs.open(secure.url(TOPIC), auth=secure.auth("bob"), connect_timeout=CONNECT_TIMEOUT)
    assert time.monotonic() - started < FAST


def test_user_without_group_acl_gets_an_error_naming_the_group(secure: LocalCluster) -> None:
    secure.create_topic("bob-only", partitions=1)
    secure.grant("bob", topic="bob-only")
    with gs.open(secure.url("bob-only"), auth=secure.auth("bob"), start_at="earliest") as stream:
        # no clock needed: the loop's timeout (20 s) would end it quietly, so an error at all
        # means the refusal was reported rather than waited out
        with pytest.raises(errors.AuthorizationError, match=rf"group '{stream.group}'"):
            for _ in stream(timeout=20):
                pass


def test_wrong_password_is_a_clear_login_error_without_the_password(
    secure: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-" + uuid.uuid4().hex
    login = Auth("alice", wrong, ca=str(secure.ca_file))
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(errors.AuthenticationError) as info:
        gs.open(secure.url(TOPIC), auth=login, connect_timeout=CONNECT_TIMEOUT)
    assert time.monotonic() - started < FAST
    message = str(info.value)
    assert "user name" in message and "password" in message and "SCRAM-SHA-512" in message
    for text in (message, repr(info.value), repr(login), str(login), caplog.text):
        assert wrong not in text
    assert wrong not in repr(info.value.__context__) and wrong not in repr(info.value.__cause__)


def test_password_not_in_a_streams_repr_or_progress(secure: LocalCluster, capsys) -> None:
    login = secure.auth("alice")
    secure.grant("alice", topic=TOPIC, group_prefix="alice-")
    with gs.open(secure.url(TOPIC), auth=login, start_at="earliest") as stream:
        assert login.password not in repr(stream) and login.password not in str(stream)
        list(stream(timeout=10, until_eos=True, progress=True))
    captured = capsys.readouterr()
    assert login.password not in captured.out + captured.err


def test_untrusted_ca_is_a_tls_error_naming_the_ca_file(secure: LocalCluster, tmp_path: Path) -> None:
    other = write_ca(tmp_path / "other-ca.pem")
    started = time.monotonic()
    with pytest.raises(errors.TLSError, match=f"the CA file {other}"):
        gs.open(
            secure.url(TOPIC),
            auth=Auth("alice", secure.credentials["alice"], ca=str(other)),
            connect_timeout=CONNECT_TIMEOUT,
        )
    assert time.monotonic() - started < FAST
    with pytest.raises(errors.TLSError, match="system's CA store"):
        gs.open(secure.url(TOPIC), auth=Auth("alice", secure.credentials["alice"]))


def test_plaintext_client_of_a_secure_broker_is_told_within_the_timeout(secure: LocalCluster) -> None:
    started = time.monotonic()
    with pytest.raises(errors.BrokerUnreachableError, match="genesis auth add") as info:
        gs.open(secure.url(TOPIC), connect_timeout=3)
    # the spec: within connect_timeout (3 s); 5 s more for making and closing the client
    assert time.monotonic() - started < 3 + 5
    assert secure.bootstrap_servers in str(info.value)


@pytest.mark.edit_loop
def test_credentials_file_is_used_and_names_the_random_group(
    secure: LocalCluster, no_outside_credentials: Path
) -> None:
    secure.grant("alice", topic=TOPIC, group_prefix="alice-")
    host, port = secure.bootstrap_servers.split(",")[0].split(":")
    write_entries([Entry(host, secure.auth("alice"), int(port))], no_outside_credentials)
    with gs.open(secure.url(TOPIC), start_at="earliest") as stream:
        assert stream.group.startswith("alice-")
        assert len([a for _, a in stream(timeout=10, until_eos=True)]) == ALERTS


def test_environment_credentials(secure: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    secure.grant("alice", topic=TOPIC, group_prefix="alice-")
    monkeypatch.setenv("GENESIS_USERNAME", "alice")
    monkeypatch.setenv("GENESIS_PASSWORD", secure.credentials["alice"])
    monkeypatch.setenv("GENESIS_CA", str(secure.ca_file))
    assert len(read_all(secure.url(TOPIC), None)) == ALERTS


def genesis_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genesis", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        env=os.environ.copy(),
    )


def test_auth_cli_then_doctor_on_the_secure_cluster(secure: LocalCluster, no_outside_credentials: Path) -> None:
    secure.grant("alice", topic=TOPIC, group_prefix="alice-")
    first = secure.bootstrap_servers.split(",")[0]
    password = secure.credentials["alice"]
    added = genesis_cli(
        "auth",
        "add",
        first,
        "--username",
        "alice",
        "--ca",
        str(secure.ca_file),
        "--password-stdin",
        stdin=password + "\n",
    )
    assert added.returncode == 0, added.stderr
    listed = genesis_cli("auth", "list")
    assert "alice" in listed.stdout and password not in listed.stdout + listed.stderr

    ok = genesis_cli("doctor", secure.url(TOPIC))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 9, ok.stdout  # the decoder, then the cluster's 8
    assert str(secure.ca_file) in next(line for line in lines if "TLS handshake" in line)
    assert "as alice" in next(line for line in lines if "login" in line)
    assert password not in ok.stdout + ok.stderr

    denied = genesis_cli("doctor", secure.url(TOPIC, group="bob-team"))
    assert denied.returncode == 1
    assert "FAILED  group usable" in denied.stdout and "'bob-team'" in denied.stdout

    genesis_cli("auth", "remove", first)
    anonymous = genesis_cli("doctor", secure.url(TOPIC), "--timeout", "3")
    assert anonymous.returncode == 1
    assert "speaks TLS" in anonymous.stdout and "genesis auth add" in anonymous.stdout


def test_doctor_reports_a_wrong_password_at_the_login_step(secure: LocalCluster) -> None:
    from genesis.doctor import run

    checks = {c.name: c for c in run(secure.url(TOPIC), auth=Auth("alice", "wrong", ca=str(secure.ca_file)))}
    assert checks["TLS handshake"].status == "ok"
    assert checks["login"].status == "FAILED" and "password" in checks["login"].detail
    assert checks["can read"].status == "skipped"


def test_doctor_reports_the_untrusted_ca_at_the_tls_step(secure: LocalCluster, tmp_path: Path) -> None:
    from genesis.doctor import run

    other = write_ca(tmp_path / "other.pem")
    checks = {c.name: c for c in run(secure.url(TOPIC), auth=Auth("alice", "x", ca=str(other)))}
    assert checks["TLS handshake"].status == "FAILED" and str(other) in checks["TLS handshake"].detail


# ------------------------------------------------------------ users and access from the command line


def test_cluster_add_user_then_grant_lets_the_new_user_read(secure: LocalCluster) -> None:
    added = genesis_cli("cluster", "add-user", "carol", "--dir", str(secure.dir))
    assert added.returncode == 0, added.stderr
    (line,) = [line for line in added.stdout.splitlines() if line.startswith("password:")]
    password = line.split()[1]
    assert password == secure.credentials["carol"] and "(shown once)" in line
    carol = Auth("carol", password, ca=str(secure.ca_file))
    with pytest.raises(errors.AuthorizationError, match=f"topic '{TOPIC}'"):  # a login, but no access yet
        gs.open(secure.url(TOPIC), auth=carol, connect_timeout=CONNECT_TIMEOUT)
    granted = genesis_cli(
        "cluster", "grant", "carol", "--topic", TOPIC, "--group-prefix", "carol-", "--dir", str(secure.dir)
    )
    assert granted.returncode == 0, granted.stderr
    assert "carol may now read,describe topic 'secured' and the groups carol-*" in granted.stdout
    assert len(read_all(secure.url(TOPIC), carol)) == ALERTS
    again = genesis_cli("cluster", "add-user", "carol", "--dir", str(secure.dir))
    assert again.returncode == 1 and "already has a user 'carol'" in again.stderr


def test_cluster_add_user_takes_the_password_from_stdin(secure: LocalCluster) -> None:
    added = genesis_cli(
        "cluster", "add-user", "dave", "--password-stdin", "--dir", str(secure.dir), stdin="dave-s3cret\n"
    )
    assert added.returncode == 0, added.stderr
    assert "dave-s3cret" not in added.stdout and "password:" not in added.stdout
    secure.grant("dave", topic=TOPIC, group_prefix="dave-")
    assert len(read_all(secure.url(TOPIC), Auth("dave", "dave-s3cret", ca=str(secure.ca_file)))) == ALERTS


def test_grant_errors_say_what_to_do(secure: LocalCluster) -> None:
    nobody = genesis_cli("cluster", "grant", "erin", "--topic", TOPIC, "--dir", str(secure.dir))
    assert nobody.returncode == 1 and "genesis cluster add-user erin" in nobody.stderr
    bad_op = genesis_cli("cluster", "grant", "alice", "--topic", TOPIC, "--ops", "read,peek", "--dir", str(secure.dir))
    assert bad_op.returncode == 1 and "unknown ACL operation(s) PEEK" in bad_op.stderr


def test_creating_a_topic_without_the_right_is_an_authorization_error(secure: LocalCluster) -> None:
    env = {**os.environ, "GENESIS_USERNAME": "bob", "GENESIS_PASSWORD": secure.credentials["bob"]}
    env["GENESIS_CA"] = str(secure.ca_file)
    done = subprocess.run(
        [sys.executable, "-m", "genesis", "topics", "create", secure.url("bobs-topic")],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert done.returncode == 1
    assert "logged in, but not allowed" in done.stderr and "Traceback" not in done.stderr
    created = subprocess.run(  # the super user may
        [sys.executable, "-m", "genesis", "topics", "create", secure.url("admins-topic"), "--partitions", "2"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**env, "GENESIS_USERNAME": "admin", "GENESIS_PASSWORD": secure.credentials["admin"]},
    )
    assert created.returncode == 0, created.stderr
    assert "admins-topic" in LocalCluster.attach(secure.dir).status().topics
