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

    def list_topics(self, *args: Any, **kwargs: Any) -> None:  # (connect() is replaced in these tests)
        return None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned |= _keys(partitions)

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
        return []

    def readable(self) -> set[tuple[str, int]]:
        return self.assigned - self.paused

    def close(self) -> None:
        pass


class Listener:
    """The stream's side of the rebalance callbacks."""

    def __init__(self) -> None:
        self.owner = threading.RLock()

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


def _source() -> tuple[kafka_source.KafkaSource, threading.RLock]:
    """A source bound to a listener, and the listener's owner lock: a callback run holding it runs
    as in the keeper's poll (the keeper cannot poll meanwhile)."""
    source = kafka_source.KafkaSource(parse_url(f"kafka://localhost:9092/{TOPIC}"), start_at="earliest")
    listener = Listener()
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
