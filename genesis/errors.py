"""The one exception hierarchy of genesis.

Everything genesis raises on purpose derives from :class:`GenesisError`, so
``except genesis.errors.GenesisError`` catches every failure the library
understood, and every message says what to do about it::

    GenesisError
    ├── ConfigError              a bad option, URL or credentials file
    │   ├── URLError             a URL that does not follow the kafka:// grammar
    │   └── QueryError           SQL genesis cannot run over a stream (genesis.sql)
    ├── BrokerError              talking to Kafka failed
    │   ├── BrokerUnreachableError   no broker answered within the connect timeout
    │   ├── UnknownTopicError        the topic does not exist
    │   ├── TopicExistsError         a topic to create exists already
    │   ├── AuthenticationError      login refused (SASL)
    │   ├── AuthorizationError       logged in, but not allowed (ACLs)
    │   ├── TLSError                 the TLS handshake failed
    │   ├── HeldTooLongError         the loop held an alert longer than max_hold (group left)
    │   └── FencedError              a pipe's transactions were taken over by a newer incarnation
    ├── DeliveryError            a message could not be written (producer)
    │   └── WebhookError         a webhook refused an alert, or its retries ran out (names the alert)
    ├── DecodeError              a packet could not be decoded (names topic/partition/offset)
    │   ├── SchemaNotFoundError  the packet names a schema genesis cannot find
    │   └── SchemaMismatchError  an alert does not fit a Spark DataFrame's columns (genesis.spark)
    ├── FilterError              the user's filter (or Lambda function) raised (names topic/partition/offset)
    │   └── UndeclaredFieldError a declared-fields filter read a field it did not declare
    └── ClusterError             the local Kafka cluster could not be run
        ├── ToolMissingError     java or mvn is missing
        └── PortInUseError       a port the cluster needs is taken

librdkafka's error codes are translated into this tree in one place,
``genesis._kafka.translate``; no bare librdkafka code reaches the user.
"""

from __future__ import annotations


class GenesisError(Exception):
    """Base class of every error genesis raises on purpose."""


class ConfigError(GenesisError, ValueError):
    """An option, URL or credentials file is wrong; the message says which and how to fix it."""


class URLError(ConfigError):
    """A stream URL does not follow ``kafka://[group@]host[:port][,host2...]/topic[,topic2...]``."""


class QueryError(ConfigError):
    """The SQL of a query cannot run: a syntax error (shown with a caret), a construct that has no
    meaning over an endless stream (aggregates, ORDER BY, ...), a table it does not know, or an
    expression DuckDB refused for the alerts' types; the message says which and what to write."""


class BrokerError(GenesisError):
    """Talking to the Kafka cluster failed."""

    def __init__(self, message: str, *, brokers: str | None = None) -> None:
        super().__init__(message)
        self.brokers = brokers


class BrokerUnreachableError(BrokerError, ConnectionError):
    """No broker of the bootstrap list answered within the connect timeout."""


class UnknownTopicError(BrokerError):
    """A topic named in the URL does not exist on the cluster."""

    def __init__(
        self, message: str, *, topic: str, similar: list[str] | None = None, brokers: str | None = None
    ) -> None:
        super().__init__(message, brokers=brokers)
        self.topic = topic
        self.similar = list(similar or [])


class TopicExistsError(BrokerError):
    """A topic to be created exists already (``genesis topics create`` without ``--if-not-exists``)."""

    def __init__(self, message: str, *, topic: str, brokers: str | None = None) -> None:
        super().__init__(message, brokers=brokers)
        self.topic = topic


class AuthenticationError(BrokerError):
    """The broker refused the login (wrong user name, password or mechanism)."""


class AuthorizationError(BrokerError, PermissionError):
    """The login worked, but an ACL forbids the operation (read a topic, join a group...)."""


class TLSError(BrokerError):
    """The TLS handshake with the broker failed (untrusted CA, wrong host name, ...)."""


