"""Failing fast where the answer is known, and only there.

At open, every bootstrap address refusing the connection (nothing listens) or not resolving
raises BrokerUnreachableError within 5 s with the default connect timeout (30 s), instead of
after all of it. A timeout given explicitly is waited out in full, and so is a network that is
only slow (a listener that accepts the connection and says nothing): there, waiting may help.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

import genesis.streaming as gs
from genesis import errors

#: the issue's bound for a known answer with the default timeout
FAST = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a network that is only slow)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


def _open_seconds(url: str, mode: str = "r", **options) -> tuple[float, errors.BrokerUnreachableError]:
    started = time.monotonic()
    with pytest.raises(errors.BrokerUnreachableError) as failure:
        gs.open(url, mode, **options)
    return time.monotonic() - started, failure.value


@pytest.mark.edit_loop
@pytest.mark.parametrize("mode", ["r", "w"])
@pytest.mark.parametrize("hosts", ["refused", "two refused", "unresolvable"])
def test_a_known_answer_fails_within_seconds(hosts, mode):
    netloc = {
        "refused": f"127.0.0.1:{_free_port()}",
        "two refused": f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}",
        "unresolvable": "no-such-host.invalid:9092",
    }[hosts]
    seconds, err = _open_seconds(f"kafka://{netloc}/small", mode)
    assert seconds < FAST, f"{seconds:.1f} s"  # the default timeout is 30 s
    assert "can be reached" in str(err) and ("refused" in str(err) or "resolve" in str(err))


def test_an_explicit_timeout_is_honoured_in_full():
    seconds, err = _open_seconds(f"kafka://127.0.0.1:{_free_port()}/small", connect_timeout=7)
    assert 7 <= seconds < 7 + FAST and "within 7 s" in str(err)


def test_a_slow_network_gets_the_whole_default_timeout(silent_listener):
    seconds, err = _open_seconds(f"kafka://127.0.0.1:{silent_listener}/small")
    assert 30 <= seconds < 30 + FAST and "within 30 s" in str(err)
