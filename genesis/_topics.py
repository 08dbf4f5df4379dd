"""What is in a cluster's topics and groups, and the few changes genesis makes to them.

Every question goes through the one door (:mod:`genesis._kafka`'s factories), so each gets
the user's credentials and genesis' error translation: listing and describing topics
(partitions, leaders, message counts, retention), a group's committed offsets and lag,
reading one message at a given offset, positioning a group at a time or at the last N
messages, and creating or deleting a topic. ``genesis topics``, ``genesis show``, the
demo loader, ``genesis inject``, :func:`genesis.scaleout.run_group`, ``genesis doctor``
and the local cluster use these.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from . import errors
from ._kafka import Credentials, ErrorLog, connect, new_admin, new_consumer, random_group_id, translate
from ._urls import StreamSpec

TIMEOUT = 10.0


@dataclass
class PartitionInfo:
    """One partition: its offsets, leader and replicas, and what a group has committed there."""

    partition: int
    low: int
    high: int
    leader: int
    replicas: list[int]
    committed: int | None = None  #: the group's committed offset (None: nothing committed)
    lag: int | None = None  #: messages after the committed offset (all of them without one)

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass
class TopicInfo:
    """One topic: its partitions, retention, message count, and a group's lag over all partitions."""

    name: str
    partitions: list[PartitionInfo]
    retention_ms: int | None = None
    retention_bytes: int | None = None
    messages: int = 0
    lag: int | None = None


def _reader(spec: StreamSpec, auth: Credentials, group: str | None, error_log: ErrorLog | None = None) -> Consumer:
    """A consumer for questions: it joins no group (never subscribes) and commits nothing."""
    return new_consumer(spec, group=group or random_group_id(), auth=auth, error_log=error_log)


def topic_names(admin: AdminClient, timeout: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, without Kafka's internal topics."""
    topics = admin.list_topics(timeout=timeout).topics
    return {
        name: len(meta.partitions)
        for name, meta in sorted(topics.items())
        if not name.startswith("__") and meta.error is None
    }


def describe(spec: StreamSpec, *, auth: Credentials = None, timeout: float = TIMEOUT) -> list[TopicInfo]:
    """The URL's topics (all user topics when it names none) and, with a group in the URL, its lag."""
    if any(t.startswith("^") for t in spec.topics):
        raise errors.ConfigError("describing topics takes topic names, not patterns")
    error_log = ErrorLog(spec.bootstrap_servers)
    consumer = _reader(spec, auth, spec.group, error_log)
    try:
        meta = connect(consumer.list_topics, spec, error_log, timeout)
        names = list(spec.topics) or sorted(t for t in meta.topics if not t.startswith("__"))
        configs = retention(new_admin(spec, auth=auth), names, timeout)
        infos = []
        for name in names:
            parts = []
            for p in sorted(meta.topics[name].partitions.values(), key=lambda p: p.id):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p.id), timeout=timeout)
                parts.append(PartitionInfo(p.id, low, high, p.leader, list(p.replicas)))
            if spec.group:
                _add_lag(consumer, name, parts, timeout)
            info = TopicInfo(name, parts, *configs.get(name, (None, None)))
            info.messages = sum(p.messages for p in parts)
            if spec.group:
                info.lag = sum(p.lag or 0 for p in parts)
            infos.append(info)
        return infos
    except KafkaException as exc:
        raise translate(exc, brokers=spec.bootstrap_servers) from None
    finally:
        consumer.close()


def retention(admin: AdminClient, names: list[str], timeout: float) -> dict[str, tuple[int | None, int | None]]:
    """Per topic, ``(retention.ms, retention.bytes)``."""
    if not names:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names], request_timeout=timeout
    )
    out = {}
    for resource, future in futures.items():
        entries = future.result(timeout=timeout)
        out[resource.name] = (_number(entries, "retention.ms"), _number(entries, "retention.bytes"))
    return out


def _number(entries: Mapping[str, Any], key: str) -> int | None:
    entry = entries.get(key)
    return int(entry.value) if entry is not None and entry.value is not None else None


