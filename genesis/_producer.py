"""The writing side: ``gs.open(url, "w")`` returns a :class:`Writer`.

Alerts are written durably: ``acks=all`` with the idempotent producer (no
duplicates from retries, no reordering), flushed on close, and every failed
delivery is raised as a :class:`~genesis.errors.DeliveryError`, never dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaException

from . import errors
from ._codecs import encode_container, encode_wire
from ._kafka import MAX_MESSAGE_BYTES, Credentials, ErrorLog, connect, new_producer, translate
from ._urls import StreamSpec


def encode_alerts(alerts: Any, schema: Any = None, schema_id: int | None = None) -> bytes:
    """One message of ``alerts`` (a dict or a list of them; bytes pass as they are): an Avro container
    with ``schema``, the Confluent wire format with ``schema_id`` (one alert), or JSON without a schema."""
    if isinstance(alerts, (bytes, bytearray, memoryview)):
        return bytes(alerts)
    if schema is not None:
        if schema_id is not None:
            if isinstance(alerts, list):
                if len(alerts) != 1:
                    raise errors.ConfigError(
                        f"the Confluent wire format holds one alert per message, not {len(alerts)}; "
                        "write them one by one, or without schema_id= as an Avro container"
                    )
                alerts = alerts[0]
            return encode_wire(alerts, schema, schema_id)
        return encode_container(alerts, schema)
    try:
        return json.dumps(alerts).encode()
    except TypeError as exc:
        raise errors.ConfigError(f"cannot write this alert as JSON ({exc}); pass schema= to write Avro") from None


class Writer:
    """Writes alerts to one topic.

    ``write(alert)`` takes a dict, encoded as an Avro container with ``schema``
    embedded (as ZTF sends alerts), or in the Confluent wire format when
    ``schema_id`` or ``schema_registry`` is given (as Rubin does); without a schema,
    as JSON. Raw ``bytes`` are written as they are.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        schema: Any = None,
        schema_id: int | None = None,
        schema_registry: str | None = None,
        connect_timeout: float | None = None,
        config: Mapping[str, Any] | None = None,
        auth: Credentials = None,
    ) -> None:
        if len(spec.topics) != 1 or spec.topics[0].startswith("^"):
            raise errors.ConfigError(f"a writer needs exactly one topic (not a pattern) in the URL, got {spec.url()}")
        self.spec = spec
        self.topic = spec.topics[0]
        self.schema = schema
        self.schema_id = schema_id
        if schema_registry is not None and schema_id is None:
            if schema is None:
                raise errors.ConfigError("schema_registry= needs schema= to register")
            from ._codecs import SchemaRegistry

            self.schema_id = SchemaRegistry(schema_registry).register(f"{self.topic}-value", schema)
        self._failures: list[errors.DeliveryError] = []
        self.delivered = 0
        self._errors = ErrorLog(spec.bootstrap_servers)
        self._producer = new_producer(
            spec,
            auth=auth,
            error_log=self._errors,
            config=config,
            settings={
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "batch.size": 4 * 1024 * 1024,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "queue.buffering.max.kbytes": 512 * 1024,
                "delivery.timeout.ms": 120000,
            },
        )
        connect(self._producer.list_topics, spec, self._errors, connect_timeout)
        self._closed = False

    def encode(self, alert: Any) -> bytes:
        """The bytes ``write(alert)`` would send."""
        return encode_alerts(alert, self.schema, self.schema_id)

    def write(
        self,
        alert: Any,
        key: bytes | str | None = None,
        headers: Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one alert (dict or bytes) for delivery, to ``partition`` if given (else librdkafka's
        partitioner picks: by key, or sticky batches); raises if an earlier delivery failed."""
        self._raise_failures()
        value = self.encode(alert)
        if headers is not None and not isinstance(headers, (list, dict)):  # librdkafka takes these two
            headers = dict(headers) if isinstance(headers, Mapping) else list(headers)
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    value,
                    key,
                    partition=-1 if partition is None else partition,  # -1: librdkafka chooses
                    headers=headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # local queue full: let librdkafka send, then retry
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise translate(exc, brokers=self.spec.bootstrap_servers, topic=self.topic) from None
        self._producer.poll(0)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            return
        self._failures.append(
            errors.DeliveryError(
                f"could not deliver a message to {self.topic}[{msg.partition()}]: {err.str()}"
                + (" (the message is larger than the broker accepts)" if "size" in err.str().lower() else "")
            )
        )

    def _raise_failures(self) -> None:
        self._errors.raise_fatal()
        if self._failures:
            first, n = self._failures[0], len(self._failures)
            self._failures.clear()
            raise errors.DeliveryError(f"{n} message(s) could not be delivered; first: {first}")

    def flush(self, timeout: float = 120) -> None:
        """Wait until every queued alert was acknowledged by the brokers (or raise)."""
        deadline = time.monotonic() + timeout
        while (left := self._producer.flush(1.0)) > 0:
            self._errors.raise_fatal()
            if time.monotonic() > deadline:
                raise errors.DeliveryError(f"{left} message(s) still undelivered to {self.topic} after {timeout:g} s")
        self._raise_failures()

    def close(self) -> None:
        """Flush and close; raises if any alert could not be delivered."""
        if not self._closed:
            self._closed = True
            self.flush()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the original exception; still try to deliver what was queued
            try:
                self.close()
            except errors.GenesisError:
                pass

    def __repr__(self) -> str:
        return f"<genesis Writer {self.spec.url()}>"
