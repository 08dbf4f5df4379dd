"""The pipe's transactional producer never hangs: a call librdkafka does not return from is given up.

librdkafka's ``send_offsets_to_transaction`` can block for ever when the group coordinator dies
during the call (librdkafka #5456, #5511; seen in CI: a pipe stuck for 180 s while a broker was
killed). These tests put a producer that blocks in place of librdkafka's; the real failure is
exercised by the chaos tests that kill the output's leader and the group's coordinator.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from genesis import errors
from genesis._sources import transactional
from genesis._sources.transactional import Aborted, Stuck, Transaction, call_within
from genesis._urls import parse_url


class Blocking:
    """A transactional producer; ``send_offsets_to_transaction`` blocks until ``release`` is set
    when ``hangs`` (as librdkafka's does with a dead coordinator), whatever its timeout."""

    def __init__(self, hangs: bool, release: threading.Event) -> None:
        self.hangs, self.release = hangs, release
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            if name == "send_offsets_to_transaction" and self.hangs:
                self.release.wait()

        return call


@pytest.fixture
def release() -> Any:
    event = threading.Event()
    yield event
    event.set()  # lets the abandoned call's thread end


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> list[Blocking]:
    """The producers the Transaction creates, in order: the first hangs, the later ones do not."""
    made: list[Blocking] = []

    def new_producer(*args: Any, **kwargs: Any) -> Blocking:
        made.append(Blocking(hangs=not made, release=release))
        return made[-1]

    monkeypatch.setattr(transactional, "new_producer", new_producer)
    monkeypatch.setattr(transactional, "_check_transaction_log", lambda spec, auth: None)
    monkeypatch.setattr(transactional, "CALL_GRACE", 0.2)
    return made


def test_a_call_that_returns_or_raises_is_passed_through() -> None:
    seen: list[float] = []
    call_within("a call", seen.append, 1.0)
    assert seen == [1.0]

    def fails(timeout: float) -> None:
        raise KeyError("from the call")

    with pytest.raises(KeyError, match="from the call"):
        call_within("a call", fails, 1.0)


def test_a_call_that_never_returns_is_given_up_after_its_timeout_and_grace(
    monkeypatch: pytest.MonkeyPatch, release: threading.Event
) -> None:
    monkeypatch.setattr(transactional, "CALL_GRACE", 0.2)
    started = time.monotonic()
    with pytest.raises(Stuck, match="send_offsets_to_transaction did not return"):
        call_within("send_offsets_to_transaction", lambda timeout: release.wait(), 0.3)
    assert 0.5 <= time.monotonic() - started < 3.0


def test_a_commit_stuck_in_librdkafka_aborts_and_replaces_the_producer(producers: list[Blocking]) -> None:
    txn = Transaction(parse_url("kafka://localhost:9092/out"), "genesis-pipe.g.0", timeout=0.5)
    offsets = [TopicPartition("in", 0, 10)]
    started = time.monotonic()
    with pytest.raises(Aborted, match="did not return.*producer was replaced"):
        txn.commit(offsets, group_metadata=object())
    assert time.monotonic() - started < 3.0
    assert len(producers) == 2 and txn.producer is producers[1]
    # the new producer of the same transactional id fenced the stuck one before its first transaction
    assert producers[1].calls == ["init_transactions", "begin_transaction"]
    txn.commit(offsets, group_metadata=object())  # the inputs, read again, commit on the new producer
    assert producers[1].calls[2:] == ["send_offsets_to_transaction", "commit_transaction", "begin_transaction"]
    assert producers[0].calls == ["init_transactions", "begin_transaction", "send_offsets_to_transaction"]


class Fenced(Blocking):
    """A producer the coordinator fenced while idle (its empty transaction timed out while a
    broker was stopped): every transactional call and ``flush`` raise the fatal error."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            if name in ("abort_transaction", "flush"):
                raise KafkaException(KafkaError(KafkaError._FENCED, "old epoch", fatal=True))

        return call


def test_closing_a_fenced_producer_does_not_raise_a_bare_librdkafka_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # seen in the nemesis run: `genesis pipe` finished its work, then exited 1 with KafkaException
    # _FENCED from flush() in close(), after a broker had been SIGSTOPped for 15 s
    monkeypatch.setattr(transactional, "new_producer", lambda *a, **k: Fenced(False, threading.Event()))
    monkeypatch.setattr(transactional, "_check_transaction_log", lambda spec, auth: None)
    txn = Transaction(parse_url("kafka://localhost:9092/out"), "genesis-pipe.g.0", timeout=0.5)
    txn.close()
    assert txn.producer.calls[-2:] == ["abort_transaction", "flush"]


class FencedOnCommit(Blocking):
    """A producer whose commit finds it fenced (``commit_transaction`` raises the fatal error)."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            if name == "commit_transaction":
                raise KafkaException(KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True))

        return call