def _add_lag(consumer: Consumer, topic: str, parts: list[PartitionInfo], timeout: float) -> None:
    committed = consumer.committed([TopicPartition(topic, p.partition) for p in parts], timeout=timeout)
    for p, tp in zip(parts, committed):
        p.committed = tp.offset if tp.offset >= 0 else None
        p.lag = p.high - max(p.committed, p.low) if p.committed is not None else p.messages


def message_count(spec: StreamSpec, topic: str, *, auth: Credentials = None, timeout: float = TIMEOUT) -> int:
    """Messages currently in ``topic`` (the sum over partitions of high - low watermark)."""
    [info] = describe(replace(spec, topics=(topic,), group=None), auth=auth, timeout=timeout)
    return info.messages


def committed(
    spec: StreamSpec, topic: str, group: str, *, auth: Credentials = None, timeout: float = TIMEOUT
) -> dict[int, int]:
    """Partition -> offset committed by ``group`` on ``topic`` (partitions without a commit left out)."""
    consumer = _reader(spec, auth, group)
    try:
        parts = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        got = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=timeout)
        return {tp.partition: tp.offset for tp in got if tp.offset >= 0}
    except KafkaException as exc:
        raise translate(exc, brokers=spec.bootstrap_servers, topic=topic, group=group) from None
    finally:
        consumer.close()


def read_one(
    spec: StreamSpec, topic: str, partition: int, offset: int, *, auth: Credentials = None, timeout: float = TIMEOUT
) -> Message:
    """The message at ``topic[partition]@offset``, read by an assigned consumer (no group joined)."""
    error_log = ErrorLog(spec.bootstrap_servers)
    consumer = new_consumer(
        spec, group=random_group_id(), auth=auth, error_log=error_log, settings={"enable.partition.eof": True}
    )
    try:
        connect(consumer.list_topics, replace(spec, topics=(topic,)), error_log, timeout)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        if not low <= offset < high:
            raise errors.ConfigError(f"{topic}[{partition}] holds offsets {low}..{high - 1}; {offset} is not there")
        consumer.assign([TopicPartition(topic, partition, offset)])
        msg = consumer.poll(timeout)
        err = msg.error() if msg is not None else None
        if msg is None or err is not None:
            why = f": {err.str()}" if err is not None else f" within {timeout:g} s"
            raise errors.ConfigError(f"could not read {topic}[{partition}]@{offset}{why}")
        return msg
    except KafkaException as exc:
        raise translate(exc, brokers=spec.bootstrap_servers, topic=topic) from None
    finally:
        consumer.close()


def position_group(
    spec: StreamSpec,
    start_at: Any,
    *,
    auth: Credentials = None,
    config: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
) -> None:
    """Commit, for the URL's group, the offsets where an explicit ``start_at`` (a datetime or -N) begins
    in every partition of its topics (so processes joining later resume there, not at ``start_at`` again)."""
    from ._sources.kafka import check_start_at, start_offset

    check_start_at(start_at)
    assert spec.group is not None
    consumer = new_consumer(spec, group=spec.group, auth=auth, config=config)
    try:
        offsets = []
        for topic in spec.topics:
            meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
            if meta.error is not None:
                raise translate(meta.error, brokers=spec.bootstrap_servers, topic=topic)
            for p in meta.partitions:
                tp = TopicPartition(topic, p)
                offset = start_offset(consumer, tp, start_at, timeout)
                if offset < 0:  # after the end (a datetime in the future): the end
                    offset = consumer.get_watermark_offsets(tp, timeout=timeout)[1]
                offsets.append(TopicPartition(topic, p, offset))
        for tp in consumer.commit(offsets=offsets, asynchronous=False) or []:
            if tp.error is not None:
                raise errors.ConfigError(
                    f"could not position group {spec.group!r} at start_at={start_at!r} "
                    f"(is it in use by running consumers?): {tp.error.str()}"
                )
    except KafkaException as exc:
        raise translate(
            exc, brokers=spec.bootstrap_servers, group=spec.group, context=" while positioning the group"
        ) from None
    finally:
        consumer.close()


def _has_leaders(admin: AdminClient, name: str, partitions: int | None) -> bool:
    try:
        meta = admin.list_topics(name, timeout=2).topics.get(name)
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


