"""``genesis doctor``: find which step of reaching a stream fails, and say how to fix it.

First it says which decoder reads the alerts (the compiled one, or fastavro and why). The
checks then run in the order a connection goes through them — the URL parses; each bootstrap
host resolves; each port accepts TCP; the TLS handshake succeeds (when TLS is configured),
trusting which CA; the login is accepted; the topic exists; a message can be read; the
consumer group can be used — and stop at the first failure, since every later step depends
on it. Nothing is committed and no group is joined, so running it beside real consumers is
harmless.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from . import auth as _auth
from . import errors
from ._kafka import ErrorLog, connect, new_admin, new_consumer, random_group_id, translate
from ._urls import StreamSpec, parse_url

OK, FAILED, SKIPPED = "ok", "FAILED", "skipped"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``status`` is ok, FAILED or skipped; ``detail`` says what was
    found or, for a failure, what to fix."""

    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<8}{self.name:<18}{self.detail}"


class _Failed(Exception):
    """A check failed; the message says what to fix."""


@dataclass
class _Context:
    """What the checks learn and pass on."""

    url: str
    timeout: float
    auth: Any = None
    source: str = ""
    parsed: StreamSpec | None = None  # set by the URL check
    reachable: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    client: Consumer | None = None  # set by the login check, with errors_seen
    errors_seen: ErrorLog | None = None
    group: str = ""

    # the checks run in order: each later one uses what an earlier one found
    @property
    def spec(self) -> StreamSpec:
        assert self.parsed is not None, "the URL check runs first"
        return self.parsed

    @property
    def consumer(self) -> Consumer:
        assert self.client is not None, "the login check runs first"
        return self.client

    @property
    def error_log(self) -> ErrorLog:
        assert self.errors_seen is not None, "the login check runs first"
        return self.errors_seen

    @property
    def username(self) -> str | None:
        if isinstance(self.auth, _auth.Auth):
            return self.auth.username
        return self.auth.get("sasl.username") if isinstance(self.auth, dict) else None

    @property
    def uses_tls(self) -> bool:
        if isinstance(self.auth, _auth.Auth):
            return self.auth.ssl
        return isinstance(self.auth, dict) and str(self.auth.get("security.protocol", "")).upper().endswith("SSL")

    @property
    def ca(self) -> str | None:
        if isinstance(self.auth, _auth.Auth):
            return self.auth.ca
        return self.auth.get("ssl.ca.location") if isinstance(self.auth, dict) else None


def _split(broker: str) -> tuple[str, int]:
    host, _, port = broker.rpartition(":")
    return host.strip("[]"), int(port)


# ------------------------------------------------------------------ the checks
def _check_url(ctx: _Context) -> str:
    try:
        spec = parse_url(ctx.url)
    except errors.URLError as exc:
        raise _Failed(str(exc)) from None
    if spec.scheme != "kafka":
        raise _Failed("genesis doctor checks kafka:// URLs; a file:// URL needs no broker")
    ctx.parsed = spec
    if ctx.auth is None:
        try:
            found = _auth.find(spec)
        except errors.ConfigError as exc:
            raise _Failed(str(exc)) from None
        if found is not None:
            ctx.auth, ctx.source = found.auth, found.source
    elif not ctx.source:
        ctx.source = "passed by the caller"
    return spec.url()


def _check_resolve(ctx: _Context) -> str:
    found, failed = [], []
    for broker in ctx.spec.brokers:
        host, port = _split(broker)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(f"{host} -> {infos[0][4][0]}")
        except socket.gaierror as exc:
            failed.append(f"{host} ({exc.strerror})")
    if failed:
        raise _Failed(f"cannot resolve {', '.join(failed)}: check the host name in the URL (and your DNS / VPN)")
    return ", ".join(found)


def _check_tcp(ctx: _Context) -> str:
    refused = []
    for broker in ctx.spec.brokers:
        host, port = _split(broker)
        try:
            with socket.create_connection((host, port), timeout=min(5.0, ctx.timeout)):
                ctx.reachable.append((host, port))
        except OSError as exc:
            refused.append(f"{broker} ({exc.strerror or exc})")
    if not ctx.reachable:
        raise _Failed(
            f"no bootstrap broker accepts connections: {', '.join(refused)}. Check the port in the URL, "
            "that the brokers run (local cluster: genesis cluster status) and that no firewall blocks it"
        )
    note = f"; not answering: {', '.join(refused)}" if refused else ""
    return ", ".join(f"{h}:{p}" for h, p in ctx.reachable) + note


