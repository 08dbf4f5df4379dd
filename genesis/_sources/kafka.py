"""Messages from a Kafka consumer group: the source behind ``gs.open("kafka://...")``.

It subscribes with cooperative rebalancing, seeks where ``start_at`` asks, fetches
what is queued, and commits the positions its stream gives it. Offsets reach Kafka
only through :meth:`KafkaSource.commit`, which the stream calls from
``stream.commit()``, on close and on revocation: at-least-once, always.

**Slow users keep their place.** Kafka drops a consumer from its group when the
application does not poll within ``max.poll.interval.ms``, and its partitions go to
another (or, alone in its group, come back re-read from the last commit: the same
alerts twice). While the user works on an alert (the stream's generator suspended at a
``yield``, or a notebook between cells), a keeper thread pauses the assigned partitions
and polls the consumer, so the group keeps it, up to ``max_hold`` seconds; after that it
lets go, and the next step raises :class:`~genesis.errors.HeldTooLongError`. The keeper
takes the stream's ``owner`` lock first: never two threads in the consumer at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import Message as KafkaMessage

from .. import errors
from .._kafka import (
    CONNECT_TIMEOUT,
    MAX_MESSAGE_BYTES,
    Credentials,
    ErrorLog,
    connect,
    new_consumer,
    random_group_id,
    resolve_auth,
    translate,
)
from .._urls import StreamSpec
from . import Listener, Message
from . import TopicPartition as TP
from .stall import STALL_TIMEOUT, Behind, StallWatch, behind, check_stall_timeout

log = logging.getLogger("genesis")


def _names(partitions: Iterable[TP]) -> str:
    """``topic[p], ...`` (the form of the debug log of assignments, which tests parse)."""
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))


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
#: how long the consumer may go unpolled before the keeper polls it (far below any max.poll.interval.ms)
_KEEP_AFTER = 1.0
#: how long the user may hold an alert before the keeper lets the group go (gs.open(max_hold=))
MAX_HOLD = 1800.0
#: message errors that end the stream (the rest are logged: librdkafka retries them)
_FATAL_FETCH = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
}


def check_start_at(start_at: Any) -> None:
    """Raise :class:`~genesis.errors.ConfigError` unless ``start_at`` is something ``gs.open`` understands."""
    if start_at in ("earliest", "latest") or isinstance(start_at, datetime):
        return
    if isinstance(start_at, int) and not isinstance(start_at, bool) and start_at < 0:
        return
    if isinstance(start_at, Mapping) and all(
        isinstance(k, tuple) and len(k) == 2 and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in start_at.items()
    ):
        return
    raise errors.ConfigError(
        f"start_at={start_at!r} is not understood: use 'earliest', 'latest' (where the group has no "
        "committed offset yet), a datetime (alerts from that time on), a negative integer -N "
        "(the last N alerts of each partition) or {(topic, partition): offset} (positions kept elsewhere)"
    )


def start_offset(
    consumer: Consumer, tp: TopicPartition, start_at: datetime | int | Mapping[TP, int], timeout: float
) -> int:
    """The offset of ``tp`` where an explicit ``start_at`` (a datetime, -N, or given positions) begins."""
    if isinstance(start_at, Mapping):  # positions kept with the data (a database's transaction)
        return start_at.get((tp.topic, tp.partition), OFFSET_BEGINNING)
    if isinstance(start_at, datetime):
        when = start_at if start_at.tzinfo else start_at.replace(tzinfo=timezone.utc)
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, int(when.timestamp() * 1000))], timeout=timeout
        )
        return found[0].offset if found[0].offset >= 0 else OFFSET_END
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
    return max(low, high + start_at)


class KafkaSource:
    """A consumer of one group over the URL's topics (names or ``^patterns``)."""

    bounded = False
    atomic_commits = False

    def __init__(
        self,
        spec: StreamSpec,
        *,
        start_at: Any = "latest",
        connect_timeout: float | None = None,
        config: Mapping[str, Any] | None = None,
        auth: Credentials = None,
        max_hold: float = MAX_HOLD,
        stall_timeout: float = STALL_TIMEOUT,
        keep: bool = True,
    ) -> None:
        check_start_at(start_at)
        self._watch = StallWatch(check_stall_timeout(stall_timeout))
        #: how many times a stalled consumer was replaced by a new one
        self.rebuilds = 0
        if isinstance(max_hold, bool) or not isinstance(max_hold, (int, float)) or max_hold <= 0:
            raise errors.ConfigError(f"max_hold must be a positive number of seconds, not {max_hold!r}")
        self.spec = spec
        self.max_hold = float(max_hold)
        auth = resolve_auth(auth, spec)  # the credentials actually used: passed, environment or file
        self.group: str | None = spec.group or random_group_id(getattr(auth, "username", None))
        self.start_at = start_at
        self.connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.assigned_at: float | None = None
        self._idle_since: float | None = None  # set by a rebuild: the idle clock the next assignment keeps
        self._assigned: set[TP] = set()
        self._eof: set[TP] = set()
        self._seeked: set[TP] = set()
        self._listener: Listener | None = None
        self._errors = ErrorLog(spec.bootstrap_servers)
        self._polled = time.monotonic()  # when the stream last polled the consumer itself
        self._paused = False  # the keeper paused the assigned partitions
        self._held: float | None = None  # set when the keeper let go after max_hold
        self._stash: list[KafkaMessage] = []  # what the keeper's polls returned (prefetched before the pause)
        self._kept_error: Exception | None = None  # what the keeper's polls raised, for the next fetch
        #: partitions revoked or lost: the position after what the stream had handed out of them
        self._returning: dict[TP, int] = {}
        #: partitions where the group had no commit and that started at the end (start_at="latest")
        self.started_at_end: set[TP] = set()
        self._asked: set[TP] = set()  # partitions whose group commit was looked up for that
        self._done = threading.Event()
        self._keeper: threading.Thread | None = None
        self._keep_group = keep  # run the keeper (a loop that never holds an alert long needs none)
        explicit = not isinstance(start_at, str)
        settings = {
            # outputs of aborted transactions (an exactly-once pipe that failed) are never read;
            # librdkafka's default too, but Java and Spark clients default to read_uncommitted
            "isolation.level": "read_committed",
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
        self._settings = {**settings, **(config or {})}
        self._new_consumer = lambda: new_consumer(
            spec, group=self.group or "", auth=auth, error_log=self._errors, config=config, settings=settings
        )
        self._consumer = self._new_consumer()
        try:
            connect(self._consumer.list_topics, spec, self._errors, connect_timeout)
        except BaseException:
            self._consumer.close()
            raise
        self._started = time.monotonic()

    def bind(self, listener: Listener) -> None:
        """Subscribe; the rebalance callbacks (run inside ``fetch``, or the keeper's polls) go to
        ``listener``; start the keeper."""
        self._listener = listener
        self._subscribe()
        if self._keep_group:
            self._keeper = threading.Thread(
                target=self._keep, args=(listener.owner,), name="genesis-keeper", daemon=True
            )
            self._keeper.start()

    def _subscribe(self) -> None:
        try:
            self._consumer.subscribe(
                list(self.spec.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
        except BaseException:
            self._consumer.close()
            raise

    # ------------------------------------------------------------------ while the user holds an alert
    def _keep(self, owner: threading.RLock) -> None:
        """Poll the paused consumer while the stream is not polling it, up to ``max_hold``."""
        while not self._done.wait(_KEEP_AFTER / 2):
            if time.monotonic() - self._polled < _KEEP_AFTER or self._held is not None:
                continue
            if not owner.acquire(blocking=False):  # the stream is working: it polls by itself
                continue
            try:
                if self._done.is_set():
                    return
                held = time.monotonic() - self._polled
                if held > self.max_hold:  # let go: the group takes the partitions after max.poll.interval.ms
                    self._held = held
                    continue
                if not self._paused:
                    self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])
                    self._paused = True
                self._stash += self._consumer.consume(_BATCH, 0)  # serves rebalances, resets the poll clock
            except RuntimeError as exc:  # closed meanwhile
                log.debug("keeper: %s", exc)
            except Exception as exc:  # a rebalance callback failed, a fatal error: the stream's next fetch raises it
                self._kept_error = exc
            finally:
                owner.release()

    def handed_back(self) -> None:
        """The user is done with an alert: if the keeper had to let the group go, say so now."""
        if self._held is not None:
            self._resume()

    def _resume(self) -> None:
        """The stream polls again: end the keeper's pause, or say it let go."""
        if self._held is not None:
            held, self._held = self._held, None
            interval = self._consumer_setting("max.poll.interval.ms")
            raise errors.HeldTooLongError(
                f"the loop held one alert for {held:.0f} s, longer than max_hold={self.max_hold:g} s: genesis "
                f"stopped keeping the consumer in group {self.group!r}, so after max.poll.interval.ms "
                f"({interval} ms) Kafka gave its partitions to other consumers; the alerts after the last "
                "commit will come again. Open the stream with a larger max_hold=, or commit, close and "
                "reopen it around very long work."
            )
        if self._paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = False

    def _consumer_setting(self, name: str) -> str:
        return str(self._settings.get(name, "300000 (librdkafka's default)"))

    # ------------------------------------------------------------------ rebalance callbacks
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if not isinstance(self.start_at, str) and key not in self._seeked:
                tp.offset = start_offset(consumer, tp, self.start_at, self.connect_timeout)
                self._seeked.add(key)
            keys.append(key)
        self._resume_returning(consumer, partitions)
        log.debug("partitions assigned: %s", _names(keys))
        if self.start_at == "latest":
            self._note_started_at_end(consumer, partitions)
        self._assigned.update(keys)
        self._eof.difference_update(keys)
        assert self._listener is not None
        self._listener.assigned(keys)
        consumer.incremental_assign(partitions)
        if self._paused:  # assigned while the keeper holds the consumer: paused like the others
            consumer.pause(partitions)
        else:
            # librdkafka keeps a partition's pause across unassign and assign: one the keeper paused
            # before it was revoked or lost would come back paused, and never be read
            consumer.resume(partitions)
        if partitions:  # new work: the idle clock of stream(timeout=) starts again (not after a rebuild)
            self.assigned_at = self._idle_since if self._idle_since is not None else time.monotonic()
            self._idle_since = None

    def _resume_returning(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start partitions that come back after what this stream handed out of them before.

        Without a position of its own librdkafka starts a partition at the group's committed
        offset; but the stream sends only what ``commit()`` marked when a partition goes (a loop
        may batch its commits), so alerts it handed out after its last commit would come again in
        the same stream. A partition that returns resumes at the larger of the two positions:
        after what this stream handed out, or where the group committed if another member got
        further. Nothing is committed here: a crash still redelivers what was not committed.
        """
        returning = [tp for tp in partitions if (tp.topic, tp.partition) in self._returning]
        if not returning:
            return
        handed = {(tp.topic, tp.partition): self._returning.pop((tp.topic, tp.partition)) for tp in returning}
        committed = self._committed(consumer, returning, "returning partitions")
        if committed is None:  # librdkafka starts them at the group's commit: duplicates, not loss
            return
        for tp in returning:
            key = (tp.topic, tp.partition)
            tp.offset = max(handed[key], committed.get(key, -1))
            log.debug("%s[%d] comes back: resuming at %d", tp.topic, tp.partition, tp.offset)

    def _note_started_at_end(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Remember which of the newly assigned ``partitions`` the group never committed: with
        ``start_at="latest"`` they start at the end, and a read until the end of the stream ends
        at once with nothing, which the CLI and the pipe's statistics then explain."""
        partitions = [tp for tp in partitions if (tp.topic, tp.partition) not in self._asked]
        if not partitions:
            return
        self._asked.update((tp.topic, tp.partition) for tp in partitions)
        committed = self._committed(consumer, partitions, "new partitions")
        if committed is not None:
            self.started_at_end.update(key for key, offset in committed.items() if offset < 0)

    def _committed(self, consumer: Consumer, partitions: list[TopicPartition], what: str) -> dict[TP, int] | None:
        """The group's committed offsets of ``partitions`` (negative: none), or ``None`` if the
        brokers did not answer (logged)."""
        try:
            found = consumer.committed(
                [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=self.connect_timeout
            )
        except KafkaException as exc:
            log.warning("could not ask for the committed offsets of %s (%s)", what, exc)
            return None
        return {(tp.topic, tp.partition): tp.offset for tp in found}

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        log.debug("partitions revoked: %s", _names(revoked))
        assert self._listener is not None
        self._remember(revoked)
        self._listener.revoking(revoked)  # commits what is owed for them, while they are still ours
        self._let_go(consumer, partitions, revoked)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost partitions already belong to someone else: committing would fail; just let go.
        lost = {(tp.topic, tp.partition) for tp in partitions}
        log.debug("partitions lost: %s", _names(lost))
        assert self._listener is not None
        self._remember(lost)
        self._listener.lost(lost)
        self._let_go(consumer, partitions, lost)

    def _remember(self, tps: set[TP]) -> None:
        """Keep where the stream's handing out of ``tps`` stands, for when they come back.

        Not for atomic commits: there an uncommitted position belongs to a transaction that is
        aborted, whose inputs must be read again from the group's commit.
        """
        if not self.atomic_commits:
            assert self._listener is not None
            self._returning.update(self._listener.handed_out(tps))

    def _let_go(self, consumer: Consumer, partitions: list[TopicPartition], tps: set[TP]) -> None:
        self._assigned -= tps
        self._eof -= tps
        self._stash = [m for m in self._stash if (m.topic(), m.partition()) not in tps]
        consumer.incremental_unassign(partitions)

    # ------------------------------------------------------------------ fetching
    def fetch(self) -> list[Message]:
        self._watch.polling()
        self._polled = time.monotonic()
        try:
            self._resume()
            if self._kept_error is not None:
                kept, self._kept_error = self._kept_error, None
                raise kept
            messages, self._stash = self._stash, []
            # what is queued, without waiting; else wait for the first message only: consume(n, t)
            # would hold a trickle of alerts back until n arrived or t passed (latency)
            messages += self._consumer.consume(_BATCH, 0) or self._consumer.consume(1, _POLL_SECONDS)
        except KafkaException as exc:
            raise translate(exc, brokers=self.spec.bootstrap_servers) from None
        finally:
            self._polled = time.monotonic()
        self._errors.raise_fatal()
        fetched = []
        for m in messages:
            err = m.error()
            tp: TP = (m.topic() or "", m.partition() or 0)
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self._eof.add(tp)
                elif err.fatal() or err.code() in _FATAL_FETCH:
                    raise translate(err, brokers=self.spec.bootstrap_servers, topic=m.topic(), group=self.group)
                else:
                    log.warning("Kafka: %s", err.str())
                continue
            if tp not in self._assigned:
                continue
            self._eof.discard(tp)
            headers = m.headers()
            fetched.append(Message(tp, m.offset() or 0, m.key(), m.value(), m.timestamp()[1], headers))  # type: ignore[arg-type]
        self._watch.polled(bool(fetched))
        if not fetched and self._watch.due():
            stalled = self._stalled()
            if stalled:
                self._rebuild(stalled)
        return fetched

    # ------------------------------------------------------------------ stalls
    def _stalled(self) -> list[Behind]:
        """The assigned partitions short of their ends, as the brokers say now (none when they do not
        answer: that is an outage, which librdkafka rides out by itself, not a stall)."""
        if not self._assigned:
            return []
        parts = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        try:
            ends = {
                (tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                for tp in parts
            }
            positions = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(parts)}
            unread = [TopicPartition(t, p) for (t, p), offset in positions.items() if offset < 0]
            for tp in self._consumer.committed(unread, timeout=5) if unread else []:
                key = (tp.topic, tp.partition)
                # nothing read since the assignment: it starts at the commit, else where auto.offset.reset says
                earliest = self._settings.get("auto.offset.reset") in ("earliest", "smallest", "beginning")
                positions[key] = tp.offset if tp.offset >= 0 else (-1 if earliest else ends[key][1])
        except KafkaException as exc:
            log.debug("stall check: the brokers do not answer (%s)", exc)
            return []
        if any(end is None for end in ends.values()):
            return []
        return behind(positions, ends)

    def _rebuild(self, stalled: list[Behind]) -> None:
        """Replace a stalled consumer: give its partitions up as in a revocation (what ``commit()``
        marked is committed, the stream drops what it fetched of them and remembers what it handed
        out), close it (it leaves the group), and join with a new one, which resumes each partition
        after what was handed out or at the group's commit."""
        log.warning(
            "genesis: nothing received for %.0f s from group %r although %s; librdkafka's fetcher seems "
            "stalled: committing what is owed and rebuilding the consumer (it resumes where this stream "
            "stands, nothing is lost)",
            self._watch.quiet_for(),
            self.group,
            ", ".join(str(b) for b in stalled) + (" are" if len(stalled) > 1 else " is") + " behind the end",
        )
        self._on_revoke(self._consumer, [TopicPartition(t, p) for t, p in sorted(self._assigned)])
        self._stash = []
        self._consumer.close()
        self._consumer = self._new_consumer()
        self._subscribe()
        self.rebuilds += 1
        # the idle clock of stream(timeout=) goes on across a rebuild (the new consumer's assignment
        # is not new work): partitions that stay unreadable end the stream at its timeout, not never
        self._idle_since = self.assigned_at
        self._watch.healed()

    def idle_for(self, last_message: float) -> float:
        """Seconds without a message, counted from the assignment (or after connect_timeout without one)."""
        now = time.monotonic()
        if self.assigned_at is None:
            if now - self._started < self.connect_timeout:
                return 0.0
            return now - max(last_message, self._started + self.connect_timeout)
        return now - max(last_message, self.assigned_at)

    def caught_up(self) -> bool:
        return bool(self._assigned) and self._assigned <= self._eof

    def seek(self, tp: TP, offset: int) -> None:
        """Read ``tp`` again from ``offset``: it is no longer caught up until its end is reached again."""
        self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        self._eof.discard(tp)

    def lag(self) -> dict[TP, int]:
        """Messages between the current positions and the ends of the assigned partitions, per partition."""
        lag = {}
        try:
            for tp in self._consumer.position([TopicPartition(t, p) for t, p in sorted(self._assigned)]):
                low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                lag[(tp.topic, tp.partition)] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        except (KafkaException, RuntimeError):  # RuntimeError: the consumer is closed
            pass
        return lag

    def backlog(self) -> int:
        return sum(self.lag().values())

    @property
    def assignment(self) -> set[TP]:
        return set(self._assigned)

    # ------------------------------------------------------------------ commits
    def commit(self, offsets: dict[TP, int], asynchronous: bool) -> bool:
        """Commit ``offsets``; a synchronous commit waits out a coordinator outage (up to ``_COMMIT_WAIT`` s).

        If the group moved on meanwhile (the session expired, a rebalance is under way), the
        offsets stay unsent and a warning says so (False): the next ``commit()``, revocation or
        ``close()`` sends them, or those alerts come again (duplicates, never loss).
        """
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        deadline = time.monotonic() + _COMMIT_WAIT
        while True:
            err, topic = self._commit_once(tps, asynchronous)
            if err is None:
                return not asynchronous
            code = err.code()
            if code in _COMMIT_STALE or (asynchronous and code in _COMMIT_RETRIABLE):
                log.warning("offsets not committed now (%s); alerts since the last commit may come again", err.str())
                return False
            if code not in _COMMIT_RETRIABLE or time.monotonic() > deadline:
                raise translate(
                    err, brokers=self.spec.bootstrap_servers, topic=topic, context=" while committing offsets"
                )
            log.warning("commit failed (%s); retrying until the group coordinator is back", err.str())
            time.sleep(0.5)

    def _commit_once(self, tps: list[TopicPartition], asynchronous: bool) -> tuple[KafkaError | None, str | None]:
        """One commit attempt: the first error (and its topic), or ``(None, None)``."""
        try:
            if asynchronous:
                self._consumer.commit(offsets=tps, asynchronous=True)
                return None, None  # the outcome arrives later; a failure shows at the next commit
            result = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError):
                return exc.args[0], None
            raise translate(exc, brokers=self.spec.bootstrap_servers, context=" while committing offsets") from None
        failed = [tp for tp in result or [] if tp.error is not None]
        return (failed[0].error, failed[0].topic) if failed else (None, None)

    def close(self) -> None:
        """Stop the keeper and leave the group."""
        self._done.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=10)
        self._consumer.close()

    def describe(self) -> str:
        return f"{self.spec.url()} group={self.group!r}"