class HeldTooLongError(BrokerError):
    """The loop held one alert longer than ``max_hold``: the consumer left its group (its partitions
    went to others, and the alerts after the last commit come again)."""


class FencedError(BrokerError):
    """An exactly-once pipe was fenced: a newer incarnation of its slot took its transactional id."""


class DeliveryError(GenesisError):
    """A message could not be written to Kafka (after librdkafka's retries)."""


class _Located:
    """Mixin for errors tied to one Kafka message."""

    topic: str | None
    partition: int | None
    offset: int | None

    def _locate(self, topic: str | None, partition: int | None, offset: int | None) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset

    @property
    def where(self) -> str:
        if self.topic is None:
            return "input"
        return f"{self.topic}[{self.partition}]@{self.offset}"


class WebhookError(_Located, DeliveryError):
    """A webhook answered an alert's POST with a status that is not retried (a 4xx other than 408 and
    429), or its retries ran out (``max_retries``), and no dead letter was given. ``status`` and
    ``response`` are the server's answer (None and "" when it never answered)."""

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        status: int | None = None,
        response: str = "",
    ) -> None:
        self._locate(topic, partition, offset)
        self.status, self.response = status, response
        super().__init__(message)


class DecodeError(_Located, GenesisError):
    """A packet could not be decoded into an alert.

    ``topic``, ``partition`` and ``offset`` name the message (``None`` when the
    bytes did not come from Kafka); ``reason`` says why.
    """

    def __init__(
        self, reason: str, *, topic: str | None = None, partition: int | None = None, offset: int | None = None
    ) -> None:
        self.reason = reason
        self._locate(topic, partition, offset)
        super().__init__(reason)

    def located(self, topic: str, partition: int, offset: int) -> DecodeError:
        """Return this error with the message's position filled in."""
        self._locate(topic, partition, offset)
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        if self.topic is None:
            return self.reason
        return (
            f"cannot decode the message at {self.where}: {self.reason}. "
            "Open the stream with on_decode_error='skip' or 'quarantine' to step over bad packets."
        )


class SchemaNotFoundError(DecodeError):
    """The packet refers to a schema (by id) that is in neither the registry nor the schema directory."""


class SchemaMismatchError(DecodeError):
    """A decoded alert does not fit the columns of a DataFrame (:mod:`genesis.spark`): it holds a
    field they lack, or a value of another type. ``field`` names it (dotted: ``candidate.magpsf``)."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.field = field
        super().__init__(reason, topic=topic, partition=partition, offset=offset)

    def __str__(self) -> str:
        return self.reason if self.topic is None else f"the alert at {self.where} {self.reason}"


class FilterError(_Located, GenesisError):
    """The user's filter raised; the original exception is ``__cause__``."""

    def __init__(
        self, message: str, *, topic: str | None = None, partition: int | None = None, offset: int | None = None
    ) -> None:
        self._locate(topic, partition, offset)
        super().__init__(message)


class UndeclaredFieldError(FilterError):
    """A filter that declares the fields it reads (``genesis.Filter(fn, fields=...)``) read another one."""


class ClusterError(GenesisError):
    """The local Kafka cluster (``genesis cluster``) could not be started, found or controlled."""


class ToolMissingError(ClusterError):
    """``java`` (17+) or ``mvn`` is not installed."""


class PortInUseError(ClusterError):
    """A port the local cluster needs is already taken by another program."""


__all__ = [
    "GenesisError",
    "ConfigError",
    "URLError",
    "QueryError",
    "BrokerError",
    "BrokerUnreachableError",
    "UnknownTopicError",
    "TopicExistsError",
    "AuthenticationError",
    "AuthorizationError",
    "TLSError",
    "HeldTooLongError",
    "FencedError",
    "DeliveryError",
    "WebhookError",
    "DecodeError",
    "SchemaNotFoundError",
    "SchemaMismatchError",
    "FilterError",
    "UndeclaredFieldError",
    "ClusterError",
    "ToolMissingError",
    "PortInUseError",
]
