"""What a stream hands out beside the alerts: where each came from, and what the stream has counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Metadata:
    """Where an alert came from (``stream(metadata=True)`` yields ``(idx, alert, meta)``)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    #: the message's bytes as received (to archive or forward an alert unchanged)
    value: bytes | None = None
    #: which alert of its message this is (an Avro container may hold several), from 0
    index: int = 0

    @classmethod
    def of(
        cls,
        tp: TopicPartition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes]] | None,
        index: int = 0,
    ) -> Metadata:
        """The metadata of a message, from Kafka's fields (a timestamp in ms; 0 or less: none)."""
        ts = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc) if timestamp_ms and timestamp_ms > 0 else None
        return cls(tp[0], tp[1], offset, ts, key, tuple(headers or ()), value, index)


@dataclass
class Stats:
    """Counters of a stream, cheap to read at any time.

    ``received``: messages fetched (each counted once, however often it is handed over);
    ``alerts``: alerts processed (filtered-out ones included); ``yielded``, ``filtered``,
    ``skipped`` (undecodable, with ``on_decode_error="skip"`` or ``"quarantine"``); ``bytes`` of the
    fetched messages; ``assigned_at``: ``time.monotonic()`` when partitions were last
    assigned (``None`` before), from which rates are measured; ``started_at_end``: the
    ``(topic, partition)`` pairs where the group had no commit, so that ``start_at="latest"``
    (the default) started them at the end: a read until the end of the stream finds nothing
    there (``start_at="earliest"`` reads them from the beginning).
    """

    received: int = 0
    alerts: int = 0
    yielded: int = 0
    filtered: int = 0
    skipped: int = 0
    bytes: int = 0
    assigned_at: float | None = None
    started_at_end: frozenset[tuple[str, int]] = frozenset()
    _lag: Callable[[], dict[TopicPartition, int]] | None = field(default=None, repr=False, compare=False)

    @property
    def lag(self) -> dict[TopicPartition, int]:
        """The older spelling of ``stream.lag()`` (it asks the brokers, once per partition)."""
        return self._lag() if self._lag is not None else {}


@dataclass(frozen=True)
class Processed:
    """One message as the filter left it (``stream.outcomes()``): where it came from, how many alerts
    it held, and which were kept.

    ``kept`` lists ``(index of the alert in the message, what the filter returned)``, where ``None``
    means the alert itself, unchanged (decoded only if :meth:`survivors` is asked for).
    """

    meta: Metadata
    records: int
    kept: tuple[tuple[int, Any], ...]
    decode: Callable[[bytes | None, bytes | None], list[dict[str, Any]]] = field(repr=False, compare=False)

    @property
    def unchanged(self) -> bool:
        """Every alert of the message passed as it is: the message itself stands for the result."""
        return self.records > 0 and len(self.kept) == self.records and all(v is None for _, v in self.kept)

    @property
    def transformed(self) -> bool:
        """The filter returned something else than the alert for at least one of them."""
        return any(v is not None for _, v in self.kept)

    def survivors(self) -> list[Any]:
        """What the message yields, in order: its kept alerts (decoded here) and the filter's other results."""
        alerts: list[dict[str, Any]] | None = None
        out = []
        for i, value in self.kept:
            if value is None:
                if alerts is None:
                    alerts = self.decode(self.meta.key, self.meta.value)
                value = alerts[i]
            out.append(value)
        return out
