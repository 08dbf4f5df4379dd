"""The one exception hierarchy of genesis.

Everything genesis raises on purpose derives from :class:`GenesisError`, so
``except genesis.errors.GenesisError`` catches every failure the library
understood, and every message says what to do about it::

    GenesisError
    ├── ConfigError              a bad option, URL or credentials file
    │   └── URLError             a URL that does not follow the kafka:// grammar
    ├── BrokerError              talking to Kafka failed
    │   ├── BrokerUnreachableError   no broker answered within the connect timeout
    │   ├── UnknownTopicError        the topic does not exist
    │   ├── AuthenticationError      login refused (SASL)
    │   ├── AuthorizationError       logged in, but not allowed (ACLs)
    │   └── TLSError                 the TLS handshake failed
    ├── DeliveryError            a message could not be written (producer)
    ├── DecodeError              a packet could not be decoded (names topic/partition/offset)
    │   └── SchemaNotFoundError  the packet names a schema genesis cannot find
    ├── FilterError              the user's filter raised (names topic/partition/offset)
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


class AuthenticationError(BrokerError):
    """The broker refused the login (wrong user name, password or mechanism)."""


class AuthorizationError(BrokerError, PermissionError):
    """The login worked, but an ACL forbids the operation (read a topic, join a group...)."""


class TLSError(BrokerError):
    """The TLS handshake with the broker failed (untrusted CA, wrong host name, ...)."""


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

    def located(self, topic: str, partition: int, offset: int) -> "DecodeError":
        """Return this error with the message's position filled in."""
        self._locate(topic, partition, offset)
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        if self.topic is None:
            return self.reason
        return (
            f"cannot decode the message at {self.where}: {self.reason}. "
            "Open the stream with errors='skip' or errors='quarantine' to step over bad packets."
        )


class SchemaNotFoundError(DecodeError):
    """The packet refers to a schema (by id) that is in neither the registry nor the schema directory."""


class FilterError(_Located, GenesisError):
    """The user's filter raised; the original exception is ``__cause__``."""

    def __init__(
        self, message: str, *, topic: str | None = None, partition: int | None = None, offset: int | None = None
    ) -> None:
        self._locate(topic, partition, offset)
        super().__init__(message)


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
    "BrokerError",
    "BrokerUnreachableError",
    "UnknownTopicError",
    "AuthenticationError",
    "AuthorizationError",
    "TLSError",
    "DeliveryError",
    "DecodeError",
    "SchemaNotFoundError",
    "FilterError",
    "ClusterError",
    "ToolMissingError",
    "PortInUseError",
]