def _tls_handshake(host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host):
            pass


def _check_tls(ctx: _Context) -> str:
    host, port = ctx.reachable[0]
    if not ctx.uses_tls:
        return "not configured (plaintext)"
    trust = f"the CA file {ctx.ca}" if ctx.ca else "the system's CA store"
    try:
        context = ssl.create_default_context(cafile=ctx.ca)
        _tls_handshake(host, port, context, min(5.0, ctx.timeout))
    except ssl.SSLCertVerificationError as exc:
        raise _Failed(
            f"{host}:{port} presented a certificate that {trust} does not vouch for "
            f"({exc.verify_message}): give the broker's CA with genesis auth add {host} --ca FILE"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise _Failed(
            f"no TLS handshake with {host}:{port} ({exc}): the listener may be plaintext; "
            f"then use genesis auth add {host} --no-ssl"
        ) from None
    return f"{host}:{port}, trusting {trust}"


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` completes a TLS handshake (certificate not checked: only the protocol matters)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        _tls_handshake(host, port, context, timeout)
    except (ssl.SSLError, OSError):
        return False
    return True


def _check_login(ctx: _Context) -> str:
    ctx.errors_seen = ErrorLog(ctx.spec.bootstrap_servers)
    ctx.group = ctx.spec.group or random_group_id(ctx.username)
    try:
        ctx.client = new_consumer(
            ctx.spec,
            group=ctx.group,
            auth=ctx.auth if ctx.auth is not None else {},
            error_log=ctx.error_log,
            settings={"enable.partition.eof": True},
        )
        connect(ctx.consumer.list_topics, dataclasses.replace(ctx.spec, topics=()), ctx.error_log, ctx.timeout)
    except errors.BrokerUnreachableError as exc:
        host, port = ctx.reachable[0]
        if ctx.auth is None and _speaks_tls(host, port, min(5.0, ctx.timeout)):
            raise _Failed(
                f"{host}:{port} speaks TLS, and no credentials are configured for it: add them with "
                f"genesis auth add {host} --username USER [--ca FILE]"
            ) from None
        raise _Failed(str(exc)) from None
    except (errors.BrokerError, errors.ConfigError) as exc:  # ConfigError: librdkafka refused the settings
        raise _Failed(str(exc)) from None
    if ctx.auth is None:
        return "no login configured (plaintext); the brokers answered"
    mechanism = ctx.auth.mechanism if isinstance(ctx.auth, _auth.Auth) else ctx.auth.get("sasl.mechanism", "?")
    return f"as {ctx.username or '?'} ({mechanism}; credentials from {ctx.source})"


def _check_topic(ctx: _Context) -> str:
    try:
        metadata = connect(ctx.consumer.list_topics, ctx.spec, ctx.error_log, ctx.timeout)
    except errors.BrokerError as exc:
        raise _Failed(str(exc)) from None
    found = []
    for topic in ctx.spec.topics:
        if topic.startswith("^"):
            matching = sorted(t for t in metadata.topics if re.match(topic, t))
            if not matching:
                raise _Failed(f"no topic matches {topic!r}")
            found.append(f"{topic} matches {', '.join(matching[:5])}{' ...' if len(matching) > 5 else ''}")
        else:
            meta = metadata.topics.get(topic) or ctx.consumer.list_topics(topic, timeout=ctx.timeout).topics[topic]
            found.append(f"{topic} ({len(meta.partitions)} partitions)")
    return ", ".join(found)


def _first_topic(ctx: _Context) -> str:
    topic = ctx.spec.topics[0]
    if topic.startswith("^"):
        topic = sorted(t for t in ctx.consumer.list_topics(timeout=ctx.timeout).topics if re.match(topic, t))[0]
    return topic


def _check_read(ctx: _Context) -> str:
    topic = _first_topic(ctx)
    meta = ctx.consumer.list_topics(topic, timeout=ctx.timeout).topics[topic]
    try:
        marks = {
            p: ctx.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=ctx.timeout)
            for p in sorted(meta.partitions)
        }
    except KafkaException as exc:
        raise _Failed(str(translate(exc, brokers=ctx.spec.bootstrap_servers, topic=topic))) from None
    with_data = [p for p, (low, high) in marks.items() if high > low]
    reader = ctx.consumer
    # one message if there is one (the newest of a partition), else the end of partition 0
    partition = with_data[0] if with_data else min(marks)
    start = marks[partition][1] - 1 if with_data else OFFSET_END
    reader.assign([TopicPartition(topic, partition, start)])
    deadline = time.monotonic() + ctx.timeout
    try:
        while time.monotonic() < deadline:
            ctx.error_log.raise_fatal()
            msg = reader.poll(0.25)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return f"read {topic}[{partition}]@{msg.offset()} ({len(msg.value() or b'')} bytes)"
            if err.code() == KafkaError._PARTITION_EOF:
                return f"allowed to read {topic} (it holds no message yet)"
            if err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                continue  # librdkafka looks up the group's coordinator anyway; the next check covers the group
            raise _Failed(str(translate(err, brokers=ctx.spec.bootstrap_servers, topic=topic)))
    except errors.BrokerError as exc:
        raise _Failed(str(exc)) from None
    finally:
        reader.unassign()
    raise _Failed(
        f"no answer to a fetch from {topic}[{partition}] within {ctx.timeout:g} s: "
        "the partition's leader may be down (local cluster: genesis cluster status)"
    )


def _check_group(ctx: _Context) -> str:
    topic = _first_topic(ctx)
    admin = new_admin(ctx.spec, auth=ctx.auth if ctx.auth is not None else {})
    request = ConsumerGroupTopicPartitions(ctx.group, [TopicPartition(topic, 0)])
    try:
        # OffsetFetch: needs the group ACL, joins nothing and commits nothing
        [future] = admin.list_consumer_group_offsets([request], request_timeout=ctx.timeout).values()
        [tp] = future.result(timeout=ctx.timeout + 1).topic_partitions
    except KafkaException as exc:
        raise _Failed(str(translate(exc, brokers=ctx.spec.bootstrap_servers, group=ctx.group))) from None
    except TimeoutError:
        raise _Failed(f"no answer about group {ctx.group!r} within {ctx.timeout:g} s") from None
    if tp.error is not None:
        raise _Failed(str(translate(tp.error, brokers=ctx.spec.bootstrap_servers, group=ctx.group)))
    kind = "the URL's group" if ctx.spec.group else "a fresh random group, e.g."
    stored = f"; committed offset of {topic}[0]: {tp.offset}" if tp.offset >= 0 else ""
    return f"{kind} {ctx.group!r}{stored}"


def _check_decoder(ctx: _Context) -> str:
    from ._codecs import native_available

    used, why_not = native_available()
    return "compiled (genesis._native, Rust)" if used else f"fastavro; the compiled decoder is {why_not}"


CHECKS: list[tuple[str, Callable[[_Context], str]]] = [
    ("decoder", _check_decoder),
    ("URL parses", _check_url),
    ("hosts resolve", _check_resolve),
    ("ports accept TCP", _check_tcp),
    ("TLS handshake", _check_tls),
    ("login", _check_login),
    ("topic exists", _check_topic),
    ("can read", _check_read),
    ("group usable", _check_group),
]


def diagnose(url: str, *, auth: Any = None, timeout: float = 10.0) -> Iterator[Check]:
    """Run the checks on ``url``, yielding each :class:`Check` as it completes.

    ``auth``: as for ``gs.open``; by default the environment or the credentials file.
    ``timeout``: seconds each network step may take.
    """
    ctx = _Context(url, timeout, auth)
    failed = False
    try:
        for name, check in CHECKS:
            if failed:
                yield Check(name, SKIPPED, "(an earlier check failed)")
                continue
            try:
                yield Check(name, OK, check(ctx))
            except _Failed as exc:
                failed = True
                yield Check(name, FAILED, str(exc))
    finally:
        if ctx.client is not None:
            ctx.client.close()


def run(
    url: str, *, auth: Any = None, timeout: float = 10.0, report: Callable[[Check], None] | None = None
) -> list[Check]:
    """All checks as a list (``report`` is called with each as it completes)."""
    results = []
    for check in diagnose(url, auth=auth, timeout=timeout):
        if report is not None:
            report(check)
        results.append(check)
    return results
