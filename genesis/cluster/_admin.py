"""Questions asked of the running cluster through Kafka's own protocol (confluent-kafka).

Readiness is judged here, by what clients see: brokers registered in the metadata and a
replicated topic that accepts ``acks=all`` writes; an open port proves nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from .._kafka import new_admin, new_producer
from .._urls import StreamSpec
from ..errors import ClusterError


def admin(bootstrap: str, security: dict | None = None) -> AdminClient:
    """An admin client; ``security``: librdkafka login settings (a secure cluster's admin; none: plaintext)."""
    return new_admin(StreamSpec.for_brokers(bootstrap), auth=security or {})


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


def partition(client: AdminClient, topic: str, index: int, timeout: float = 5.0):
    """Metadata (leader, replicas, isrs) of one partition; :class:`ClusterError` if unknown."""
    meta = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or index not in meta.partitions:
        raise ClusterError(f"topic {topic!r} has no partition {index}")
    return meta.partitions[index]


def write_acks_all(bootstrap: str, topic: str, partitions: int, timeout: float, security: dict | None = None) -> None:
    """Write one message to each partition with ``acks=all``; :class:`ClusterError` if any is refused."""
    producer = new_producer(
        StreamSpec.for_brokers(bootstrap),
        auth=security or {},
        settings={"acks": "all", "message.timeout.ms": int(timeout * 1000)},
    )
    errors: list[str] = []

    def report(err, msg) -> None:
        if err is not None:
            errors.append(f"partition {msg.partition()}: {err.str()}")

    for p in range(partitions):
        producer.produce(topic, value=b"genesis readiness probe", partition=p, on_delivery=report)
    left = producer.flush(timeout + 5)
    if errors or left:
        raise ClusterError(f"an acks=all write to {topic!r} failed: {'; '.join(errors) or f'{left} undelivered'}")


#: PBKDF2 iterations of a SCRAM credential (Kafka's StorageTool uses 4096 by default; 8192 is RFC 7677's advice)
SCRAM_ITERATIONS = 8192


def add_scram_user(client: AdminClient, user: str, password: str, timeout: float = 30) -> None:
    """Create (or replace) the SCRAM-SHA-512 credential of ``user`` on the running cluster.

    Kafka keeps SCRAM credentials in its metadata log, so a user added at runtime logs in at once,
    on every broker, and survives restarts: the ``alter_user_scram_credentials`` admin call.
    """
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    futures = client.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password.encode())], request_timeout=timeout
    )
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:
            raise ClusterError(f"cannot add the SCRAM user {user!r}: {exc.args[0].str()}") from exc


#: ACL operations a grant may name (``--ops``), as Kafka spells them
OPERATIONS = tuple(op.name for op in AclOperation if op.name not in ("UNKNOWN", "ANY"))


def grant(
    client: AdminClient,
    principal: str,
    resources: list[tuple[str, str, str]],
    operations: list[str],
    timeout: float = 30,
) -> None:
    """Allow ``principal`` (``User:alice``) ``operations`` (``READ``, ``WRITE``...) on each resource,
    given as ``(type, name, pattern)``: ``("TOPIC", "small", "LITERAL")``, ``("GROUP", "alice-", "PREFIXED")``."""
    unknown = [op for op in operations if op.upper() not in OPERATIONS]
    if unknown:
        raise ClusterError(
            f"unknown ACL operation(s) {', '.join(unknown)}; use some of {', '.join(OPERATIONS).lower()}"
        )
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
