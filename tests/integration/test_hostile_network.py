"""Robustness to transport failures: every client connection goes through a TCP proxy that fails.

A private 3-broker cluster gets an extra listener advertised at the proxy's ports, so clients
that bootstrap through the proxy are told to reach every broker through it too (no connection
bypasses it; replication keeps the brokers' own listener). The proxy drops every connection,
black-holes all traffic for 20 s (bytes vanish, no reset: the consumer's session expires
meanwhile), or throttles to 1 MB/s. The stream recovers with no user code and loses nothing;
the proxy's counters show it carried the fetched bytes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from helpers import fault_row, record
from proxy import Proxy

import genesis.streaming as gs
from genesis.cluster import Listener
from genesis.cluster._process import port_free
from genesis.demo import demo_messages
from genesis.errors import PortInUseError

pytestmark = pytest.mark.slow

ALERTS = 600  # ~50 MB of real-derived alerts (the first of medium)


@pytest.fixture(scope="module")
def proxied(cluster_starter, free_extra_ports, tmp_path_factory) -> Iterator[tuple[object, Proxy, str, set[int]]]:
    """A private cluster reachable through a proxy, a topic of real-derived alerts, and their candids."""
    cluster, proxy = _start_proxied(cluster_starter, free_extra_ports, tmp_path_factory)
    front = [f for f, _ in proxy.pairs]
    try:
        topic = "hostile"
        cluster.create_topic(topic, partitions=3)
        values = [v for v, _ in zip(demo_messages("medium"), range(ALERTS))]
        with gs.open(cluster.url(topic), "w") as writer:  # the brokers' own listener, not the proxy
            for value in values:
                writer.write(value)
        from genesis import Decoder

        candids = {a["candid"] for v in values for a in Decoder().decode(v)}
        assert len(candids) == ALERTS
        yield cluster, proxy, ",".join(f"127.0.0.1:{p}" for p in front), candids
    finally:
        proxy.close()
        cluster.stop(kill=True)  # throwaway


def _start_proxied(cluster_starter, free_extra_ports, tmp_path_factory, attempts: int = 5) -> tuple[object, Proxy]:
    """The cluster with its proxied listener, on ports found free; new ones if another worker's
    cluster or proxy takes them first."""
    for _ in range(attempts):
        base = free_extra_ports(13)
        listen, front = (base, base + 1, base + 2), (base + 10, base + 11, base + 12)
        if not all(port_free(p) for p in listen + front):
            continue
        try:
            cluster = cluster_starter(
                tmp_path_factory.mktemp("hostile") / "cluster",
                3,
                listeners=[Listener("EXTERNAL", listen, advertised=front)],
            )
        except PortInUseError:
            continue
        try:
            return cluster, Proxy(list(zip(front, listen)))
        except OSError:  # a front port was taken meanwhile
            cluster.stop(kill=True)
    raise RuntimeError(f"no free ports for the proxied cluster in {attempts} attempts")


def _read(bootstrap: str, fault, *, timeout: float = 60) -> tuple[list[int], dict]:
    """Every alert of the topic through the proxy, while ``fault(n, stream)`` acts after n alerts."""
    group = f"hostile-{uuid.uuid4().hex[:8]}"
    got: list[int] = []
    with gs.open(f"kafka://{group}@{bootstrap}/hostile", start_at="earliest") as stream:
        for n, (_, alert) in enumerate(stream(until_eos=True, timeout=timeout), 1):
            got.append(alert["candid"])
            fault(n, stream)
        stats = stream.stats
    return got, {"bytes": stats.bytes, "received": stats.received}


@pytest.mark.edit_loop
def test_every_connection_dropped_three_times(proxied):
    cluster, proxy, bootstrap, candids = proxied
    before = proxy.to_client
    drops: list[int] = []
    due = [150]

    def drop(n: int, stream) -> None:
        # a user doing 5 ms of work per alert; every 150 alerts, cut whatever connections are open
        # (right after a cut the client may hold prefetched alerts and not have reconnected yet:
        # then try again at the next alert, so that every counted drop cut live connections)
        time.sleep(0.005)
        if n >= due[0] and (cut := proxy.drop_all()):
            drops.append(cut)
            due[0] = n + 150

    got, stats = _read(bootstrap, drop)
    record("abuse-results", fault_row("every client connection dropped (proxy)", len(drops), candids, got))
    assert len(drops) >= 3  # connections existed and were cut, three times or more
    assert set(got) == candids  # nothing lost (duplicates allowed: at least once)
    assert proxy.to_client - before >= stats["bytes"]  # the alerts came through the proxy


def test_traffic_black_holed_for_20_seconds(proxied):
    cluster, proxy, bootstrap, candids = proxied

    def hole(n: int, stream: object) -> None:
        if n == 200:
            proxy.black_hole(True)
            threading.Timer(20.0, proxy.black_hole, args=(False,)).start()

    started = time.monotonic()
    got, _ = _read(bootstrap, hole, timeout=90)
    seconds = round(time.monotonic() - started, 1)
    record("abuse-results", fault_row("all traffic black-holed 20 s (proxy)", 1, candids, got, seconds=seconds))
    assert set(got) == candids


def test_throttled_to_one_megabyte_per_second(proxied):
    cluster, proxy, bootstrap, candids = proxied
    proxy.throttle(1e6)
    try:
        started, before = time.monotonic(), proxy.to_client
        got, stats = _read(bootstrap, lambda n, s: None, timeout=90)
        seconds = time.monotonic() - started
    finally:
        proxy.throttle(None)
    rate = stats["bytes"] / seconds
    row = fault_row("throttled to 1 MB/s (proxy)", 1, candids, got, seconds=round(seconds, 1))
    record("abuse-results", {**row, "MB/s": round(rate / 1e6, 2)})
    assert set(got) == candids
    assert proxy.to_client - before >= stats["bytes"] and rate >= 0.5e6, f"{rate / 1e6:.2f} MB/s of alerts"
