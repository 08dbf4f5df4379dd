"""The one door to Kafka: client factories, librdkafka configuration, connection checks, error translation.

Every consumer, producer and admin client genesis makes comes from :func:`new_consumer`,
:func:`new_producer` or :func:`new_admin`, so each gets the same base settings, the
user's credentials (argument, environment or credentials file) and librdkafka's log
lines on the ``genesis.librdkafka`` logger instead of stderr. This is also the one place
where librdkafka's error codes become genesis errors (:mod:`genesis.errors`):
:func:`translate` and :func:`connect`.
"""

from __future__ import annotations

import difflib
import getpass
import logging
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Union

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from . import errors
from ._urls import StreamSpec

if TYPE_CHECKING:
    from .auth import Auth

#: credentials: a :class:`genesis.Auth`, a mapping of librdkafka security settings, or None
#: (then those of the environment or the credentials file, if any)
Credentials = Union["Auth", Mapping[str, Any], None]

log = logging.getLogger("genesis")


class LibrdkafkaLog:
    """librdkafka's own log lines, demoted to DEBUG on the ``genesis.librdkafka`` logger.

    Its warnings ("connection refused" while a broker restarts, ...) are transient
    states that librdkafka retries; what does not heal reaches the user as a typed
    error through :class:`ErrorLog`. Enable DEBUG on that logger to see them. One is not
    transient: an offset reset because Kafka no longer holds the offset the reader was at —
    alerts deleted by the topic's retention before they were read. That one is a WARNING on
    the ``genesis`` logger, saying where and what to do (:func:`retention_warning`).
    """

    def __init__(self, name: str = "genesis.librdkafka") -> None:
        self._log = logging.getLogger(name)

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        # confluent-kafka calls log(level, "%s [%s] %s", facility, client name, text)
        if len(args) == 3 and args[0] == "OFFSET":
            warning = retention_warning(str(args[2]))
            if warning:
                log.warning(warning)
        self._log.debug(msg, *args)


_RESET = re.compile(
    r"(?P<where>\S+ \[\d+\]): offset reset \(at offset (?P<at>[^ )]+).*? to offset (?P<to>[A-Z]+|-?\d+)"
)


def retention_warning(text: str) -> str | None:
    """What to tell the user of librdkafka's log ``text``, when it reports an offset reset because
    the offset was out of range (deleted by retention, or the topic recreated); else None."""
    if "Offset out of range" not in text:
        return None
    found = _RESET.search(text)
    where, at, to = (found["where"], found["at"], found["to"]) if found else ("a partition", "?", "")
    went_on = {"BEGINNING": "the oldest alert Kafka still holds", "END": "the end of the partition"}.get(
        to, f"offset {to}" if to else "another offset"
    )
    return (
        f"{where}: offset {at}, where this reader was, is no longer in Kafka (deleted by the topic's retention, "
        f"or the topic was recreated); reading goes on at {went_on}, so the alerts in between were never "
        "delivered to this reader. Read faster (fields=, gs.Pool) or ask for a longer retention.ms on the topic."
    )


_librdkafka_log = LibrdkafkaLog()

#: connection failures that are an answer (no listener, no such host), not a slow or lossy network
_DEFINITE = ("Connection refused", "Failed to resolve", "Name or service not known", "nodename nor servname")
#: the default connect timeout; with it, brokers that all refuse fail the open after FAST_FAIL seconds
CONNECT_TIMEOUT = 30.0
FAST_FAIL = 2.5
#: how long a topic missing from the metadata is asked for again before it counts as unknown: each
#: broker applies the cluster's metadata by itself, and one may not know a topic created a moment ago
TOPIC_SETTLE = 2.0

#: a single alert can be ~100 KB (LSST estimates 82 KB) and a message may hold several
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TIMED_OUT}
_UNKNOWN_TOPIC = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}
_AUTHENTICATION = {KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._AUTHENTICATION}
_AUTHORIZATION = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}


def random_group_id(username: str | None = None) -> str:
    """A fresh group id ``<user>-<random>``: nothing is remembered between runs, and
    prefixed group ACLs (``<user>-*``) still match."""
    try:
        user = username or getpass.getuser()
    except Exception:  # no user database entry (containers)
        user = "genesis"
    alphabet = string.ascii_uppercase + string.digits
    return f"{user}-{''.join(secrets.choice(alphabet) for _ in range(20))}"


def _is_tls_failure(code: int, text: str) -> bool:
    # librdkafka reports a TLS client meeting a plaintext listener as a transport error
    return code == KafkaError._SSL or (code == KafkaError._TRANSPORT and "SSL handshake failed" in text)


