"""A consumer group whose commits are Kafka transactions: the source of the exactly-once pipe.

The pipe produces its outputs through a transactional producer (:class:`Transaction`); a commit
of this source sends the input positions *into that transaction* and commits it, so outputs and
input offsets become visible together, or not at all. A transaction that cannot complete is
aborted: its outputs vanish for ``read_committed`` readers, and the source rewinds every
assigned partition to its committed position so those inputs are processed again (never
skipped). A zombie — a pipe process that lost its partitions without noticing, or an earlier
incarnation of the same slot — is fenced by the brokers: by its transactional id (a restarted
slot takes it over) and by the consumer group's generation it sends with the offsets (KIP-447).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from .. import errors
from .._kafka import MAX_MESSAGE_BYTES, Credentials, ErrorLog, new_admin, new_producer, translate
from .._urls import StreamSpec
from . import Message
from . import TopicPartition as TP
from .kafka import KafkaSource

log = logging.getLogger("genesis")

#: how long an abandoned transaction (a pipe SIGKILLed) may block readers before the brokers abort it
TRANSACTION_TIMEOUT_MS = 10_000
#: how long one transactional call (begin, send offsets, commit, abort) may take
_CALL_TIMEOUT = 30.0
#: how long past its own timeout a transactional call may block before its producer is given up
CALL_GRACE = 5.0
#: errors that fence this producer for good: another incarnation of its slot took over
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


class Aborted(Exception):
    """The transaction was aborted: its outputs are discarded and its inputs must be read again."""


class Stuck(Exception):
    """A transactional call did not return within its timeout plus a grace period."""


def call_within(what: str, call: Callable[[float], object], timeout: float) -> None:
    """Run ``call(timeout)``, but never wait longer than ``timeout`` + :data:`CALL_GRACE` for it to return.

    librdkafka's ``send_offsets_to_transaction`` can block past its timeout, for ever, when the
    consumer group's coordinator goes down during the call (librdkafka #5456 and #5511, open in
    2.16): the call runs in a daemon thread, and one that does not return in time raises
    :class:`Stuck`, leaving the thread (and its producer) behind. The call's own exceptions are
    raised here.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call(timeout)
            outcome.append(None)
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)

    thread = threading.Thread(target=run, name=f"genesis-{what}", daemon=True)
    thread.start()
    thread.join(timeout + CALL_GRACE)
    if not outcome:
        raise Stuck(f"{what} did not return within {timeout + CALL_GRACE:.0f} s")
    if outcome[0] is not None:
        raise outcome[0]


