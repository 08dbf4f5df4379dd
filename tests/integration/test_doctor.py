"""``genesis doctor`` against the real shared cluster: all checks pass, and a wrong topic or a
closed port fails at the right step with a fix. (The secure cases are in test_security.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genesis import Decoder
from genesis.doctor import FAILED, OK, SKIPPED, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def no_outside_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENESIS_USERNAME", "GENESIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENESIS_AUTH_FILE", str(tmp_path / "auth.toml"))


def statuses(url: str, **kwargs) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in run(url, **kwargs)}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free once closed: nothing listens there


def test_all_checks_pass_on_the_demo_topic(demo) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "genesis", "doctor", demo.url("small")], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    names = [
        "decoder",
        "URL parses",
        "hosts resolve",
        "ports accept TCP",
        "TLS handshake",
        "login",
        "topic exists",
        "can read",
        "group usable",
    ]
    assert [line.split()[0] for line in lines] == [OK] * len(names)
    assert all(name in line for name, line in zip(names, lines))
    assert "read small[" in result.stdout and "plaintext" in result.stdout
    assert ("compiled" in lines[0]) == Decoder().compiled  # which decoder reads the alerts, and why


def test_named_group_is_the_urls_group(demo) -> None:
    checks = statuses(demo.url("small", group="doctor-test"))
    assert checks["group usable"] == (OK, "the URL's group 'doctor-test'")


@pytest.mark.edit_loop
def test_unknown_topic_lists_similar(demo) -> None:
    checks = statuses(demo.url("smal"))
    status, detail = checks["topic exists"]
    assert status == FAILED and "Did you mean small" in detail
    assert checks["login"][0] == OK and checks["can read"][0] == SKIPPED


def test_closed_port_fails_at_tcp_fast(demo) -> None:
    port = closed_port()
    checks = statuses(f"kafka://127.0.0.1:{port}/small")
    status, detail = checks["ports accept TCP"]
    # "refused", not "timed out": the port answered at once and the check said so (no clock needed)
    assert status == FAILED and f"127.0.0.1:{port}" in detail and "refused" in detail
    assert checks["hosts resolve"][0] == OK and checks["login"][0] == SKIPPED


def test_bad_url_and_unknown_host() -> None:
    assert statuses("kafka://localhost")["URL parses"][0] == FAILED
    checks = statuses("kafka://no-such-host.invalid/small")
    assert checks["hosts resolve"][0] == FAILED and "no-such-host.invalid" in checks["hosts resolve"][1]


def test_one_dead_bootstrap_broker_is_noted_not_fatal(demo) -> None:
    port = closed_port()
    url = f"kafka://{demo.bootstrap_servers.split(',')[0]},127.0.0.1:{port}/small"
    status, detail = statuses(url)["ports accept TCP"]
    assert status == OK and f"not answering: 127.0.0.1:{port}" in detail


def test_exit_status_is_1_on_failure(demo) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "genesis", "doctor", demo.url("no-such-topic")],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1 and "FAILED  topic exists" in result.stdout