@pytest.fixture
def fenced(monkeypatch: pytest.MonkeyPatch) -> list[Blocking]:
    """The producers a Transaction creates: the first is fenced on commit, later ones are not."""
    made: list[Blocking] = []

    def new_producer(*args: Any, **kwargs: Any) -> Blocking:
        made.append(Blocking(False, threading.Event()) if made else FencedOnCommit(False, threading.Event()))
        return made[-1]

    monkeypatch.setattr(transactional, "new_producer", new_producer)
    monkeypatch.setattr(transactional, "_check_transaction_log", lambda spec, auth: None)
    monkeypatch.setattr(transactional, "TRANSACTION_TIMEOUT_MS", 200)
    return made


def test_a_transaction_the_brokers_timed_out_is_aborted_and_its_producer_replaced(fenced: list[Blocking]) -> None:
    # seen in the nemesis run: a broker SIGSTOPped for 15 s (longer than transaction.timeout.ms); its
    # successor aborted the open transaction and bumped the epoch, and librdkafka said "fenced"
    txn = Transaction(parse_url("kafka://localhost:9092/out"), "genesis-pipe.g.0", timeout=0.5)
    txn.produce("out", b"x", None, [], 0)
    time.sleep(0.3)
    with pytest.raises(Aborted, match="producer was replaced"):
        txn.commit([TopicPartition("in", 0, 10)], group_metadata=object())
    assert len(fenced) == 2 and txn.producer is fenced[1]
    assert fenced[1].calls == ["init_transactions", "begin_transaction"]


def test_a_young_transaction_fenced_means_a_newer_pipe_took_over(fenced: list[Blocking]) -> None:
    txn = Transaction(parse_url("kafka://localhost:9092/out"), "genesis-pipe.g.0", timeout=0.5)
    time.sleep(0.3)  # idle: an empty transaction does not age at the brokers
    txn.produce("out", b"x", None, [], 0)
    with pytest.raises(errors.FencedError, match="taken over by a newer pipe"):
        txn.commit([TopicPartition("in", 0, 10)], group_metadata=object())
    assert len(fenced) == 1


class _Admin:
    """An admin client of a 3-broker cluster with one broker away, its transaction log made long ago."""

    def __init__(self, log_made: bool) -> None:
        self.log_made = log_made

    def list_topics(self, timeout: float) -> Any:
        topics = {"__transaction_state": object()} if self.log_made else {}
        return type("Meta", (), {"brokers": {1: object(), 2: object()}, "topics": topics})()

    def describe_configs(self, resources: list) -> dict:
        from concurrent.futures import Future

        entry = type("Entry", (), {"value": "3"})()
        future: Future = Future()
        future.set_result({"transaction.state.log.replication.factor": entry})
        return {resources[0]: future}


@pytest.mark.parametrize("log_made", [True, False])
def test_a_broker_away_is_not_taken_for_a_cluster_too_small_for_the_transaction_log(monkeypatch, log_made) -> None:
    # seen in the nemesis run: pipes restarted while a broker was SIGSTOPped refused to start
    monkeypatch.setattr(transactional, "new_admin", lambda spec, auth=None: _Admin(log_made))
    check = lambda: transactional._check_transaction_log(parse_url("kafka://localhost:9092/out"), None)
    if log_made:
        check()
    else:
        with pytest.raises(errors.ConfigError, match="has 2 broker"):
            check()
