"""Alert streams from Kafka: the consumer side of :class:`genesis._stream.AlertStream`.

It subscribes with cooperative rebalancing, seeks where ``start_at`` asks,
fetches batches for the shared loop, and commits. Offsets reach Kafka only
through :meth:`Stream.commit`, on close and on revocation (and then only what
``commit()`` marked): at-least-once, always.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from . import errors
from ._kafka import MAX_MESSAGE_BYTES, ErrorLog, base_config, connect, random_group_id, resolve_auth, translate
from ._stream import AlertStream, Metadata, Stats, _Message
from ._urls import StreamSpec

log = logging.getLogger("genesis")

_BATCH = 500  # messages per consume() call
_POLL_SECONDS = 0.25  # how long one consume() may block: bounds the reaction to stop() and Ctrl-C
#: how long a synchronous commit waits for a group coordinator that is moving or restarting
_COMMIT_WAIT = 120.0
#: commit errors that heal by waiting: the coordinator is being elected, moves, or its brokers restart
_COMMIT_RETRIABLE = {
    KafkaError._WAIT_COORD,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
}
#: the group moved on (session expired, rebalance): these partitions are re-read from the last commit
_COMMIT_STALE = {KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS}


def _check_start_at(start_at: Any) -> None:
    if start_at in ("earliest", "latest") or isinstance(start_at, datetime):
        return
    if isinstance(start_at, int) and not isinstance(start_at, bool) and start_at < 0:
        return
    raise errors.ConfigError(
        f"start_at={start_at!r} is not understood: use 'earliest', 'latest' (where the group has no "
        "committed offset yet), a datetime (alerts from that time on) or a negative integer -N "
        "(the last N alerts of each partition)"
    )


def start_offset(consumer: Consumer, tp: TopicPartition, start_at: datetime | int, timeout: float) -> int:
    """The offset of ``tp`` where an explicit ``start_at`` (a datetime, or -N) begins."""
    if isinstance(start_at, datetime):
        when = start_at if start_at.tzinfo else start_at.replace(tzinfo=timezone.utc)
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, int(when.timestamp() * 1000))], timeout=timeout
        )
        return found[0].offset if found[0].offset >= 0 else OFFSET_END
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
    return max(low, high + start_at)


class Stream(AlertStream):
    """An open alert stream; iterate ``stream(...)`` (or the stream itself) for ``(idx, alert)``.

    Made by :func:`genesis.streaming.open`; use it as a context manager so the
    consumer is closed (and marked offsets flushed) also when the loop fails.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        start_at: Any = "latest",
        connect_timeout: float = 30,
        decoder: Any,
        errors_policy: Callable[[Metadata, bytes | None, errors.DecodeError], None] | None,
        config: Mapping[str, Any] | None = None,
        auth: Any = None,
    ) -> None:
        _check_start_at(start_at)
        super().__init__(decoder, errors_policy)
        self.spec = spec
        auth = resolve_auth(auth, spec)  # the credentials actually used: passed, environment or file
        self.group = spec.group or random_group_id(getattr(auth, "username", None))
        self.start_at = start_at
        self.connect_timeout = connect_timeout
        self._assigned: set[tuple[str, int]] = set()
        self._eof: set[tuple[str, int]] = set()
        self._seeked: set[tuple[str, int]] = set()
        self._assigned_at: float | None = None
        #: True: when partitions are revoked, commit everything handed over so far, as ``commit()`` would.
        #: Right only for loops that finish each alert before asking for the next (revocation happens
        #: while the stream fetches, i.e. between alerts), as :func:`genesis.scaleout.run_group` does.
        self.commit_on_revoke = False
        self._errors = ErrorLog(spec.bootstrap_servers)

        explicit = not isinstance(start_at, str)
        conf = base_config(spec, auth=auth, error_log=self._errors, config=None)
        conf.update(
            {
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
            }
        )
        conf.update(config or {})
        try:
            self._consumer = Consumer(conf)
        except KafkaException as exc:
            raise errors.ConfigError(f"librdkafka refused the configuration: {exc.args[0].str()}") from None
        try:
            connect(self._consumer.list_topics, spec, self._errors, connect_timeout)
            self._consumer.subscribe(
                list(spec.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
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
                tp.offset = start_offset(consumer, tp, self.start_at, self.connect_timeout)
                self._seeked.add(key)
            self._assigned.add(key)
            self._eof.discard(key)
            self._generation[key] = self._generation.get(key, 0) + 1
        consumer.incremental_assign(partitions)
        if partitions:  # new work: the idle clock of stream(timeout=) starts again
            self._assigned_at = time.monotonic()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if self.commit_on_revoke:
            self._tracker.mark()
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
        """Commit ``offsets``; a synchronous commit waits out a coordinator outage (up to ``_COMMIT_WAIT`` s).

        If the group moved on meanwhile (the session expired, a rebalance is under way), the
        offsets stay unsent and a warning says so: the next ``commit()``, revocation or
        ``close()`` sends them, or those alerts come again (duplicates, never loss).
        """
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        deadline = time.monotonic() + _COMMIT_WAIT
        while True:
            err, topic = self._commit_once(tps, asynchronous)
            if err is None:
                break
            code = err.code()
            if code in _COMMIT_STALE or (asynchronous and code in _COMMIT_RETRIABLE):
                log.warning("offsets not committed now (%s); alerts since the last commit may come again", err.str())
                return
            if code not in _COMMIT_RETRIABLE or time.monotonic() > deadline:
                raise translate(
                    err, brokers=self.spec.bootstrap_servers, topic=topic, context=" while committing offsets"
                )
            log.warning("commit failed (%s); retrying until the group coordinator is back", err.str())
            time.sleep(0.5)
        if not asynchronous:
            self._tracker.sent(offsets)

    def _commit_once(self, tps: list[TopicPartition], asynchronous: bool) -> tuple[KafkaError | None, str | None]:
        """One commit attempt: the first error (and its topic), or ``(None, None)``."""
        try:
            result = self._consumer.commit(offsets=tps, asynchronous=asynchronous)
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError):
                return exc.args[0], None
            raise translate(exc, brokers=self.spec.bootstrap_servers, context=" while committing offsets") from None
        failed = [tp for tp in result or [] if tp.error is not None]
        return (failed[0].error, failed[0].topic) if failed else (None, None)

    # ------------------------------------------------------------------ the hooks of AlertStream
    def _fetch(self) -> list[_Message]:
        try:
            # what is queued, without waiting; else wait for the first message only: consume(n, t)
            # would hold a trickle of alerts back until n arrived or t passed (latency)
            messages = self._consumer.consume(_BATCH, 0) or self._consumer.consume(1, _POLL_SECONDS)
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
                elif err.fatal() or err.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError._UNKNOWN_TOPIC,
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                    KafkaError.GROUP_AUTHORIZATION_FAILED,
                ):
                    raise translate(err, brokers=self.spec.bootstrap_servers, topic=m.topic(), group=self.group)
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
            fetched.append(
                _Message(tp, m.offset(), m.key(), value, m.timestamp()[1], m.headers(), generation=self._generation[tp])
            )
        return fetched

    def _idle_for(self, last_message: float) -> float:
        """Seconds without a message, counted from the assignment (or after connect_timeout without one)."""
        now = time.monotonic()
        if self._assigned_at is None:
            if now - self._started < self.connect_timeout:
                return 0.0
            return now - max(last_message, self._started + self.connect_timeout)
        return now - max(last_message, self._assigned_at)

    def _caught_up(self) -> bool:
        return bool(self._assigned) and self._assigned <= self._eof

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

    def __repr__(self) -> str:
        return f"<genesis Stream {self.spec.url()} group={self.group!r}{' closed' if self._closed else ''}>"