def trust_of(conf: Mapping[str, Any]) -> str | None:
    """Which CA certificates a librdkafka configuration trusts, in words (``None``: no TLS)."""
    if not str(conf.get("security.protocol", "plaintext")).upper().endswith("SSL"):
        return None
    ca = conf.get("ssl.ca.location")
    return f"the CA file {ca}" if ca and ca != "probe" else "the system's CA store (no CA file configured)"


def translate(
    err: KafkaError | KafkaException,
    *,
    brokers: str | None = None,
    topic: str | None = None,
    context: str = "",
    trust: str | None = None,
    group: str | None = None,
) -> errors.GenesisError:
    """Map a librdkafka error to the genesis error a user can act on.

    ``trust`` (see :func:`trust_of`) is named in TLS errors, ``group`` in group authorization errors.
    """
    if isinstance(err, KafkaException):
        if not (err.args and isinstance(err.args[0], KafkaError)):
            return errors.BrokerError(f"Kafka error{context}", brokers=brokers)
        err = err.args[0]
    code, text = err.code(), err.str()
    where = f" (brokers {brokers})" if brokers else ""
    if _is_tls_failure(code, text):
        return errors.TLSError(
            f"TLS handshake with the broker failed{where}{context}, trusting {trust or 'the default CA store'}: "
            f"{text}. Give the PEM file of the CA that signed the broker's certificate (Auth(ca=...), "
            "genesis auth add HOST --ca FILE), check that the host name matches the certificate, or, "
            "if the listener does not use TLS, use ssl=False (--no-ssl).",
            brokers=brokers,
        )
    if code in _UNREACHABLE:
        return errors.BrokerUnreachableError(
            f"cannot reach the Kafka brokers{where}{context}: {text}. Check the host and port in the "
            "URL, that the cluster is running (genesis cluster status) and that no firewall is in the way.",
            brokers=brokers,
        )
    if code in _UNKNOWN_TOPIC:
        return errors.UnknownTopicError(
            f"topic {topic!r} does not exist{where}{context}. "
            f"List topics with: genesis topics kafka://{brokers or 'HOST'}/",
            topic=topic or "",
            brokers=brokers,
        )
    if code in _AUTHENTICATION:
        return errors.AuthenticationError(
            f"the broker refused the login{where}{context}: {text}. Check the user name, the password "
            "and the SASL mechanism (genesis auth list; genesis auth add HOST to replace them).",
            brokers=brokers,
        )
    if code in _AUTHORIZATION:
        what = {
            KafkaError.TOPIC_AUTHORIZATION_FAILED: (
                f"read or write topic {topic!r} (to a user without access, a topic that does not exist looks the same)"
            )
            if topic
            else "use this topic",
            KafkaError.GROUP_AUTHORIZATION_FAILED: (
                f"use the consumer group {group!r}" if group else "use this stream's consumer group"
            )
            + " (ACLs often allow only groups prefixed with your user "
            "name, `<user>-...`; the URL's group@ is the group id)",
            KafkaError.CLUSTER_AUTHORIZATION_FAILED: "perform this cluster operation",
        }[code]
        return errors.AuthorizationError(
            f"logged in, but not allowed to {what}{where}{context}. Ask the broker's operators for access.",
            brokers=brokers,
        )
    return errors.BrokerError(f"Kafka error{where}{context}: {text} ({err.name()})", brokers=brokers)


class ErrorLog:
    """Collects the errors librdkafka reports through ``error_cb``.

    Transient errors (a broker restarting) are logged and retried by librdkafka;
    the ones that will not heal by waiting (authentication, TLS, fatal) are kept
    so the caller can raise them at its next turn.
    """

    def __init__(self, brokers: str) -> None:
        self.brokers = brokers
        self.last: KafkaError | None = None
        self.fatal: KafkaError | None = None
        #: the CA trusted, in words, for TLS errors, and librdkafka's security.protocol (set by base_config)
        self.trust: str | None = None
        self.protocol = "PLAINTEXT"
        #: when librdkafka first said every broker is down, and whether each connection failure
        #: since was a definite answer (refused, or a host that does not resolve) rather than silence
        self.all_down_since: float | None = None
        self.refused_only = True
        self.refusals: list[str] = []

    def __call__(self, err: KafkaError) -> None:
        self.last = err
        code, text = err.code(), err.str()
        if err.fatal() or code in _AUTHENTICATION or _is_tls_failure(code, text):
            self.fatal = err
        if code == KafkaError._ALL_BROKERS_DOWN:
            if self.all_down_since is None:
                self.all_down_since = time.monotonic()
        elif code in (KafkaError._TRANSPORT, KafkaError._RESOLVE):
            if any(word in text for word in _DEFINITE):
                self.refusals = [*self.refusals[-4:], text]
            else:
                self.refused_only = False
        log.debug("librdkafka: %s", text)

    def refused_everywhere(self, for_at_least: float) -> bool:
        """Whether every bootstrap broker has refused (or failed to resolve) for ``for_at_least`` s:
        the answer is known, waiting out the connect timeout would change nothing."""
        since = self.all_down_since
        return (
            since is not None
            and self.refused_only
            and bool(self.refusals)
            and (time.monotonic() - since >= for_at_least)
        )

    def raise_fatal(self) -> None:
        if self.fatal is not None:
            raise translate(self.fatal, brokers=self.brokers, trust=self.trust)


