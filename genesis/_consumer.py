"""The reading side: a Kafka consumer whose alerts come out of a generator.

One loop (:meth:`Stream._run`): fetch a batch of messages, decode and filter
them (inline or in pool workers), hand the alerts to the user one by one, and
record per partition what was handed over (:mod:`genesis._offsets`). Offsets
reach Kafka only through :meth:`Stream.commit`, on close and on revocation
(and then only what ``commit()`` marked): at-least-once, always.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from . import errors
from ._kafka import MAX_MESSAGE_BYTES, ErrorLog, base_config, connect, random_group_id, translate
from ._offsets import OffsetTracker
from ._parallel import pool_size, submit
from ._processing import Outcome, Processor
from ._progress import ProgressBar
from ._urls import StreamSpec

log = logging.getLogger("genesis")

_BATCH = 500          # messages per consume() call
_POLL_SECONDS = 0.25  # how long one consume() may block: bounds the reaction to stop() and Ctrl-C


@dataclass(frozen=True, slots=True)
class Metadata:
    """Where an alert came from (``stream(metadata=True)`` yields ``(idx, alert, meta)``)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Stats:
    """Counters of a stream: messages received, alerts processed, yielded, filtered out, skipped."""

    received: int = 0
    alerts: int = 0
    yielded: int = 0
    filtered: int = 0
    skipped: int = 0
    bytes: int = 0
    lag: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(slots=True)
class _Message:
    """A fetched message on its way to the user, with the cursor of its next record."""

    tp: tuple[str, int]
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    headers: Any
    outcome: Outcome | None = None
    processor: Processor | None = None
    generation: int = 0
    cursor: int = 0
    kept_pos: int = 0

    @property
    def raw(self) -> tuple[bytes | None, bytes | None]:
        return self.key, self.value

    def metadata(self) -> Metadata:
        ts = (datetime.fromtimestamp(self.timestamp / 1000, tz=timezone.utc)
              if self.timestamp and self.timestamp > 0 else None)
        return Metadata(self.tp[0], self.tp[1], self.offset, ts, self.key, tuple(self.headers or ()))


def _check_start_at(start_at: Any) -> None:
    if start_at in ("earliest", "latest") or isinstance(start_at, datetime):
        return
    if isinstance(start_at, int) and not isinstance(start_at, bool) and start_at < 0:
        return
    raise errors.ConfigError(
        f"start_at={start_at!r} is not understood: use 'earliest', 'latest' (where the group has no "
        "committed offset yet), a datetime (alerts from that time on) or a negative integer -N "
        "(the last N alerts of each partition)")