def _wait(what: str, check: Any, timeout: float, brokers: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise errors.BrokerError(f"timed out after {timeout:.0f} s waiting for {what}", brokers=brokers)
        time.sleep(0.25)


def create_topic(
    admin: AdminClient,
    name: str,
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None = None,
    *,
    brokers: str = "",
    timeout: float = 60,
    exist_ok: bool = True,
) -> bool:
    """Create a topic unless it exists; return once every partition has a leader.

    True when it was created, False when it existed already (it keeps its own settings; with
    ``exist_ok=False`` that is a :class:`~genesis.errors.TopicExistsError`). ``partitions`` or
    ``replication_factor`` -1: the brokers' defaults. More replicas than brokers, and a login not
    allowed to create topics, are errors that say so.
    """
    future = admin.create_topics(
        [NewTopic(name, partitions, replication_factor, config=dict(config or {}))],
        operation_timeout=timeout,
        request_timeout=timeout,
    )[name]
    created = True
    try:
        future.result()
    except KafkaException as exc:
        code = exc.args[0].code()
        if code == KafkaError.TOPIC_ALREADY_EXISTS and not exist_ok:
            raise errors.TopicExistsError(
                f"topic {name!r} already exists on {brokers or 'the cluster'} (it keeps its own settings): "
                "use it as it is (--if-not-exists / exist_ok=True), or delete it first "
                f"(genesis topics delete kafka://{brokers or 'HOST'}/{name})",
                topic=name,
                brokers=brokers or None,
            ) from None
        if code == KafkaError.INVALID_REPLICATION_FACTOR:
            have = len(admin.list_topics(timeout=timeout).brokers)
            raise errors.ConfigError(
                f"topic {name!r} cannot have {replication_factor} replicas: the cluster at {brokers or '?'} has "
                f"{have} broker{'s' if have != 1 else ''}; give a replication factor of {have} or fewer"
            ) from None
        if code in (KafkaError.INVALID_PARTITIONS, KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION):
            raise errors.ConfigError(f"the brokers refused topic {name!r}: {exc.args[0].str()}") from None
        if code != KafkaError.TOPIC_ALREADY_EXISTS:
            raise translate(exc, brokers=brokers, topic=name, context=f" while creating topic {name!r}") from None
        created = False
    expected = partitions if created and partitions > 0 else None
    _wait(
        f"topic {name!r} to have a leader for every partition",
        lambda: _has_leaders(admin, name, expected),
        timeout,
        brokers,
    )
    return created


def delete_topic(admin: AdminClient, name: str, *, brokers: str = "", timeout: float = 60) -> None:
    """Delete a topic if it exists; return once the metadata no longer shows it."""
    future = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        future.result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise translate(exc, brokers=brokers, topic=name, context=f" while deleting topic {name!r}") from None

    def gone() -> bool:
        try:
            return name not in admin.list_topics(timeout=2).topics
        except KafkaException:
            return False

    _wait(f"topic {name!r} to disappear", gone, timeout, brokers)


def create(
    spec: StreamSpec,
    *,
    partitions: int = -1,
    replication_factor: int = -1,
    config: Mapping[str, str] | None = None,
    exist_ok: bool = False,
    auth: Credentials = None,
    timeout: float = 60,
) -> list[tuple[str, bool]]:
    """Create every topic of the URL (-1: the brokers' default partitions and replication);
    ``(name, created)`` for each. A topic that exists is a :class:`~genesis.errors.TopicExistsError`
    unless ``exist_ok``."""
    error_log = ErrorLog(spec.bootstrap_servers)
    admin = new_admin(spec, auth=auth, error_log=error_log)
    connect(admin.list_topics, replace(spec, topics=()), error_log, min(timeout, 30))  # reachable, logged in
    return [
        (
            name,
            create_topic(
                admin,
                name,
                partitions,
                replication_factor,
                dict(config or {}),
                brokers=spec.bootstrap_servers,
                timeout=timeout,
                exist_ok=exist_ok,
            ),
        )
        for name in spec.topics
    ]


def delete(spec: StreamSpec, name: str, *, auth: Credentials = None, timeout: float = 60) -> None:
    """Delete topic ``name`` of the URL's cluster and wait until it is gone."""
    delete_topic(new_admin(spec, auth=auth), name, brokers=spec.bootstrap_servers, timeout=timeout)
