"""A Lambda handler for Kafka event sources: the event's records as genesis alerts, a function per alert.

The event (self-managed Apache Kafka, ``"eventSource": "SelfManagedKafka"``, or Amazon MSK,
``"aws:kafka"``) holds ``records``: per ``"topic-partition"`` a list of records with ``topic``,
``partition``, ``offset``, ``timestamp`` (ms), a base64 ``value``, a base64 ``key`` that may be
absent or null, and ``headers`` as a list of ``{name: [byte, ...]}``. Each record's value is
decoded as ``gs.open`` decodes a message (a ZTF Avro container, the Confluent wire format of
Rubin with ``schemas=``/``schema_registry=`` or Rubin's built-in schemas, JSON), in partition
order, and ``fn(alert)`` (``fn(alert, meta)`` with ``metadata=True``) runs for each alert.

Delivery is Lambda's: the event source mapping commits a batch's offsets only when the invocation
succeeds. So a function that raises, or an undecodable record under ``policy="raise"``, fails the
invocation (a genesis error naming the record, the original as its cause) and Lambda retries the
batch: at least once, never lost, duplicates only of a batch that failed. ``policy="skip"`` or
``"quarantine"`` (with ``quarantine=`` a directory or a ``kafka://`` dead-letter topic) steps over
an undecodable record as ``gs.open(on_decode_error=...)`` does, and counts it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._codecs import Decoder
from .._models import Metadata
from .._policies import decode_error_policy
from ..errors import ConfigError, DecodeError, FilterError

#: the event sources whose events this handler reads
EVENT_SOURCES = ("SelfManagedKafka", "aws:kafka")

Handler = Callable[[Mapping[str, Any], Any], dict[str, int]]


def lambda_handler(
    fn: Callable[..., Any],
    policy: str = "raise",
    *,
    quarantine: str | Path | None = None,
    metadata: bool = False,
    schemas: str | Path | None = None,
    schema_registry: str | None = None,
) -> Handler:
    """A Lambda handler ``handler(event, context)`` that calls ``fn`` for every alert of the event.

    It returns ``{"records": ..., "alerts": ..., "skipped": ...}`` (Lambda logs it). ``policy``:
    what an undecodable record does, as ``gs.open``'s ``on_decode_error``: ``"raise"`` (the
    invocation fails and Lambda retries the batch), ``"skip"``, ``"quarantine"`` (with
    ``quarantine=``). ``metadata=True`` calls ``fn(alert, meta)``, ``meta`` a
    :class:`~genesis.Metadata` (topic, partition, offset, timestamp, key, headers, the bytes).
    """
    if not callable(fn):
        raise ConfigError(f"lambda_handler() needs the function to run for each alert, not {type(fn).__name__}")
    on_error = decode_error_policy(policy, quarantine)
    decoder = Decoder(schemas=schemas, schema_registry=schema_registry)
    name = getattr(fn, "__qualname__", repr(fn))

    def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, int]:
        counts = {"records": 0, "alerts": 0, "skipped": 0}
        for meta, bad in _records(event):
            counts["records"] += 1
            try:
                if bad is not None:
                    raise bad
                alerts = decoder.decode(meta.value, meta.key)
            except DecodeError as exc:
                located = exc.located(meta.topic, meta.partition, meta.offset)
                if on_error is None:
                    raise located from None
                on_error(meta, meta.value, located)
                counts["skipped"] += 1
                continue
            for index, alert in enumerate(alerts):
                try:
                    fn(alert, _at(meta, index)) if metadata else fn(alert)
                except Exception as exc:
                    raise FilterError(
                        f"{name} raised {type(exc).__name__}: {exc} on alert {index} of the record at "
                        f"{meta.topic}[{meta.partition}]@{meta.offset}; the invocation fails, so Lambda "
                        "retries the batch (fix the function, or catch what it may raise)",
                        topic=meta.topic,
                        partition=meta.partition,
                        offset=meta.offset,
                    ) from exc
                counts["alerts"] += 1
        return counts

    handler.__doc__ = f"The Lambda handler of {name} (genesis.serverless.lambda_handler)."
    return handler


def records_of(event: Mapping[str, Any]) -> list[Metadata]:
    """The records of a Lambda Kafka event, in order (partition by partition, as the event lists
    them, each in offset order), as :class:`~genesis.Metadata` holding the message bytes; a field
    that is not base64 is a :class:`~genesis.errors.DecodeError` naming the record."""
    out = []
    for meta, bad in _records(event):
        if bad is not None:
            raise bad
        out.append(meta)
    return out


def _records(event: Mapping[str, Any]) -> list[tuple[Metadata, DecodeError | None]]:
    """Each record's metadata, and the error of a field that is not base64 (None: all fine)."""
    if not isinstance(event, Mapping) or not isinstance(event.get("records"), Mapping):
        raise ConfigError(
            "this is not a Kafka event of Lambda: it has no 'records' by topic-partition (the event sources "
            f"{' and '.join(EVENT_SOURCES)} send them); is the function wired to another trigger?"
        )
    found: list[tuple[Metadata, DecodeError | None]] = []
    for group, records in event["records"].items():
        if not isinstance(records, list):
            raise ConfigError(f"the event's records of {group!r} are not a list of records")
        for record in sorted(records, key=lambda r: r.get("offset", 0)):
            found.append(_record(group, record))
    return found


def _record(group: str, record: Mapping[str, Any]) -> tuple[Metadata, DecodeError | None]:
    try:
        topic, partition, offset = str(record["topic"]), int(record["partition"]), int(record["offset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"a record of {group!r} lacks its topic, partition or offset ({exc!r})") from None
    problems: list[str] = []
    value = _bytes(record.get("value"), "value", problems)
    key = _bytes(record.get("key"), "key", problems)
    headers: list[tuple[str, bytes]] = []
    for header in record.get("headers") or ():
        for name, data in header.items():  # Lambda gives a header's bytes as a list of ints
            headers.append((str(name), bytes(data) if isinstance(data, list) else _bytes(data, name, problems) or b""))
    timestamp = record.get("timestamp")
    ms = int(timestamp) if timestamp is not None else None
    meta = Metadata.of((topic, partition), offset, key, value, ms, headers)
    if not problems:
        return meta, None
    bad = DecodeError("; ".join(problems) + ": the event was altered on its way", topic=topic, partition=partition)
    return meta, bad.located(topic, partition, offset)


def _bytes(text: Any, what: str, problems: list[str]) -> bytes | None:
    """A base64 field of a record (None when absent or null, or not base64: then said in ``problems``)."""
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        problems.append(f"the record's {what} is not base64 ({exc})")
        return None


def _at(meta: Metadata, index: int) -> Metadata:
    from dataclasses import replace

    return meta if index == 0 else replace(meta, index=index)