class Transaction:
    """The pipe's transactional producer: one ``transactional.id`` per pipe slot, one open transaction."""

    def __init__(
        self,
        spec: StreamSpec,
        transactional_id: str,
        *,
        auth: Credentials = None,
        config: Mapping[str, Any] | None = None,
        timeout: float = _CALL_TIMEOUT,
    ) -> None:
        self.spec = spec
        self.transactional_id = transactional_id
        self.timeout = timeout
        self._auth, self._config = auth, config
        self._errors = ErrorLog(spec.bootstrap_servers)
        _check_transaction_log(spec, auth)
        self._begun: float | None = None  # when the open transaction's first output or offsets went
        self.producer = self._start()

    def _start(self) -> Producer:
        """A transactional producer of this slot with its first transaction begun.

        Its ``init_transactions`` fences every earlier producer of the slot (an earlier
        incarnation, or this pipe's own producer given up after a stuck call) and aborts the
        transaction that one left open.
        """
        producer = new_producer(
            self.spec,
            auth=self._auth,
            error_log=self._errors,
            config=self._config,
            settings={
                "transactional.id": self.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "linger.ms": 5,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "queue.buffering.max.kbytes": 512 * 1024,
            },
        )
        try:
            call_within("init_transactions", producer.init_transactions, self.timeout)
        except KafkaException as exc:
            raise self._failed(exc, "starting the pipe's transactions") from None
        except Stuck as exc:
            raise errors.BrokerUnreachableError(
                f"{exc}: the brokers at {self.spec.bootstrap_servers} did not answer the pipe's "
                "transaction coordinator requests; check that they are up, then start the pipe again",
                brokers=self.spec.bootstrap_servers,
            ) from None
        producer.begin_transaction()
        self._begun = None
        return producer

    def produce(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, str | bytes | None]], partition: int
    ) -> None:
        """Queue one output in the open transaction (waits while librdkafka's queue is full)."""
        if self._begun is None:  # the brokers count a transaction's age from its first output
            self._begun = time.monotonic()
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition, headers=headers)
                break
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as exc:
                raise translate(exc, brokers=self.spec.bootstrap_servers, topic=topic) from None
        self.producer.poll(0)

    def commit(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        """Commit the outputs so far together with the input ``offsets``; begin the next transaction.

        Raises :class:`Aborted` when the transaction had to be aborted (its outputs vanish; read
        the inputs again), :class:`~genesis.errors.FencedError` when another incarnation took over.
        """
        deadline = time.monotonic() + self.timeout
        if self._begun is None:  # nothing produced: the offsets start the transaction
            self._begun = time.monotonic()
        producer = self.producer
        try:
            self._retrying(
                "send_offsets_to_transaction",
                lambda t: producer.send_offsets_to_transaction(offsets, group_metadata, t),
                deadline,
            )
            self._retrying("commit_transaction", producer.commit_transaction, deadline)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.txn_requires_abort():
                self.abort()
                raise Aborted(err.str()) from None
            if self._timed_out(exc):
                raise Aborted(f"{err.str()}; its producer was replaced") from None
            raise self._failed(exc, "committing a transaction") from None
        except Stuck as exc:
            self._replace(exc)
            raise Aborted(f"{exc}; its producer was replaced") from None
        producer.begin_transaction()
        self._begun = None

    def abort(self) -> None:
        """Abort the open transaction (its outputs vanish) and begin the next."""
        try:
            call_within("abort_transaction", self.producer.abort_transaction, self.timeout)
        except KafkaException as exc:
            if self._timed_out(exc):
                return
            raise self._failed(exc, "aborting a transaction") from None
        except Stuck as exc:
            self._replace(exc)
            return
        self.producer.begin_transaction()
        self._begun = None

    def _replace(self, stuck: Stuck) -> None:
        """Give up a producer stuck in a call: a new one of the same slot fences it and aborts its
        transaction, so nothing it still holds can become visible; its thread is left behind."""
        log.warning("%s (librdkafka #5456): replacing the pipe's producer; its transaction is aborted", stuck)
        self.producer = self._start()

    def _timed_out(self, exc: KafkaException) -> bool:
        """Whether ``exc`` fenced a producer whose transaction outlived ``transaction.timeout.ms``; if
        so, replace the producer (the inputs of the transaction are then read again).

        A coordinator that was away (a broker stopped, its successor loading the transaction log)
        aborts such a transaction when it comes back and bumps the producer's epoch: librdkafka
        then reports the producer fenced, as it would for a newer pipe of the same slot. A newer
        pipe fences a transaction of any age, so only a young one stops this pipe.
        """
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is None or err.code() not in _FENCED:
            return False
        age = time.monotonic() - (self._begun if self._begun is not None else time.monotonic())
        if age <= TRANSACTION_TIMEOUT_MS / 1000:
            return False
        log.warning(
            "the brokers aborted this pipe's transaction, open for %.0f s (over transaction.timeout.ms), and "
            "fenced its producer (%s): replacing it; the transaction's inputs are read again",
            age,
            err.str(),
        )
        self.producer = self._start()
        return True

    def _retrying(self, what: str, call: Callable[[float], object], deadline: float) -> None:
        while True:
            try:
                call_within(what, call, max(1.0, deadline - time.monotonic()))
                return
            except KafkaException as exc:
                err = exc.args[0]
                if not (isinstance(err, KafkaError) and err.retriable()) or time.monotonic() > deadline:
                    raise
                log.warning("transaction call failed (%s); retrying", err.str())
                time.sleep(0.2)

    def _failed(self, exc: KafkaException, doing: str) -> errors.GenesisError:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is not None and err.code() in _FENCED:
            return errors.FencedError(
                f"this pipe's transactional id {self.transactional_id!r} was taken over by a newer pipe "
                f"(the same slot started again) while {doing}: this one stops; its open transaction is "
                "aborted, so nothing it produced since its last commit is visible",
                brokers=self.spec.bootstrap_servers,
            )
        return translate(exc, brokers=self.spec.bootstrap_servers, context=f" while {doing}")

    def close(self) -> None:
        """Abort what is open (a pipe that stops commits first) and let the producer go."""
        try:
            call_within("abort_transaction", self.producer.abort_transaction, self.timeout)
        except (KafkaException, Stuck):
            pass  # what is left open, the brokers abort after transaction.timeout.ms
        try:
            self.producer.flush(self.timeout)
        except KafkaException as exc:
            # fatal (e.g. fenced: the coordinator timed out the empty transaction begun after the
            # last commit while a broker was away): nothing uncommitted may be delivered anyway
            log.warning("the pipe's producer closed with %s; nothing since the last commit is visible", exc)


def _check_transaction_log(spec: StreamSpec, auth: Credentials) -> None:
    """A cluster that cannot hold its transaction log (more replicas asked than brokers) never
    starts a transaction: say so at once, naming the setting, instead of timing out."""
    admin = new_admin(spec, auth=auth)
    try:
        meta = admin.list_topics(timeout=10)
        brokers = sorted(meta.brokers)
        if not brokers or "__transaction_state" in meta.topics:
            # made already: the log can be held (a broker that is down only hides from the count)
            return
        from confluent_kafka.admin import ConfigResource

        (future,) = admin.describe_configs([ConfigResource("broker", str(brokers[0]))]).values()
        entry = future.result(timeout=10).get("transaction.state.log.replication.factor")
    except KafkaException:
        return  # describing is not allowed everywhere: the transaction itself will say what is wrong
    if entry is not None and entry.value is not None and int(entry.value) > len(brokers):
        raise errors.ConfigError(
            f"the cluster at {spec.bootstrap_servers} has {len(brokers)} broker(s) but "
            f"transaction.state.log.replication.factor={entry.value}: Kafka cannot create its "
            "transaction log, so no transaction can start. Lower transaction.state.log.replication.factor "
            "(and transaction.state.log.min.isr) in the brokers' configuration, or add brokers."
        )


class TransactionalKafkaSource(KafkaSource):
    """A consumer group read with ``isolation.level=read_committed`` whose commits are transactions."""

    atomic_commits = True

    def __init__(self, spec: StreamSpec, transaction: Transaction, **options: Any) -> None:
        config = {"isolation.level": "read_committed", **(options.pop("config", None) or {})}
        super().__init__(spec, config=config, keep=False, **options)
        self.transaction = transaction
        self.committed_transactions = 0
        self.aborted_transactions = 0
        self._first: dict[TP, int] = {}  # per partition, the first offset read since it was assigned

    def fetch(self) -> list[Message]:
        fetched = super().fetch()
        for msg in fetched:
            self._first.setdefault(msg.tp, msg.offset)
        return fetched

    def commit(self, offsets: dict[TP, int], asynchronous: bool) -> bool:
        """Commit the open transaction with ``offsets``; after an abort, rewind and say False."""
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self.transaction.commit(tps, self._consumer.consumer_group_metadata())
        except Aborted as exc:
            self.aborted_transactions += 1
            log.warning("transaction aborted (%s): reading its inputs again", exc)
            self.rewind(self.assignment)
            return False
        self.committed_transactions += 1
        for (t, p), o in offsets.items():
            self._first[(t, p)] = o
        return True

    def rewind(self, tps: set[TP]) -> None:
        """Read ``tps`` again from their committed positions (their in-flight work is dropped)."""
        if not tps:
            return
        assert self._listener is not None
        self._listener.lost(tps)
        parts = [TopicPartition(t, p) for t, p in sorted(tps)]
        try:
            committed = self._consumer.committed(parts, timeout=self.connect_timeout)
        except KafkaException as exc:
            raise translate(
                exc, brokers=self.spec.bootstrap_servers, context=" while rewinding after an abort"
            ) from None
        for tp in committed:
            key = (tp.topic, tp.partition)
            if tp.offset >= 0:
                self.seek(key, tp.offset)
            elif key in self._first:  # nothing committed yet: from the first offset this pipe read
                self.seek(key, self._first[key])
        self._listener.assigned(tps)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The open transaction holds outputs of partitions now gone: it can no longer commit.
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self.transaction.abort()
        self.aborted_transactions += 1
        self.rewind(self.assignment - lost)
        super()._on_lost(consumer, partitions)
        for tp in lost:
            self._first.pop(tp, None)
