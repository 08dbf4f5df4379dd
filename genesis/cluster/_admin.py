"""Questions asked of the running cluster through Kafka's own protocol (confluent-kafka).

Readiness is judged here, by what clients see: brokers registered in the metadata and a
replicated topic that accepts ``acks=all`` writes; an open port proves nothing.
"""

from __future__ import annotations

import time
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from .._kafka import LibrdkafkaLog
from ..errors import ClusterError

#: librdkafka logs here at DEBUG instead of stderr ("Connect to ... failed" while a broker is down is expected)
_LOG = LibrdkafkaLog("genesis.cluster.client")


def _conf(bootstrap: str, **extra: object) -> dict:
    return {"bootstrap.servers": bootstrap, "logger": _LOG, **extra}


def admin(bootstrap: str, security: dict | None = None) -> AdminClient:
    """An admin client; ``security``: librdkafka login settings (a secure cluster's admin)."""
    return AdminClient(_conf(bootstrap, **(security or {})))


def poll_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.25,
    on_timeout: Callable[[], str] = lambda: "",
) -> None:
    """Call ``check`` until it is true, or raise :class:`ClusterError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}{on_timeout()}")
        time.sleep(interval)


def registered_brokers(client: AdminClient, timeout: float = 2.0) -> set[int]:
    """Ids of the brokers the cluster metadata lists (registered and unfenced); empty if none answers."""
    try:
        return set(client.list_topics(timeout=timeout).brokers)
    except KafkaException:
        return set()


def topic_partitions(client: AdminClient, timeout: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, without Kafka's internal topics."""
    topics = client.list_topics(timeout=timeout).topics
    return {
        name: len(meta.partitions)
        for name, meta in sorted(topics.items())
        if not name.startswith("__") and meta.error is None
    }


def partition(client: AdminClient, topic: str, index: int, timeout: float = 5.0):
    """Metadata (leader, replicas, isrs) of one partition; :class:`ClusterError` if unknown."""
    meta = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or index not in meta.partitions:
        raise ClusterError(f"topic {topic!r} has no partition {index}")
    return meta.partitions[index]


def committed(
    bootstrap: str, topic: str, group: str, security: dict | None = None, timeout: float = 10.0
) -> dict[int, int]:
    """Partition -> offset committed by ``group`` on ``topic`` (partitions without a commit left out)."""
    consumer = Consumer(_conf(bootstrap, **{"group.id": group, **(security or {})}))
    try:
        parts = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        got = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=timeout)
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}
    finally:
        consumer.close()


def _topic_ready(client: AdminClient, name: str, partitions: int | None) -> bool:
    try:
        meta = client.list_topics(name, timeout=2).topics.get(name)
    except KafkaException:
        return False
    if meta is None or meta.error is not None:
        return False
    count = len(meta.partitions)
    return (
        count > 0
        and (partitions is None or count == partitions)
        and all(p.leader >= 0 for p in meta.partitions.values())
    )


def create_topic(
    client: AdminClient,
    name: str,
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None,
    timeout: float = 60,
) -> None:
    """Create a topic unless it exists; return once every partition has a leader."""
    future = client.create_topics(
        [NewTopic(name, partitions, replication_factor, config=dict(config or {}))],
        operation_timeout=timeout,
        request_timeout=timeout,
    )[name]
    try:
        future.result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise ClusterError(f"cannot create topic {name!r}: {exc.args[0].str()}") from exc
        partitions = None  # an existing topic keeps its own partition count
    poll_until(
        f"topic {name!r} to have a leader for every partition", lambda: _topic_ready(client, name, partitions), timeout
    )


def delete_topic(client: AdminClient, name: str, timeout: float = 60) -> None:
    """Delete a topic if it exists; return once the metadata no longer shows it."""
    future = client.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        future.result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise ClusterError(f"cannot delete topic {name!r}: {exc.args[0].str()}") from exc

    def gone() -> bool:
        try:
            return name not in client.list_topics(timeout=2).topics
        except KafkaException:
            return False

    poll_until(f"topic {name!r} to disappear", gone, timeout)


def write_acks_all(bootstrap: str, topic: str, partitions: int, timeout: float, security: dict | None = None) -> None:
    """Write one message to each partition with ``acks=all``; :class:`ClusterError` if any is refused."""
    producer = Producer(_conf(bootstrap, acks="all", **{"message.timeout.ms": int(timeout * 1000)}, **(security or {})))
    errors: list[str] = []

    def report(err, msg) -> None:
        if err is not None:
            errors.append(f"partition {msg.partition()}: {err.str()}")

    for p in range(partitions):
        producer.produce(topic, value=b"genesis readiness probe", partition=p, on_delivery=report)
    left = producer.flush(timeout + 5)
    if errors or left:
        raise ClusterError(f"an acks=all write to {topic!r} failed: {'; '.join(errors) or f'{left} undelivered'}")


def grant(
    client: AdminClient,
    principal: str,
    resources: list[tuple[str, str, str]],
    operations: list[str],
    timeout: float = 30,
) -> None:
    """Allow ``principal`` (``User:alice``) ``operations`` (``READ``, ``WRITE``...) on each resource,
    given as ``(type, name, pattern)``: ``("TOPIC", "small", "LITERAL")``, ``("GROUP", "alice-", "PREFIXED")``."""
    bindings = [
        AclBinding(
            ResourceType[kind],
            name,
            ResourcePatternType[pattern],
            principal,
            "*",
            AclOperation[op.upper()],
            AclPermissionType.ALLOW,
        )
        for kind, name, pattern in resources
        for op in operations
    ]
    for binding, future in client.create_acls(bindings, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            raise ClusterError(f"cannot create the ACL {binding}: {exc.args[0].str()}") from exc
