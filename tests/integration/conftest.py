"""Real Kafka for integration tests: one shared 3-broker cluster, and private clusters for tests that break brokers.

* ``cluster`` (session): a started 3-broker :class:`LocalCluster` on free ports in a tmp dir.
  Tests may create topics on it but must not stop, kill or pause its brokers.
* ``bootstrap`` (session): its ``bootstrap.servers`` string.
* ``free_base_port`` (session): ``free_base_port(n)`` finds ports for an n-broker cluster.
* ``fresh_cluster`` (function): a factory, ``fresh_cluster(brokers=3, **kwargs)`` returns a started
  cluster of the test's own; every cluster it made is torn down after the test, also on failure.

Ports: a random base port whose N client ports and N controller ports (base+1000..) are all
free, far from a demo cluster on 9092 and below the ephemeral port range.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genesis.cluster import LocalCluster
from genesis.cluster._config import CONTROLLER_OFFSET
from genesis.cluster._process import port_free
from genesis.errors import PortInUseError

START_ATTEMPTS = 3


def find_free_base_port(brokers: int = 3) -> int:
    """A base port P such that P..P+N-1 and P+1000..P+1000+N-1 are all free on 127.0.0.1."""
    for _ in range(200):
        # below Linux' ephemeral range (32768+), where outgoing connections could take a port after the check
        base = random.randrange(20000, 31000, 10)
        ports = [base + i for i in range(brokers)] + [base + CONTROLLER_OFFSET + i for i in range(brokers)]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free range of ports found")


def start_cluster(directory: Path, brokers: int = 3, **kwargs) -> LocalCluster:
    """Start a cluster on free ports, choosing new ones if another program takes them meanwhile.

    Its brokers run the ``fast-start`` JVM profile (C1 only) unless told otherwise: test clusters
    live for minutes, where starting sooner matters more than the steady-state CPU of C2.
    """
    kwargs.setdefault("jvm", "fast-start")
    for attempt in range(START_ATTEMPTS):
        cluster = LocalCluster(directory, brokers=brokers, port=find_free_base_port(brokers), **kwargs)
        try:
            return cluster.start()
        except PortInUseError:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def cluster_starter() -> Callable[..., LocalCluster]:
    """``cluster_starter(directory, brokers=3, **kwargs)``: start a private cluster on free ports
    (for module-scoped fixtures, which cannot use the function-scoped ``fresh_cluster``)."""
    return start_cluster


def find_free_extra_ports(span: int) -> int:
    """A base port P with P..P+span-1 free, for extra listeners and proxies: in 12000..19999, away
    from the clusters' own ports (20000..32009) and below the ephemeral range (32768+), where an
    outgoing connection could take a port between the check and the broker's bind (CI: 32770)."""
    for _ in range(200):
        base = random.randrange(12000, 20000 - span, 20)
        if all(port_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free range of ports found")


@pytest.fixture(scope="session")
def free_extra_ports() -> Callable[[int], int]:
    """``free_extra_ports(span)``: a base port of ``span`` free ports for listeners and proxies."""
    return find_free_extra_ports


@pytest.fixture(scope="session")
def free_base_port() -> Callable[[int], int]:
    """``free_base_port(n)``: a base port with n free client ports and n free controller ports."""
    return find_free_base_port


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The shared, running 3-broker cluster (do not break its brokers; use ``fresh_cluster`` for that)."""
    local = start_cluster(tmp_path_factory.mktemp("kafka") / "cluster")
    try:
        yield local
    finally:
        local.stop(kill=True)  # throwaway: nothing of it is kept


@pytest.fixture(scope="session")
def bootstrap(cluster: LocalCluster) -> str:
    """``bootstrap.servers`` of the shared cluster."""
    return cluster.bootstrap_servers


@pytest.fixture
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalCluster]]:
    """Factory of private, started clusters (for tests that kill, stop or pause brokers)."""
    made: list[LocalCluster] = []

    def make(brokers: int = 3, **kwargs) -> LocalCluster:
        # a start that fails stops its own JVMs (LocalCluster.start), so only started ones are tracked
        made.append(start_cluster(tmp_path_factory.mktemp("kafka-fresh") / "cluster", brokers, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for local in made:
            local.stop(kill=True)  # throwaway: a controlled shutdown of its brokers only costs time


#: the session's demo cluster, once the ``demo`` fixture made it (checked after every module)
_DEMO: list[LocalCluster] = []


def _demo_damage(cluster: LocalCluster) -> dict[str, str]:
    """What is wrong with the demo topics ``small`` and ``medium`` (empty: each holds its alerts,
    from offset 0 of every partition), with the partitions' watermarks to tell a deletion (a low
    watermark above 0) from a truncation or a load cut short."""
    from confluent_kafka import Consumer, TopicPartition

    from genesis.demo import PARTITIONS
    from genesis.demo.samples import DEMO_SIZES

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "genesis-tests-watermarks"})
    try:
        wrong = {}
        for name, size in DEMO_SIZES.items():
            if name not in consumer.list_topics(timeout=30).topics:
                wrong[name] = f"{name} is missing"
                continue
            marks = [consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30) for p in range(PARTITIONS)]
            if sum(high - low for low, high in marks) != size or any(low != 0 for low, _ in marks):
                wrong[name] = f"{name} should hold {size} alerts from offset 0; (low, high) per partition: {marks}"
        return wrong
    finally:
        consumer.close()


@pytest.fixture(scope="session")
def demo(cluster: LocalCluster) -> LocalCluster:
    """The shared cluster with the demo topics ``small``, ``medium`` and ``lsst``, made as
    ``genesis cluster up --demo`` makes them (from the real alerts), checked to hold every alert."""
    from genesis.demo import create_demo_topics

    create_demo_topics(cluster.bootstrap_servers, cluster.replication_factor, say=lambda s: None, progress=False)
    damage = _demo_damage(cluster)
    assert not damage, f"the demo topics are not as loaded: {'; '.join(damage.values())}"
    _DEMO.append(cluster)
    return cluster


@pytest.fixture(scope="module", autouse=True)
def _demo_topics_left_intact(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each module: the shared demo topics still hold every alert (tests share them; one
    that deletes, truncates or recreates them would fail the next module's tests, far from the cause)."""
    yield
    if _DEMO:
        damage = _demo_damage(_DEMO[0])
        if damage:
            _DEMO.clear()  # said once, here; the modules after this one fail on their own
            pytest.fail(f"{request.module.__name__} left the shared demo topics damaged: {'; '.join(damage.values())}")
