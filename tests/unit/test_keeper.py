"""The keeper of :class:`genesis._sources.kafka.KafkaSource` against a consumer that stands in for librdkafka.

The keeper pauses the assigned partitions and polls the consumer while the user holds an alert. Two
things it must not do (both found in CI, stop 18): leave a partition paused when the group gives it
back outside the keeper (librdkafka keeps an application pause across unassign and assign), and
swallow what its polls raise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from genesis import errors
from genesis._sources import kafka as kafka_source
from genesis._urls import parse_url

pytestmark = pytest.mark.timeout(60)

TOPIC = "small"


class Consumer:
    """What the source asks of a confluent-kafka consumer, with librdkafka's pause kept per partition
    across unassign and assign; ``fail_polls_from`` makes polls from that thread name raise."""

    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.paused: set[tuple[str, int]] = set()
        self.fail_polls_from: str | None = None
        self.failed = threading.Event()
        self.queued: list[FetchedMessage] = []  # what the next consume() returns
        self.committed_offsets: dict[tuple[str, int], int] = {}
        self.starts: dict[tuple[str, int], int] = {}  # where each assign started a partition

    def list_topics(self, *args: Any, **kwargs: Any) -> None:  # (connect() is replaced in these tests)
        return None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned |= _keys(partitions)
        self.starts.update({(tp.topic, tp.partition): tp.offset for tp in partitions})

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_offsets.get((tp.topic, tp.partition), -1001))
            for tp in partitions
        ]

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.assigned -= _keys(partitions)  # the pause stays, as in librdkafka

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= _keys(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= _keys(partitions)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        if threading.current_thread().name == self.fail_polls_from:
            self.failed.set()
            raise KafkaException(KafkaError(KafkaError._FAIL, "the rebalance callback failed"))
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken

    def readable(self) -> set[tuple[str, int]]:
        return self.assigned - self.paused

    def close(self) -> None:
        pass


class FetchedMessage:
    """A message as confluent-kafka's consume() returns it."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return b"alert"

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def headers(self) -> None:
        return None


class Listener:
    """The stream's side of the rebalance callbacks; ``handed`` stands for what the stream handed out."""

    def __init__(self) -> None:
        self.owner = threading.RLock()
        self.handed: dict[tuple[str, int], int] = {}

    def handed_out(self, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: o for tp, o in self.handed.items() if tp in tps}

    def assigned(self, tps: Iterable[tuple[str, int]]) -> None:
        pass

    def revoking(self, tps: set[tuple[str, int]]) -> None:
        pass

    def lost(self, tps: set[tuple[str, int]]) -> None:
        pass


def _keys(partitions: list[TopicPartition]) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in partitions}


def _partitions(*numbers: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, n) for n in numbers]


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Consumer:
    fake = Consumer()
    monkeypatch.setattr(kafka_source, "new_consumer", lambda *args, **kwargs: fake)
    monkeypatch.setattr(kafka_source, "connect", lambda *args, **kwargs: None)
    return fake


def _source(listener: Listener | None = None) -> tuple[kafka_source.KafkaSource, threading.RLock]:
    """A source bound to a listener, and the listener's owner lock: a callback run holding it runs
    as in the keeper's poll (the keeper cannot poll meanwhile)."""
    source = kafka_source.KafkaSource(parse_url(f"kafka://localhost:9092/{TOPIC}"), start_at="earliest")
    listener = listener or Listener()
    source.bind(listener)
    return source, listener.owner


