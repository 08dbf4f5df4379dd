"""The local Kafka cluster, run for real: brokers, durability across a killed broker, the CLI, and its errors.

Tests that break brokers use private clusters (``fresh_cluster``, or the CLI's own) and come
first, so that, run alone, this file has at most one cluster up at a time. Messages are real
alert packets from the shared data set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from genesis.cluster import LocalCluster
from genesis.cluster._state import STATE_FILE
from genesis.errors import ClusterError, PortInUseError, ToolMissingError

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def alerts(data_dir: Path) -> list[bytes]:
    """Raw ZTF alert packets (Avro container files), used as message values."""
    packets = [p.read_bytes() for p in sorted((data_dir / "ztf" / "raw").rglob("*.avro"))]
    assert len(packets) >= 10
    return packets


def produce(
    bootstrap: str, topic: str, values: list[bytes], start: int = 0, flush: bool = True
) -> tuple[Producer, list]:
    """Write ``values`` with acks=all, keys ``start..``; return the producer and the delivery errors list."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
        }
    )
    errors: list = []

    def report(err, msg) -> None:
        if err is not None:
            errors.append((msg.key(), err))

    for i, value in enumerate(values, start):
        producer.produce(topic, key=str(i).encode(), value=value, on_delivery=report)
        producer.poll(0)
    if flush:
        assert producer.flush(60) == 0
    return producer, errors


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> dict[bytes, bytes]:
    """Read ``topic`` from the beginning with a new group until ``expected`` distinct keys arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: dict[bytes, bytes] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            seen[msg.key()] = msg.value()
    finally:
        consumer.close()
    return seen


def wait_for(what: str, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def jvms_of(directory: Path) -> list[str]:
    """``pgrep -af`` lines of Kafka JVMs whose configuration lies in ``directory``."""
    out = subprocess.run(["pgrep", "-af", f"kafka.Kafka {directory}/"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def genesis_cli() -> list[str]:
    """How to run ``genesis``: ``python -m genesis``, or only the cluster parser while other subcommands are missing."""
    if importlib.util.find_spec("genesis.cli.load") is not None:
        return [sys.executable, "-m", "genesis"]
    runner = (
        "import argparse, sys; from genesis.cli import cluster; "
        "p = argparse.ArgumentParser(prog='genesis'); s = p.add_subparsers(required=True); "
        "cluster.register(s); a = p.parse_args(); sys.exit(a.func(a))"
    )
    return [sys.executable, "-c", runner]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([*genesis_cli(), "cluster", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"genesis cluster {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# --------------------------------------------------- clusters of their own
@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_killed_broker_loses_no_message_restarts_into_isr_and_down_leaves_no_jvm(
    fresh_cluster, alerts, pid_alive
) -> None:
    cluster = fresh_cluster(brokers=3)
    topic = "durable"
    cluster.create_topic(topic, partitions=6, replication_factor=3)
    values = [alerts[i % len(alerts)] for i in range(600)]

    _, early_errors = produce(cluster.bootstrap_servers, topic, values[:300])
    producer, late_errors = produce(cluster.bootstrap_servers, topic, values[300:], start=300, flush=False)
    cluster.stop_broker(2, kill=True)  # while the second half is still in flight
    assert producer.flush(90) == 0
    assert early_errors == [] and late_errors == []
    assert 2 not in cluster.pids()

    received = consume_all(cluster.bootstrap_servers, topic, len(values))
    assert len(received) == len(values), f"lost {len(values) - len(received)} messages"
    assert all(received[str(i).encode()] == v for i, v in enumerate(values))

    cluster.start_broker(2)
    wait_for(
        "broker 2 in the ISR of every partition",
        lambda: all(2 in cluster.in_sync_replicas(topic, p) for p in range(6)),
        timeout=90,
    )
    assert all(cluster.leader(topic, p) in (1, 2, 3) for p in range(6))

    pids = list(cluster.pids().values())
    assert len(pids) == 3
    cluster.stop()
    assert not any(pid_alive(pid) for pid in pids)
    assert jvms_of(cluster.dir) == []
    assert not cluster.dir.exists()


@pytest.mark.timeout(400)
def test_cli_up_status_stop_start_down(tmp_path: Path, free_base_port, pid_alive) -> None:
    directory = tmp_path / "cli-cluster"
    port = free_base_port(3)
    try:
        up = run_cli("up", "--brokers", "3", "--port", str(port), "--dir", str(directory))
        bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        assert bootstrap in up.stdout
        assert f"kafka://localhost:{port}/<topic>" in up.stdout

        def status() -> dict:
            return json.loads(run_cli("status", "--json", "--dir", str(directory)).stdout)

        before = status()
        assert [(b["id"], b["alive"], b["registered"]) for b in before["brokers"]] == [
            (1, True, True),
            (2, True, True),
            (3, True, True),
        ]
        assert "running, registered" in run_cli("status", "--dir", str(directory)).stdout

        again = run_cli("up", "--brokers", "3", "--port", str(port), "--dir", str(directory))
        assert "already running" in again.stdout
        assert [b["pid"] for b in status()["brokers"]] == [b["pid"] for b in before["brokers"]]

        run_cli("stop-broker", "2", "--kill", "--dir", str(directory))
        assert [b["alive"] for b in status()["brokers"]] == [True, False, True]
        run_cli("start-broker", "2", "--dir", str(directory))
        after = status()["brokers"]
        assert after[1]["alive"] and after[1]["registered"] and after[1]["pid"] != before["brokers"][1]["pid"]

        pids = [b["pid"] for b in after]
        run_cli("down", "--dir", str(directory))
        assert not any(pid_alive(pid) for pid in pids)
        assert jvms_of(directory) == []
        assert not directory.exists()
    finally:
        if directory.exists():
            LocalCluster.attach(directory, require_running=False).stop()


@pytest.mark.timeout(300)
def test_cli_up_demo_creates_the_demo_topics_and_down_removes_them(
    tmp_path: Path, free_base_port, pid_alive, data_dir: Path
) -> None:
    """``genesis cluster up --demo`` as a user runs it (one broker, to keep it short): the topics
    small and medium hold the demo sets genesis.samples defines, lsst is empty and
    retention-capped, and ``genesis cluster down`` leaves nothing behind."""
    import genesis.streaming as gs
    from genesis.demo import PARTITIONS, topic_size
    from genesis.samples import DEMO_SIZES, demo_alerts

    directory = tmp_path / "demo-cluster"
    port = free_base_port(1)
    try:
        up = run_cli("up", "--demo", "--brokers", "1", "--port", str(port), "--dir", str(directory), timeout=280)
        for name, size in DEMO_SIZES.items():
            assert f"loaded {size} alerts into {name!r}" in up.stdout
        assert "created topic 'lsst'" in up.stdout
        cluster = LocalCluster.attach(directory)
        assert cluster.bootstrap_servers == f"127.0.0.1:{port}"
        topics = cluster.status().topics
        assert {name: topics.get(name) for name in (*DEMO_SIZES, "lsst")} == dict.fromkeys(
            (*DEMO_SIZES, "lsst"), PARTITIONS
        )
        sizes = {name: topic_size(cluster.bootstrap_servers, name) for name in (*DEMO_SIZES, "lsst")}
        assert sizes == {**DEMO_SIZES, "lsst": 0}
        with gs.open(cluster.url("small"), start_at="earliest") as stream:
            small = sorted(a["candid"] for _, a in stream(until_eos=True))
        assert small == sorted(record["candid"] for _, record in demo_alerts("small", data_dir))
        lsst = subprocess.run(
            [sys.executable, "-m", "genesis", "topics", cluster.url("lsst"), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert lsst.returncode == 0, lsst.stderr
        (info,) = json.loads(lsst.stdout)["topics"]
        assert info["retention_bytes"] == 1024**3  # capped, so that inject cannot fill the disk

        pids = list(cluster.pids().values())
        assert pids and all(pid_alive(pid) for pid in pids)
        run_cli("down", "--dir", str(directory))
        assert not any(pid_alive(pid) for pid in pids)
        assert jvms_of(directory) == [] and not directory.exists()
    finally:
        if directory.exists():
            LocalCluster.attach(directory, require_running=False).stop()


@pytest.mark.timeout(300)
def test_cli_fetch_puts_kafkas_jars_into_the_cache_once(tmp_path: Path) -> None:
    """``genesis cluster fetch`` into an empty cache (``GENESIS_CACHE``): Maven copies the broker's
    jars there, the same set ``make setup`` fetched for this test session; a second fetch uses
    the cache and needs no Maven at all."""
    from genesis.cluster import ensure_jars, kafka_version

    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_HOME"} | {"GENESIS_CACHE": str(cache)}
    first = subprocess.run([*genesis_cli(), "cluster", "fetch"], env=env, capture_output=True, text=True, timeout=280)
    assert first.returncode == 0, first.stdout + first.stderr
    libs = cache / f"kafka-{kafka_version()}" / "libs"
    assert first.stdout.strip().splitlines()[-1] == str(libs)
    assert (libs / f"kafka_2.13-{kafka_version()}.jar").is_file()
    assert sorted(p.name for p in libs.glob("*.jar")) == sorted(p.name for p in ensure_jars().glob("*.jar"))

    no_mvn = tmp_path / "bin"  # a PATH without mvn (the command runs with an absolute python)
    no_mvn.mkdir()
    second = subprocess.run(
        [*genesis_cli(), "cluster", "fetch"],
        env=env | {"PATH": str(no_mvn)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.strip().splitlines()[-1] == str(libs)


@pytest.mark.timeout(120)
def test_broker_that_dies_at_start_is_reported_with_its_log(tmp_path: Path, free_base_port) -> None:
    with pytest.raises(ClusterError) as failure:
        LocalCluster(tmp_path / "c", port=free_base_port(3), heap="1m").start()  # the JVM refuses a 1 MB heap
    assert re.search(
        r"(?s)broker \d of the local cluster .* exited while starting.*stdout.log.*heap", str(failure.value)
    ), str(failure.value)
    assert not (tmp_path / "c").exists()
    assert jvms_of(tmp_path / "c") == []


# ------------------------------------------- errors found before any JVM starts
@pytest.mark.timeout(60)
def test_port_in_use_is_named(tmp_path: Path, free_base_port) -> None:
    port = free_base_port(3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port + 1001))  # broker 2's controller port
        sock.listen()
        with pytest.raises(PortInUseError, match=rf"port {port + 1001}.*--port"):
            LocalCluster(tmp_path / "c", port=port).start()
    assert not (tmp_path / "c").exists()


@pytest.mark.timeout(60)
def test_non_empty_foreign_dir_is_refused(tmp_path: Path, free_base_port) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ClusterError, match="not empty and holds no genesis cluster"):
        LocalCluster(tmp_path, port=free_base_port(3)).start()
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture
def java_only_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only ``java`` (no mvn); JAVA_HOME and KAFKA_HOME unset."""
    java = shutil.which("java")
    assert java, "these tests need java installed"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    return bin_dir