class Stream:
    """An open alert stream; iterate ``stream(...)`` (or the stream itself) for ``(idx, alert)``.

    Made by :func:`genesis.streaming.open`; use it as a context manager so the
    consumer is closed (and marked offsets flushed) also when the loop fails.
    """

    def __init__(self, spec: StreamSpec, *, start_at: Any = "latest", connect_timeout: float = 30,
                 decoder: Any, errors_policy: Callable[[Metadata, bytes | None, errors.DecodeError], None] | None,
                 config: Mapping[str, Any] | None = None, auth: Any = None) -> None:
        _check_start_at(start_at)
        self.spec = spec
        self.group = spec.group or random_group_id(getattr(auth, "username", None))
        self.start_at = start_at
        self.connect_timeout = connect_timeout
        self._decoder = decoder
        self._on_decode_error = errors_policy
        self._tracker = OffsetTracker()
        self._buffer: deque[_Message] = deque()
        self._assigned: set[tuple[str, int]] = set()
        self._generation: dict[tuple[str, int], int] = {}
        self._eof: set[tuple[str, int]] = set()
        self._seeked: set[tuple[str, int]] = set()
        self._assigned_at: float | None = None
        self._idx = 0
        self._stop = threading.Event()
        self._closed = False
        self._stats = Stats()
        self._errors = ErrorLog(spec.bootstrap_servers)

        explicit = not isinstance(start_at, str)
        conf = base_config(spec, auth=auth, error_log=self._errors, config=None)
        conf.update({
            "group.id": self.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest" if explicit else start_at,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.partition.eof": True,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "fetch.max.bytes": 4 * MAX_MESSAGE_BYTES,
            "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            "receive.message.max.bytes": 4 * MAX_MESSAGE_BYTES + 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
        })
        conf.update(config or {})
        try:
            self._consumer = Consumer(conf)
        except KafkaException as exc:
            raise errors.ConfigError(f"librdkafka refused the configuration: {exc.args[0].str()}") from None
        try:
            connect(self._consumer.list_topics, spec, self._errors, connect_timeout)
            self._consumer.subscribe(list(spec.topics), on_assign=self._on_assign,
                                     on_revoke=self._on_revoke, on_lost=self._on_lost)
        except BaseException:
            self._consumer.close()
            self._closed = True
            raise
        self._started = time.monotonic()

    # ------------------------------------------------------------------ rebalance callbacks
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if not isinstance(self.start_at, str) and key not in self._seeked:
                tp.offset = self._explicit_offset(consumer, tp)
                self._seeked.add(key)
            self._assigned.add(key)
            self._eof.discard(key)
            self._generation[key] = self._generation.get(key, 0) + 1
        consumer.incremental_assign(partitions)
        if self._assigned and self._assigned_at is None:
            self._assigned_at = time.monotonic()

    def _explicit_offset(self, consumer: Consumer, tp: TopicPartition) -> int:
        if isinstance(self.start_at, datetime):
            when = self.start_at if self.start_at.tzinfo else self.start_at.replace(tzinfo=timezone.utc)
            found = consumer.offsets_for_times(
                [TopicPartition(tp.topic, tp.partition, int(when.timestamp() * 1000))],
                timeout=self.connect_timeout)
            return found[0].offset if found[0].offset >= 0 else OFFSET_END
        low, high = consumer.get_watermark_offsets(tp, timeout=self.connect_timeout)
        return max(low, high + self.start_at)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        unsent = self._tracker.unsent(revoked)
        if unsent:
            try:
                self._send(unsent, asynchronous=False)
            except errors.GenesisError as exc:  # the alerts will be redelivered: duplicates, not loss
                log.warning("could not commit offsets of revoked partitions: %s", exc)
        self._drop(revoked)
        consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost partitions already belong to someone else: committing would fail; just let go.
        self._drop({(tp.topic, tp.partition) for tp in partitions})
        consumer.incremental_unassign(partitions)

    def _drop(self, tps: set[tuple[str, int]]) -> None:
        self._tracker.forget(tps)
        self._buffer = deque(m for m in self._buffer if m.tp not in tps)
        self._assigned -= tps
        self._eof -= tps
        for tp in tps:
            self._generation[tp] = self._generation.get(tp, 0) + 1

    # ------------------------------------------------------------------ commits
    def commit(self, asynchronous: bool = False) -> None:
        """Remember, in Kafka, that every alert handed to you so far is processed.

        Per partition the committed position is the one after the last alert that
        was handed over (or dropped by the filter), never beyond; a message holding
        several alerts counts once all of them were handed over. With
        ``asynchronous=False`` (default) it returns when the brokers acknowledged it.
        """
        unsent = self._tracker.mark()
        if unsent:
            self._send(unsent, asynchronous)

    def _send(self, offsets: dict[tuple[str, int], int], asynchronous: bool) -> None:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            result = self._consumer.commit(offsets=tps, asynchronous=asynchronous)
        except KafkaException as exc:
            raise translate(exc, brokers=self.spec.bootstrap_servers, context=" while committing offsets") from None
        if asynchronous:
            return
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise translate(failed[0].error, brokers=self.spec.bootstrap_servers, topic=failed[0].topic,
                            context=" while committing offsets")
        self._tracker.sent(offsets)

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self()

    def __call__(self, timeout: float | None = None, limit: int | None = None, progress: bool = False,
                 filter: Callable[[dict], Any] | None = None, pool: Any = None, until_eos: bool = False,
                 metadata: bool = False) -> Iterator[tuple]:
        """Yield ``(idx, alert)`` (or ``(idx, alert, meta)`` with ``metadata=True``).

        timeout:   stop after this many seconds without a new message (the clock starts
                   once partitions are assigned); ``None`` waits forever.
        limit:     stop after this many yielded alerts; the rest of the fetched batch
                   stays for the next call on this stream.
        progress:  show a progress bar (terminal or notebook).
        filter:    ``filter(alert)`` returns None/False to drop the alert, True to keep
                   it, anything else to yield that instead.
        pool:      decode and filter in these worker processes (``gs.Pool(n)``,
                   ``multiprocessing.Pool``, ``ProcessPoolExecutor``).
        until_eos: stop once caught up with the end of every assigned partition.
        ``idx`` counts every alert this stream processed, filtered-out ones included.
        """
        if self._closed:
            raise errors.ConfigError("this stream is closed; open a new one with gs.open(...)")
        for name, value in (("timeout", timeout), ("limit", limit)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise errors.ConfigError(f"{name} must be a non-negative number or None, not {value!r}")
        if filter is not None and not callable(filter):
            raise errors.ConfigError(f"filter must be a function taking an alert, not {type(filter).__name__}")
        return self._run(timeout, limit, progress, Processor(self._decoder, filter), pool, until_eos, metadata)

    def _run(self, timeout: float | None, limit: int | None, progress: bool, processor: Processor,
             pool: Any, until_eos: bool, metadata: bool) -> Iterator[tuple]:
        self._stop.clear()
        bar = ProgressBar(progress, total=limit)
        pipeline = _Pipeline(pool, processor) if pool is not None else None
        yielded = 0
        last_message = time.monotonic()
        try:
            while not self._stop.is_set():
                while self._buffer:
                    if limit is not None and yielded >= limit:
                        return
                    msg = self._buffer[0]
                    if msg.outcome is None or msg.processor.filter is not processor.filter:
                        self._reprocess(msg, processor)
                    for value in self._hand_out(msg, bar):
                        yielded += 1
                        yield (self._idx - 1, value, msg.metadata()) if metadata else (self._idx - 1, value)
                        if limit is not None and yielded >= limit:
                            break
                if limit is not None and yielded >= limit:
                    return
                if until_eos and self._caught_up(pipeline):
                    return
                if timeout is not None and self._idle_for(last_message) >= timeout:
                    if pipeline is None or not pipeline.busy:
                        return
                fetched = self._fetch()
                if fetched:
                    last_message = time.monotonic()
                    if until_eos and bar.total is None:
                        bar.set_total(self._backlog() + self._stats.alerts)
                self._admit(pipeline.push(fetched) if pipeline is not None else fetched)
        finally:
            if pipeline is not None:  # finished work is kept for the next call, not lost
                self._admit(pipeline.drain())
            bar.close()

    def _admit(self, messages: list[_Message]) -> None:
        """Queue messages for the user, except those of partitions revoked since they were fetched."""
        gen = self._generation
        self._buffer.extend(m for m in messages if gen.get(m.tp) == m.generation)

    @staticmethod
    def _reprocess(msg: _Message, processor: Processor) -> None:
        """(Re)decode and filter a message inline, e.g. one left over from a call with another filter."""
        msg.outcome, msg.processor = processor.process(msg.key, msg.value), processor
        msg.kept_pos = sum(1 for i, _ in msg.outcome.kept or () if i < msg.cursor)

    def _hand_out(self, msg: _Message, bar: ProgressBar) -> Iterator[Any]:
        """Yield the kept alerts of the message at the buffer head, counting each record once."""
        out = msg.outcome
        if out.decode_error is not None:
            self._decode_failed(msg)
            return
        kept = out.kept or []
        while msg.cursor < out.n:
            i = msg.cursor
            if out.filter_error is not None and i == out.failed_at:
                self._filter_failed(msg)
            msg.cursor += 1
            self._idx += 1
            self._stats.alerts += 1
            bar.update()
            if msg.kept_pos < len(kept) and kept[msg.kept_pos][0] == i:
                value = kept[msg.kept_pos][1]
                msg.kept_pos += 1
                if msg.cursor == out.n:
                    self._finish(msg)
                self._stats.yielded += 1
                yield value
            else:
                self._stats.filtered += 1
                if msg.cursor == out.n:
                    self._finish(msg)
        if out.n == 0:
            self._finish(msg)

    def _finish(self, msg: _Message) -> None:
        self._buffer.popleft()
        self._tracker.done(msg.tp, msg.offset)

    def _decode_failed(self, msg: _Message) -> None:
        err = msg.outcome.decode_error.located(msg.tp[0], msg.tp[1], msg.offset)
        if self._on_decode_error is None:
            raise err
        self._on_decode_error(msg.metadata(), msg.value, err)  # may raise to stop the stream
        self._stats.skipped += 1
        self._finish(msg)

    def _filter_failed(self, msg: _Message) -> None:
        out = msg.outcome
        exc = out.filter_error
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        err = errors.FilterError(
            f"the filter raised {text} on alert {out.failed_at} of the message at "
            f"{msg.tp[0]}[{msg.tp[1]}]@{msg.offset}; nothing from this message on is committed.\n"
            f"{out.filter_traceback}", topic=msg.tp[0], partition=msg.tp[1], offset=msg.offset)
        raise err from (exc if isinstance(exc, BaseException) else None)

    def _fetch(self) -> list[_Message]:
        try:
            messages = self._consumer.consume(_BATCH, _POLL_SECONDS)
        except KafkaException as exc:
            raise translate(exc, brokers=self.spec.bootstrap_servers) from None
        self._errors.raise_fatal()
        fetched = []
        for m in messages:
            err = m.error()
            tp = (m.topic(), m.partition())
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self._eof.add(tp)
                elif err.fatal() or err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                                  KafkaError.TOPIC_AUTHORIZATION_FAILED):
                    raise translate(err, brokers=self.spec.bootstrap_servers, topic=m.topic())
                else:
                    log.warning("Kafka: %s", err.str())
                continue
            if tp not in self._assigned:
                continue
            self._eof.discard(tp)
            value = m.value()
            self._stats.received += 1
            self._stats.bytes += len(value) if value else 0
            self._tracker.fetched(tp, m.offset())
            fetched.append(_Message(tp, m.offset(), m.key(), value, m.timestamp()[1], m.headers(),
                                    generation=self._generation[tp]))
        return fetched

    def _idle_for(self, last_message: float) -> float:
        """Seconds without a message, counted from the assignment (or after connect_timeout without one)."""
        now = time.monotonic()
        if self._assigned_at is None:
            if now - self._started < self.connect_timeout:
                return 0.0
            return now - max(last_message, self._started + self.connect_timeout)
        return now - max(last_message, self._assigned_at)

    def _caught_up(self, pipeline: "_Pipeline | None") -> bool:
        return (bool(self._assigned) and self._assigned <= self._eof and not self._buffer
                and (pipeline is None or not pipeline.busy))

    def _backlog(self) -> int:
        """Messages between the current positions and the ends of the assigned partitions."""
        tps = [TopicPartition(t, p) for t, p in self._assigned]
        total = 0
        try:
            for tp in self._consumer.position(tps):
                low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                total += max(0, high - (tp.offset if tp.offset >= 0 else low))
        except KafkaException:
            return 0
        return total

    # ------------------------------------------------------------------ control
    @property
    def stats(self) -> Stats:
        """A snapshot of the counters, with the lag (messages not yet fetched) per assigned partition."""
        lag = {}
        try:
            for tp in self._consumer.position([TopicPartition(t, p) for t, p in sorted(self._assigned)]):
                low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                lag[(tp.topic, tp.partition)] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        except (KafkaException, RuntimeError):
            pass
        return Stats(**{**self._stats.__dict__, "lag": lag})

    @property
    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this stream currently reads."""
        return set(self._assigned)

    def stop(self) -> None:
        """End the running loop after the current alert; safe from another thread or a signal handler."""
        self._stop.set()

    def close(self) -> None:
        """Flush offsets marked by ``commit()`` (nothing else) and leave the group."""
        if self._closed:
            return
        self._closed = True
        try:
            unsent = self._tracker.unsent()
            if unsent:
                self._send(unsent, asynchronous=False)
        finally:
            self._consumer.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<genesis Stream {self.spec.url()} group={self.group!r}{' closed' if self._closed else ''}>"


class _Pipeline:
    """Keeps pool workers busy: up to two fetched batches in flight while the user gets the previous one."""

    def __init__(self, pool: Any, processor: Processor) -> None:
        self.pool = pool
        self.processor = processor
        self.workers = pool_size(pool)
        self._inflight: deque[tuple[list[_Message], Iterator[list[Outcome]]]] = deque()

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def push(self, batch: list[_Message]) -> list[_Message]:
        """Send ``batch`` to the workers; return the oldest finished batch once two are in flight
        (or the remaining one when nothing new arrived)."""
        if batch:
            size = max(1, min(50, -(-len(batch) // (2 * self.workers))))
            chunks = [[m.raw for m in batch[i:i + size]] for i in range(0, len(batch), size)]
            self._inflight.append((batch, submit(self.pool, self.processor, chunks)))
        if len(self._inflight) >= 2 or (not batch and self._inflight):
            return self._collect()
        return []

    def _collect(self) -> list[_Message]:
        batch, results = self._inflight.popleft()
        outcomes = [o for chunk in results for o in chunk]
        for msg, outcome in zip(batch, outcomes):
            msg.outcome, msg.processor = outcome, self.processor
        return batch

    def drain(self) -> list[_Message]:
        done = []
        while self._inflight:
            done.extend(self._collect())
        return done