def base_config(
    spec: StreamSpec,
    *,
    auth: Credentials = None,
    error_log: ErrorLog | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings common to consumers, producers and admin clients; ``config`` overrides them."""
    conf: dict[str, Any] = {
        "bootstrap.servers": spec.bootstrap_servers,
        "client.id": "genesis",
        "socket.keepalive.enable": True,
        "reconnect.backoff.max.ms": 2000,
        "logger": _librdkafka_log,  # librdkafka's own messages go to logging, not to stderr
    }
    if error_log is not None:
        conf["error_cb"] = error_log
    conf.update(auth_config(auth, spec))
    conf.update(config or {})
    if error_log is not None:
        error_log.trust = trust_of(conf)
        error_log.protocol = str(conf.get("security.protocol", "PLAINTEXT")).upper()
    return conf


ClientT = TypeVar("ClientT", Consumer, Producer, AdminClient)


def _client(
    kind: type[ClientT],
    spec: StreamSpec,
    auth: Credentials,
    error_log: ErrorLog | None,
    settings: Mapping[str, Any],
    config: Mapping[str, Any] | None,
) -> ClientT:
    """A client of ``kind`` with the base settings, then genesis' ``settings``, then the user's ``config``."""
    log_to = error_log or ErrorLog(spec.bootstrap_servers)
    conf = base_config(spec, auth=auth, error_log=log_to, config={**settings, **(config or {})})
    try:
        return kind(conf)
    except KafkaException as exc:
        raise errors.ConfigError(f"librdkafka refused the configuration: {exc.args[0].str()}") from None


def new_consumer(
    spec: StreamSpec,
    *,
    group: str,
    auth: Credentials = None,
    error_log: ErrorLog | None = None,
    settings: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Consumer:
    """A consumer of ``group`` that never commits on its own; ``settings`` are genesis' own for this
    use, ``config`` the user's librdkafka properties (applied last)."""
    own = {"group.id": group, "enable.auto.commit": False, **(settings or {})}
    return _client(Consumer, spec, auth, error_log, own, config)


def new_producer(
    spec: StreamSpec,
    *,
    auth: Credentials = None,
    error_log: ErrorLog | None = None,
    settings: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Producer:
    """A producer; ``settings`` and ``config`` as for :func:`new_consumer`."""
    return _client(Producer, spec, auth, error_log, settings or {}, config)


def new_admin(
    spec: StreamSpec,
    *,
    auth: Credentials = None,
    error_log: ErrorLog | None = None,
    config: Mapping[str, Any] | None = None,
) -> AdminClient:
    """An admin client (topics, configs, ACLs, group offsets)."""
    return _client(AdminClient, spec, auth, error_log, {}, config)


def resolve_auth(auth: Credentials, spec: StreamSpec) -> Credentials:
    """The credentials a client of ``spec`` will use: ``auth`` if given, else those of the
    environment or the credentials file (``None`` when there are none)."""
    if auth is not None:
        return auth
    from . import auth as _auth

    return _auth.lookup(spec)


def auth_config(auth: Credentials, spec: StreamSpec) -> dict[str, Any]:
    """librdkafka security settings from ``auth`` (a mapping of librdkafka properties,
    or an object with ``librdkafka_config()``)."""
    if auth is None:
        from . import auth as _auth  # credentials file / environment, if any

        found = _auth.lookup(spec)
        return found.librdkafka_config() if found else {}
    if hasattr(auth, "librdkafka_config"):
        return dict(auth.librdkafka_config())
    if isinstance(auth, Mapping):
        return dict(auth)
    raise errors.ConfigError(f"auth must be a genesis.Auth or a dict of librdkafka settings, not {type(auth).__name__}")


def connect(
    list_topics: Callable[..., Any], spec: StreamSpec, error_log: ErrorLog, connect_timeout: float | None
) -> Any:
    """Fetch cluster metadata within ``connect_timeout`` seconds, or raise the error that explains why not.

    With the default (``None``: :data:`CONNECT_TIMEOUT`), brokers that all refuse the connection
    or do not resolve raise :class:`~genesis.errors.BrokerUnreachableError` after
    :data:`FAST_FAIL` seconds (the answer is known); a timeout given explicitly is waited out in
    full, as is a network that is only slow. Also checks that every (non-pattern) topic of the
    URL exists, and lists similar names when one does not.
    """
    fail_fast = connect_timeout is None
    if connect_timeout is None:
        connect_timeout = CONNECT_TIMEOUT
    deadline = time.monotonic() + connect_timeout
    # librdkafka hands errors (a refused login, a failed TLS handshake) to error_cb only while the
    # client is polled; list_topics alone does not, so poll the client the bound method belongs to
    poll = getattr(getattr(list_topics, "__self__", None), "poll", None)
    metadata = None
    while metadata is None:
        if poll is not None:
            poll(0)
        error_log.raise_fatal()
        if fail_fast and error_log.refused_everywhere(FAST_FAIL):
            raise errors.BrokerUnreachableError(
                f"no broker of {spec.bootstrap_servers} can be reached: {error_log.refusals[-1]}. "
                "Check the host and port in the URL and that the cluster is running (for a local cluster: "
                "genesis cluster status); `genesis doctor URL` checks each step.",
                brokers=spec.bootstrap_servers,
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            cause = f": last error: {error_log.last.str()}" if error_log.last else ""
            login = (
                ""
                if error_log.protocol != "PLAINTEXT"
                else " If the brokers need a login (SASL/TLS), add it: genesis auth add HOST --username USER."
            )
            raise errors.BrokerUnreachableError(
                f"no broker of {spec.bootstrap_servers} answered within {connect_timeout:g} s{cause}. "
                "Check the host and port in the URL and that the cluster is running "
                f"(for a local cluster: genesis cluster status).{login} `genesis doctor URL` checks each step.",
                brokers=spec.bootstrap_servers,
            )
        try:
            metadata = list_topics(timeout=min(0.5 if fail_fast else 1.0, remaining))
        except KafkaException as exc:
            code = exc.args[0].code() if exc.args and isinstance(exc.args[0], KafkaError) else None
            if code not in _UNREACHABLE:
                raise translate(exc, brokers=spec.bootstrap_servers, trust=error_log.trust) from None
    for topic in spec.topics:
        if topic.startswith("^"):
            continue
        meta = metadata.topics.get(topic)
        if meta is None:
            # a listing of all topics leaves out those the user may not describe; asked by name,
            # the broker says TOPIC_AUTHORIZATION_FAILED (for a topic that does not exist, too)
            meta = _topic_metadata(list_topics, topic, error_log, deadline)
            if meta is not None and meta.error is None:
                metadata.topics[topic] = meta  # callers look their topics up in what is returned
        if _unknown(meta):
            existing = sorted(t for t in metadata.topics if not t.startswith("__"))
            similar = difflib.get_close_matches(topic, existing, n=3, cutoff=0.5)
            hint = (
                f" Did you mean {', '.join(similar)}?"
                if similar
                else (f" Topics on this cluster: {', '.join(existing[:20]) or 'none'}.")
            )
            raise errors.UnknownTopicError(
                f"topic {topic!r} does not exist on {spec.bootstrap_servers}.{hint}",
                topic=topic,
                similar=similar,
                brokers=spec.bootstrap_servers,
            )
        if meta.error is not None:
            raise translate(meta.error, brokers=spec.bootstrap_servers, topic=topic)
    return metadata


def _unknown(meta: Any) -> bool:
    """Whether a topic's metadata (``None`` when the broker left it out) says the topic does not exist."""
    return meta is None or (meta.error is not None and meta.error.code() in _UNKNOWN_TOPIC)


def _topic_metadata(list_topics: Callable[..., Any], topic: str, error_log: ErrorLog, deadline: float) -> Any:
    """The metadata of one topic asked by name (``None`` if the broker does not answer in time), asked
    again for up to :data:`TOPIC_SETTLE` s while the broker says it does not exist."""
    settled = min(deadline, time.monotonic() + TOPIC_SETTLE)
    while True:
        try:
            meta = list_topics(topic, timeout=max(1.0, deadline - time.monotonic())).topics.get(topic)
        except KafkaException as exc:
            raise translate(exc, brokers=error_log.brokers, topic=topic, trust=error_log.trust) from None
        if not _unknown(meta) or time.monotonic() >= settled:
            return meta
        time.sleep(0.2)
