"""How librdkafka's errors become genesis errors (``genesis._kafka.translate``), without Kafka.

Each case builds the :class:`confluent_kafka.KafkaError` librdkafka raises or reports for
that failure, and checks the genesis error type (what a caller catches) and that the
message names what to fix.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from genesis import errors
from genesis._kafka import ErrorLog, LibrdkafkaLog, connect, retention_warning, translate
from genesis._urls import parse_url

pytestmark = pytest.mark.timeout(60)


# ------------------------------------------------------------------ security failures
def test_tls_errors_name_the_trusted_ca(tmp_path: Path) -> None:
    ca = str(tmp_path / "ca.pem")
    err = translate(
        KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed"),
        brokers="h:9093",
        trust=f"the CA file {ca}",
    )
    assert isinstance(err, errors.TLSError) and ca in str(err) and "--ca" in str(err)
    plain = translate(
        KafkaError(KafkaError._TRANSPORT, "SSL handshake failed: connecting to a PLAINTEXT broker listener?"),
        brokers="h:9092",
    )
    assert isinstance(plain, errors.TLSError) and "--no-ssl" in str(plain)


def test_login_and_acl_errors() -> None:
    login = translate(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"), brokers="h:1")
    assert isinstance(login, errors.AuthenticationError)
    assert "user name" in str(login) and "password" in str(login) and "mechanism" in str(login)
    topic = translate(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), topic="ztf")
    assert isinstance(topic, errors.AuthorizationError) and "'ztf'" in str(topic)
    group = translate(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), group="eve-1")
    assert isinstance(group, errors.AuthorizationError) and "'eve-1'" in str(group)
    cluster = translate(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED), brokers="h:1")
    assert isinstance(cluster, errors.AuthorizationError) and "cluster operation" in str(cluster)


# ------------------------------------------------------------------ the other kinds
@pytest.mark.parametrize(
    "code", [KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TIMED_OUT]
)
def test_unreachable_brokers_name_the_brokers_and_what_to_check(code: int) -> None:
    err = translate(KafkaError(code, "Connection refused"), brokers="h1:9092,h2:9092")
    assert isinstance(err, errors.BrokerUnreachableError)
    assert "h1:9092,h2:9092" in str(err) and "genesis cluster status" in str(err)
    assert err.brokers == "h1:9092,h2:9092"


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC])
def test_unknown_topic_names_it_and_how_to_list_topics(code: int) -> None:
    err = translate(KafkaError(code), brokers="h:9092", topic="ztf_public")
    assert isinstance(err, errors.UnknownTopicError) and err.topic == "ztf_public"
    assert "'ztf_public' does not exist" in str(err) and "genesis topics kafka://h:9092/" in str(err)


def test_a_kafka_exception_is_unwrapped_and_the_context_kept() -> None:
    exc = KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down"))
    err = translate(exc, brokers="h:9092", context=" while committing offsets")
    assert isinstance(err, errors.BrokerUnreachableError) and "while committing offsets" in str(err)
    bare = translate(KafkaException("no KafkaError inside"), brokers="h:9092", context=" while closing")
    assert type(bare) is errors.BrokerError and "while closing" in str(bare)


def test_anything_else_is_a_broker_error_with_librdkafkas_words() -> None:
    err = translate(KafkaError(KafkaError.INVALID_CONFIG, "bad value"), brokers="h:9092")
    assert type(err) is errors.BrokerError
    assert "bad value" in str(err) and "INVALID_CONFIG" in str(err) and "h:9092" in str(err)


#: librdkafka 2.16's own line for a committed offset that retention had deleted (captured on the local cluster)
RESET = (
    "[thrd:main]: t [0]: offset reset (at offset 10 (leader epoch -1), broker 1) to offset BEGINNING "
    "(leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range"
)


def test_an_offset_reset_past_deleted_alerts_is_a_warning_that_says_where(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        LibrdkafkaLog().log(30, "%s [%s] %s", "OFFSET", "rdkafka#consumer-1", RESET)
        LibrdkafkaLog().log(30, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "Connection refused")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.name for r in warnings] == ["genesis"]
    assert warnings[0].getMessage().startswith("t [0]: offset 10, where this reader was, is no longer in Kafka")
    assert "the oldest alert Kafka still holds" in warnings[0].getMessage()
    assert all(r.levelname == "DEBUG" for r in caplog.records if r.name == "genesis.librdkafka")


def test_only_out_of_range_resets_warn() -> None:
    assert retention_warning(RESET.replace("BEGINNING", "END")) is not None
    assert "the end of the partition" in str(retention_warning(RESET.replace("BEGINNING", "END")))
    no_commit = (
        "[thrd:main]: t [0]: offset reset (at offset INVALID, broker -1) to offset BEGINNING: Local: No offset stored"
    )
    assert retention_warning(no_commit) is None  # a group's first read: nothing was skipped
    assert "another offset" in str(retention_warning("changed wording: Broker: Offset out of range"))


class LaggingBroker:
    """``list_topics`` of a broker that learns of topic ``mytopic`` only at its ``knows_after``-th answer
    (never, with None): brokers apply the cluster's metadata each by itself."""

    def __init__(self, knows_after: int | None) -> None:
        self.knows_after = knows_after
        self.calls = 0

    def __call__(self, topic: str | None = None, timeout: float = -1) -> Any:
        self.calls += 1
        known = self.knows_after is not None and self.calls >= self.knows_after
        topics = {"mytopic": SimpleNamespace(error=None, partitions={0: None})} if known else {}
        return SimpleNamespace(topics=topics, brokers={1: None})


def test_a_topic_a_broker_learns_of_a_moment_later_is_found() -> None:
    spec = parse_url("kafka://localhost:9092/mytopic")
    broker = LaggingBroker(knows_after=3)
    metadata = connect(broker, spec, ErrorLog(spec.bootstrap_servers), None)
    assert "mytopic" in metadata.topics and broker.calls == 3


def test_a_topic_no_broker_knows_is_an_unknown_topic_error_after_asking_again() -> None:
    spec = parse_url("kafka://localhost:9092/mytopic")
    broker = LaggingBroker(knows_after=None)
    with pytest.raises(errors.UnknownTopicError, match="'mytopic' does not exist"):
        connect(broker, spec, ErrorLog(spec.bootstrap_servers), None)
    assert broker.calls > 2