@pytest.mark.timeout(60)
def test_missing_java_is_named(tmp_path: Path, java_only_path: Path, free_base_port) -> None:
    (java_only_path / "java").unlink()
    with pytest.raises(ToolMissingError, match=r"`java` was not found.*apt-get install openjdk-17"):
        LocalCluster(tmp_path / "c", port=free_base_port(3)).start()


@pytest.mark.timeout(60)
def test_old_java_is_refused(tmp_path: Path, java_only_path: Path, free_base_port) -> None:
    (java_only_path / "java").unlink()
    (java_only_path / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    (java_only_path / "java").chmod(0o755)
    with pytest.raises(ToolMissingError, match=r"Java 11, Kafka needs Java 17"):
        LocalCluster(tmp_path / "c", port=free_base_port(3)).start()


@pytest.mark.timeout(60)
def test_missing_mvn_is_named_when_jars_are_not_cached(
    tmp_path: Path, java_only_path: Path, free_base_port, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENESIS_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ToolMissingError, match=r"`mvn` was not found.*apt-get install maven"):
        LocalCluster(tmp_path / "c", port=free_base_port(3)).start()
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------ the shared cluster
@pytest.mark.timeout(60)
def test_three_brokers_registered(cluster: LocalCluster) -> None:
    status = cluster.status()
    assert [(b.id, b.alive, b.registered) for b in status.brokers] == [
        (1, True, True),
        (2, True, True),
        (3, True, True),
    ]
    assert status.bootstrap_servers == cluster.bootstrap_servers
    assert (cluster.dir / STATE_FILE).exists()
    assert len(jvms_of(cluster.dir)) == 3


@pytest.mark.timeout(60)
def test_cached_jars_need_no_mvn(cluster: LocalCluster, java_only_path: Path) -> None:
    from genesis.cluster import ensure_jars

    assert any(ensure_jars().glob("kafka_2.13-*.jar"))


@pytest.mark.edit_loop
@pytest.mark.timeout(120)
def test_replicated_topic_takes_acks_all_writes(cluster: LocalCluster, bootstrap: str, alerts) -> None:
    cluster.create_topic("alerts-rf3", partitions=3, replication_factor=3)
    cluster.create_topic("alerts-rf3", partitions=3, replication_factor=3)  # idempotent
    assert cluster.status().topics["alerts-rf3"] == 3
    for p in range(3):
        assert cluster.in_sync_replicas("alerts-rf3", p) == [1, 2, 3]
        assert cluster.leader("alerts-rf3", p) in (1, 2, 3)
    _, errors = produce(bootstrap, "alerts-rf3", alerts)
    assert errors == []
    received = consume_all(bootstrap, "alerts-rf3", len(alerts))
    assert sorted(received.values()) == sorted(alerts)
    cluster.delete_topic("alerts-rf3")
    assert "alerts-rf3" not in cluster.status().topics


@pytest.mark.timeout(60)
def test_url(cluster: LocalCluster, bootstrap: str) -> None:
    assert cluster.url("ztf") == f"kafka://{bootstrap}/ztf"
    assert cluster.url("ztf", group="me") == f"kafka://me@{bootstrap}/ztf"


@pytest.mark.timeout(60)
def test_unknown_broker_id_lists_valid_ids(cluster: LocalCluster) -> None:
    for action in (cluster.stop_broker, cluster.start_broker, cluster.pause_broker):
        with pytest.raises(ClusterError, match="no broker 7; valid broker ids are 1, 2, 3"):
            action(7)


@pytest.mark.timeout(60)
def test_up_twice_changes_nothing(cluster: LocalCluster) -> None:
    pids = cluster.pids()
    recorded = (cluster.dir / STATE_FILE).read_text()
    again = LocalCluster(cluster.dir, brokers=3, port=cluster.layout.port).start()
    assert again.already_running
    assert cluster.pids() == pids
    assert (cluster.dir / STATE_FILE).read_text() == recorded
    with again:  # leaving the context of a cluster it did not start must not stop it
        pass
    assert cluster.pids() == pids


@pytest.mark.timeout(60)
def test_dir_of_another_cluster_is_refused(cluster: LocalCluster, free_base_port) -> None:
    with pytest.raises(ClusterError, match="holds a different local cluster"):
        LocalCluster(cluster.dir, brokers=1, port=free_base_port(1)).start()
    assert len(cluster.pids()) == 3


@pytest.mark.timeout(60)
def test_attach_finds_the_running_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    attached = LocalCluster.attach(cluster.dir)
    assert attached.bootstrap_servers == cluster.bootstrap_servers
    assert attached.pids() == cluster.pids()
    with pytest.raises(ClusterError, match="no local Kafka cluster"):
        LocalCluster.attach(tmp_path)
