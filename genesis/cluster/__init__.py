"""A real local Apache Kafka cluster (KRaft, N brokers) for users and tests, without Docker.

Kafka's own jars come from Maven Central (``genesis/cluster/pom.xml``, fetched once by ``mvn`` into the
genesis cache) and run with the JDK::

    from genesis.cluster import LocalCluster

    with LocalCluster(brokers=3, port=9092) as cluster:
        cluster.create_topic("ztf-alerts", partitions=6)
        print(cluster.url("ztf-alerts"))   # kafka://127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094/ztf-alerts

Modules: ``_jars`` (java, mvn, jars), ``_config`` (ports and properties), ``_state``
(``cluster.json``), ``_process`` (JVMs, signals, ports), ``_admin`` (readiness and topics through
the Kafka protocol), ``_local`` (:class:`LocalCluster`).
"""

from ._config import DEFAULT_JVM, JVM_PROFILES, Layout, Listener
from ._jars import ensure_jars, kafka_version, maven_classpath, pom_property
from ._local import BrokerStatus, ClusterStatus, LocalCluster, default_dir

__all__ = [
    "LocalCluster",
    "ClusterStatus",
    "BrokerStatus",
    "Layout",
    "Listener",
    "JVM_PROFILES",
    "DEFAULT_JVM",
    "ensure_jars",
    "kafka_version",
    "default_dir",
    "maven_classpath",
    "pom_property",
]
