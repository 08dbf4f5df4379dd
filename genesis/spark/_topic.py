"""What the driver learns from the topic before a query starts: its partitions' offsets and its
newest writer schema (read with genesis' own Kafka client, librdkafka)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from .._kafka import Credentials, ErrorLog, connect, new_consumer, random_group_id, translate
from .._urls import StreamSpec
from ..errors import ConfigError, DecodeError

#: how many of the last messages of each partition are looked at for their writer schemas
TAIL = 32


@dataclass
class TopicState:
    """Per topic and partition: the ``(low, high)`` watermarks, and the last few committed messages."""

    offsets: dict[str, dict[int, tuple[int, int]]]
    tail: list[Any]  #: confluent_kafka Messages, the newest (by timestamp) first

    def last(self, n: int) -> dict[str, dict[int, int]]:
        """Where the last ``n`` messages of each partition start."""
        return {t: {p: max(low, high - n) for p, (low, high) in parts.items()} for t, parts in self.offsets.items()}


def inspect(spec: StreamSpec, auth: Credentials, *, want_tail: bool, timeout: float = 30.0) -> TopicState:
    """The offsets of the URL's topics (those a ``^pattern`` matches now) and, with ``want_tail``,
    the last few committed messages of every partition. Unknown topics, an unreachable cluster or a refused login raise
    the usual genesis errors."""
    error_log = ErrorLog(spec.bootstrap_servers)
    consumer = new_consumer(
        spec,
        group=random_group_id(),
        auth=auth,
        error_log=error_log,
        settings={"isolation.level": "read_committed", "enable.partition.eof": True},
    )
    try:
        meta = connect(consumer.list_topics, spec, error_log, timeout)
        topics = _matching(spec, meta)
        offsets: dict[str, dict[int, tuple[int, int]]] = {}
        for topic in topics:
            offsets[topic] = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in sorted(meta.topics[topic].partitions)
            }
        return TopicState(offsets, _tail(consumer, offsets, timeout) if want_tail else [])
    except KafkaException as exc:
        raise translate(exc, brokers=spec.bootstrap_servers) from None
    finally:
        consumer.close()


def _matching(spec: StreamSpec, meta: Any) -> list[str]:
    names: list[str] = []
    for topic in spec.topics:
        if topic.startswith("^"):
            pattern = re.compile(topic)
            names += sorted(t for t in meta.topics if pattern.match(t) and not t.startswith("__"))
        else:
            names.append(topic)
    return names


def _tail(consumer: Any, offsets: dict[str, dict[int, tuple[int, int]]], timeout: float) -> list[Any]:
    """The last (up to :data:`TAIL`) messages of every partition, the newest first."""
    assignment = [
        TopicPartition(t, p, max(low, high - TAIL))
        for t, parts in offsets.items()
        for p, (low, high) in parts.items()
        if high > low
    ]
    if not assignment:
        return []
    consumer.assign(assignment)
    pending = {(tp.topic, tp.partition) for tp in assignment}
    found = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            pending.discard((msg.topic(), msg.partition()))  # its end (or an error: looked at no further)
            continue
        found.append(msg)
    return sorted(found, key=lambda m: (m.timestamp()[1], m.offset()), reverse=True)


def writer_schemas(decoder: Any, state: TopicState, spec: StreamSpec) -> list[dict[str, Any]]:
    """The distinct Avro writer schemas of the topic's last messages, the newest first."""
    if not state.tail:
        raise ConfigError(
            f"{spec.url()} holds no alert yet, so there is no writer schema to take the columns from: "
            "pass read(schema=...) (an Avro schema, a StructType or a DDL string)"
        )
    schemas: dict[str, dict[str, Any]] = {}
    for msg in state.tail:
        try:
            schema = decoder.writer_schema(msg.value(), msg.key())
        except DecodeError as exc:
            where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
            raise ConfigError(
                f"the message at {where} has no Avro writer schema to take the columns from ({exc}): "
                "pass read(schema=...); JSON alerts, and wire-format alerts whose schema id is unknown "
                "(pass schemas= or schema_registry=), need it"
            ) from None
        schemas.setdefault(json.dumps(schema, sort_keys=True), schema)
    return list(schemas.values())