def _hold_until(condition: Any, seconds: float = 10.0) -> None:
    """The user holding an alert (not polling) until ``condition()`` or ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the keeper did not act while the alert was held"
        time.sleep(0.05)


def test_partitions_lost_while_paused_are_read_when_the_group_gives_them_back(consumer: Consumer) -> None:
    source, owner = _source()
    try:
        consumer.callbacks["on_assign"](consumer, _partitions(0, 1))
        _hold_until(lambda: consumer.paused == {(TOPIC, 0), (TOPIC, 1)})  # the keeper paused them
        with owner:
            consumer.callbacks["on_lost"](consumer, _partitions(0, 1))  # the session expired (in the keeper)
        source.fetch()  # the user goes on: the stream polls again
        consumer.callbacks["on_assign"](consumer, _partitions(0, 1))  # back, during the stream's fetch
        assert consumer.readable() == {(TOPIC, 0), (TOPIC, 1)}
    finally:
        source.close()


def test_partitions_assigned_while_the_keeper_holds_the_consumer_stay_paused_until_the_stream_polls(
    consumer: Consumer,
) -> None:
    source, owner = _source()
    try:
        consumer.callbacks["on_assign"](consumer, _partitions(0))
        _hold_until(lambda: (TOPIC, 0) in consumer.paused)
        with owner:
            consumer.callbacks["on_assign"](consumer, _partitions(1))
        assert consumer.readable() == set()  # nothing is fetched for an alert the user still holds
        source.fetch()
        assert consumer.readable() == {(TOPIC, 0), (TOPIC, 1)}
    finally:
        source.close()


def test_what_the_keepers_poll_raises_is_raised_by_the_next_fetch(consumer: Consumer) -> None:
    source, owner = _source()
    try:
        consumer.callbacks["on_assign"](consumer, _partitions(0))
        consumer.fail_polls_from = "genesis-keeper"
        _hold_until(consumer.failed.is_set)
        consumer.fail_polls_from = None
        with pytest.raises(errors.GenesisError, match="the rebalance callback failed"):
            source.fetch()
        assert source.fetch() == []  # raised once; the stream can go on
    finally:
        source.close()


@pytest.mark.parametrize("callback", ["on_revoke", "on_lost"])
def test_what_the_keeper_prefetched_of_partitions_that_go_is_dropped(consumer: Consumer, callback: str) -> None:
    """The keeper's polls stash messages fetched before its pause; those of a partition revoked or
    lost meanwhile belong to an assignment that ended, even when the partition is back by the next fetch."""
    source, owner = _source()
    try:
        consumer.callbacks["on_assign"](consumer, _partitions(0, 1))
        consumer.queued = [FetchedMessage(0, 10), FetchedMessage(1, 20)]
        _hold_until(lambda: not consumer.queued)  # the keeper polled them into its stash
        with owner:
            consumer.callbacks[callback](consumer, _partitions(0))
            consumer.callbacks["on_assign"](consumer, _partitions(0))
        assert [(m.tp, m.offset) for m in source.fetch()] == [((TOPIC, 1), 20)]
    finally:
        source.close()


@pytest.mark.parametrize(
    ("callback", "committed", "start"),
    [("on_revoke", None, 120), ("on_revoke", 100, 120), ("on_lost", 100, 120), ("on_revoke", 150, 150)],
    ids=["nothing-committed", "handed-out-further", "lost", "group-committed-further"],
)
def test_a_partition_that_comes_back_resumes_after_what_the_stream_handed_out(
    consumer: Consumer, callback: str, committed: int | None, start: int
) -> None:
    listener = Listener()
    source, owner = _source(listener)
    try:
        consumer.callbacks["on_assign"](consumer, _partitions(0, 1))
        assert consumer.starts[(TOPIC, 0)] < 0  # the first time: where the group committed (librdkafka's)
        listener.handed = {(TOPIC, 0): 120, (TOPIC, 1): 80}
        if committed is not None:
            consumer.committed_offsets[(TOPIC, 0)] = committed
        consumer.callbacks[callback](consumer, _partitions(0))
        consumer.callbacks["on_assign"](consumer, _partitions(0))
        assert consumer.starts[(TOPIC, 0)] == start
        listener.handed = {}
        consumer.callbacks["on_revoke"](consumer, _partitions(0))  # handed out nothing this time
        consumer.callbacks["on_assign"](consumer, _partitions(0))
        assert consumer.starts[(TOPIC, 0)] < 0
    finally:
        source.close()
