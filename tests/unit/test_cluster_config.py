"""The local cluster's configuration (ports, server.properties, log4j2, cluster.json), without Kafka."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from genesis.cluster import _config, _jars
from genesis.cluster._state import ClusterState, read_state, write_state
from genesis.errors import ClusterError

pytestmark = pytest.mark.timeout(30)


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_default_ports_three_brokers() -> None:
    layout = _config.Layout()
    assert layout.ids == [1, 2, 3]
    assert layout.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert layout.controller_ports == [10092, 10093, 10094]
    assert sorted(layout.all_ports) == [9092, 9093, 9094, 10092, 10093, 10094]
    assert layout.node_ports(2) == [9093, 10093]


def test_explicit_controller_port() -> None:
    layout = _config.Layout(brokers=2, port=20000, controller_port=30000)
    assert layout.all_ports == [20000, 20001, 30000, 30001]


@pytest.mark.parametrize(
    "kwargs", [dict(brokers=0), dict(port=9092, controller_port=9093), dict(port=65535), dict(port=0)]
)
def test_invalid_layouts_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        _config.Layout(**kwargs)


@pytest.mark.parametrize("brokers, rf, min_isr", [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_durability_defaults(brokers: int, rf: int, min_isr: int) -> None:
    layout = _config.Layout(brokers=brokers)
    props = _config.server_properties(layout, 1, Path("/data"))
    assert (layout.replication_factor, layout.min_insync_replicas) == (rf, min_isr)
    assert props["default.replication.factor"] == str(rf)
    assert props["min.insync.replicas"] == str(min_isr)
    for topic in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert props[f"{topic}.replication.factor"] == str(rf)
        assert int(props[f"{topic}.num.partitions"]) <= 6
    assert props["transaction.state.log.min.isr"] == str(min_isr)
    assert props["unclean.leader.election.enable"] == "false"
    assert props["auto.create.topics.enable"] == "false"


def test_node_properties_kraft_combined_static_quorum() -> None:
    layout = _config.Layout(brokers=3, port=19092)
    props = _config.server_properties(layout, 2, Path("/state/node2/data"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:20092,2@127.0.0.1:20093,3@127.0.0.1:20094"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:20093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19093"  # never the controller listener
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == "/state/node2/data"
    assert "controller.quorum.bootstrap.servers" not in props  # static voters only


def test_fast_failure_detection_and_small_footprint() -> None:
    props = _config.server_properties(_config.Layout(), 1, Path("/d"))
    assert props["broker.session.timeout.ms"] == "3000"
    assert props["broker.heartbeat.interval.ms"] == "500"
    assert int(props["replica.lag.time.max.ms"]) <= 10000
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert int(props["log.cleaner.dedupe.buffer.size"]) <= 16 * 1024**2
    assert int(props["message.max.bytes"]) >= 1024**2
    assert int(props["replica.fetch.max.bytes"]) >= int(props["message.max.bytes"])


def test_unknown_node_id_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[1, 2, 3\]"):
        _config.server_properties(_config.Layout(), 4, Path("/d"))


def test_render_properties_round_trips() -> None:
    props = _config.server_properties(_config.Layout(), 1, Path("/d"))
    assert parse(_config.render_properties(props)) == props
    assert _config.render_properties({"a": "C:\\x"}) == "a=C:\\\\x\n"


def test_log4j2_writes_a_file_and_only_warnings_to_stderr() -> None:
    text = _config.log4j2_properties()
    assert "${sys:kafka.logs.dir}/server.log" in text
    assert "rootLogger.appenderRef.err.level = WARN" in text
    quiet = _config.log4j2_properties(quiet=True)
    assert "rootLogger.level = WARN" in quiet and "FILE" not in quiet


def test_jvm_options() -> None:
    opts = _config.jvm_options(
        "384m", log4j2_file=Path("/s/log4j2.properties"), logs_dir=Path("/s/n1/logs"), tmp_dir=Path("/s/tmp")
    )
    assert "-Xmx384m" in opts
    assert "-Dlog4j2.configurationFile=/s/log4j2.properties" in opts
    assert "-Djava.io.tmpdir=/s/tmp" in opts
    assert "-Dkafka.logs.dir=/s/n1/logs" in opts


def test_jvm_profiles() -> None:
    paths = dict(log4j2_file=Path("/s/l"), logs_dir=Path("/s/n1/logs"), tmp_dir=Path("/s/tmp"))
    fast = _config.jvm_options("384m", jvm="fast-start", **paths)
    assert "-XX:TieredStopAtLevel=1" in fast  # C1 only
    for name in _config.JVM_PROFILES:
        opts = _config.jvm_options("384m", jvm=name, **paths)
        assert opts[0] == "-Xmx384m" and "-Djava.io.tmpdir=/s/tmp" in opts and "-XX:+ExitOnOutOfMemoryError" in opts
        assert list(_config.JVM_PROFILES[name]) == opts[2 : 2 + len(_config.JVM_PROFILES[name])]
    assert _config.jvm_options("384m", **paths) == _config.jvm_options("384m", jvm=_config.DEFAULT_JVM, **paths)
    assert "-XX:TieredStopAtLevel=1" not in _config.jvm_options("384m", jvm="c2", **paths)  # C1 then C2
    custom = _config.jvm_options("1g", jvm=["-XX:+UseParallelGC"], **paths)
    assert custom[:3] == ["-Xmx1g", "-Xms64m", "-XX:+UseParallelGC"]
    with pytest.raises(ValueError, match="fast-start"):
        _config.jvm_options("384m", jvm="turbo", **paths)
    with pytest.raises(ValueError, match="starting with '-'"):
        _config.jvm_options("384m", jvm=["UseParallelGC"], **paths)


def test_the_jvm_profile_is_recorded_and_kept(tmp_path: Path) -> None:
    from genesis.cluster import DEFAULT_JVM, LocalCluster

    assert LocalCluster(tmp_path).jvm == DEFAULT_JVM
    assert LocalCluster(tmp_path, jvm=("-XX:+UseSerialGC",)).jvm == ["-XX:+UseSerialGC"]
    with pytest.raises(ValueError, match="unknown JVM profile"):
        LocalCluster(tmp_path, jvm="turbo")
    state = ClusterState(3, 9092, 10092, "abc", "4.3.1", "384m", "/libs", jvm="fast-start")
    write_state(tmp_path, state)
    assert read_state(tmp_path).jvm == "fast-start"
    assert LocalCluster.attach(tmp_path, require_running=False).jvm == "fast-start"
    older = {"format": "genesis-local-cluster/1", "brokers": 3, "port": 9092, "controller_port": 10092}
    older |= {"cluster_id": "abc", "version": "4.3.1", "heap": "384m", "libs": "/libs", "pids": {}}
    (tmp_path / "cluster.json").write_text(json.dumps(older))  # written before profiles existed
    assert read_state(tmp_path).jvm is None
    assert LocalCluster.attach(tmp_path, require_running=False).jvm == DEFAULT_JVM


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {_config.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cid) for cid in ids)


def test_cluster_json_round_trip(tmp_path: Path) -> None:
    state = ClusterState(
        brokers=3,
        port=9092,
        controller_port=10092,
        cluster_id="abc",
        version="4.3.1",
        heap="384m",
        libs="/libs",
        pids={1: 11, 2: 22},
    )
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state
    assert read_state(tmp_path).layout == _config.Layout(3, 9092)


def test_foreign_json_is_not_a_cluster(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    (tmp_path / "cluster.json").write_text('{"brokers": 3}')
    assert read_state(tmp_path) is None
    (tmp_path / "cluster.json").write_text("not json")
    assert read_state(tmp_path) is None


def test_kafka_version_from_pom(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    assert re.fullmatch(r"\d+\.\d+\.\d+", _jars.kafka_version())


def test_kafka_home_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-3.9.2.jar").write_bytes(b"")
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    assert _jars.kafka_version() == "3.9.2"
    assert _jars.ensure_jars() == tmp_path / "libs"


def test_kafka_home_without_kafka_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(ClusterError, match="KAFKA_HOME"):
        _jars.ensure_jars()


def test_stop_never_deletes_a_foreign_directory(tmp_path: Path) -> None:
    from genesis.cluster import LocalCluster

    (tmp_path / "precious.txt").write_text("keep")
    LocalCluster(tmp_path).stop()
    assert (tmp_path / "precious.txt").read_text() == "keep"
