"""Spark's Kafka options from genesis' URL, ``start_at`` and credentials (no pyspark needed here).

Spark's Kafka source and sink use the Java Kafka client, not librdkafka: the credentials genesis
finds (:func:`genesis._kafka.auth_config`, librdkafka's names) are translated into the Java
client's ``kafka.*`` options here, once, for the source and the sink alike.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._kafka import Credentials, auth_config
from .._urls import StreamSpec
from ..errors import ConfigError

_JAAS = {
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
}
_OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
_OAUTH_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
#: the librdkafka settings translated below (the credentials go into the JAAS line)
_TRANSLATED = {
    "security.protocol",
    "sasl.mechanism",
    "ssl.ca.location",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
}


def _quoted(value: str) -> str:
    """A JAAS option value in double quotes (backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def java_security(conf: Mapping[str, Any]) -> dict[str, str]:
    """The Java Kafka client's ``kafka.*`` options for librdkafka security settings ``conf``.

    SASL/SCRAM and PLAIN become a ``kafka.sasl.jaas.config`` line with the login module,
    OAUTHBEARER (OIDC client credentials) the OAuth login module and callback handler, and a PEM
    CA file (``ssl.ca.location``) a PEM truststore. A setting without a known translation is a
    :class:`~genesis.errors.ConfigError` rather than silently dropped.
    """
    out: dict[str, str] = {}
    protocol = str(conf.get("security.protocol", "PLAINTEXT")).upper()
    if protocol != "PLAINTEXT":
        out["kafka.security.protocol"] = protocol
    mechanism = str(conf.get("sasl.mechanism", "")).upper()
    if mechanism:
        out["kafka.sasl.mechanism"] = mechanism
    if mechanism in _JAAS:
        user, password = conf.get("sasl.username"), conf.get("sasl.password")
        if not user or not password:
            raise ConfigError(f"SASL {mechanism} needs a user name and a password (genesis.Auth(user, password))")
        out["kafka.sasl.jaas.config"] = (
            f"{_JAAS[mechanism]} required username={_quoted(str(user))} password={_quoted(str(password))};"
        )
    elif mechanism == "OAUTHBEARER":
        url = conf.get("sasl.oauthbearer.token.endpoint.url")
        client, secret = conf.get("sasl.oauthbearer.client.id"), conf.get("sasl.oauthbearer.client.secret")
        if not (url and client and secret):
            raise ConfigError("OAUTHBEARER needs a token endpoint, client id and secret (genesis.Auth.oidc(...))")
        scope = conf.get("sasl.oauthbearer.scope")
        options = f"clientId={_quoted(str(client))} clientSecret={_quoted(str(secret))}"
        if scope:
            options += f" scope={_quoted(str(scope))}"
        out["kafka.sasl.jaas.config"] = f"{_OAUTH_MODULE} required {options};"
        out["kafka.sasl.login.callback.handler.class"] = _OAUTH_HANDLER
        out["kafka.sasl.oauthbearer.token.endpoint.url"] = str(url)
    elif mechanism:
        raise ConfigError(f"SASL mechanism {mechanism} has no Java client translation; use SCRAM, PLAIN or OAUTHBEARER")
    ca = conf.get("ssl.ca.location")
    if ca and protocol.endswith("SSL"):
        out["kafka.ssl.truststore.type"] = "PEM"
        out["kafka.ssl.truststore.location"] = str(ca)
    unknown = sorted(set(conf) - _TRANSLATED)
    if unknown:
        raise ConfigError(
            f"the credentials hold librdkafka settings genesis cannot translate for Spark's Java Kafka client: "
            f"{', '.join(unknown)}; pass them as Spark options instead (options={{'kafka.<java name>': ...}})"
        )
    return out


def security_options(spec: StreamSpec, auth: Credentials) -> dict[str, str]:
    """``kafka.*`` options for the credentials of ``spec``: ``auth``, else the environment or the
    credentials file (as :func:`genesis.streaming.open` finds them)."""
    return java_security(auth_config(auth, spec))


def user_name(auth: Credentials) -> str:
    """Whose consumer groups these are: the login's user name, else the local user (``genesis``)."""
    name = getattr(auth, "username", None) or (auth.get("sasl.username") if isinstance(auth, Mapping) else None)
    if name:
        return str(name)
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "genesis"


def topic_options(spec: StreamSpec) -> dict[str, str]:
    """``subscribe`` (topic names) or ``subscribePattern`` (one ``^regex``)."""
    patterns = [t for t in spec.topics if t.startswith("^")]
    if not patterns:
        return {"subscribe": ",".join(spec.topics)}
    if len(spec.topics) > 1:
        raise ConfigError(
            f"Spark's Kafka source takes topic names or one pattern, not {', '.join(spec.topics)}: "
            "merge the patterns into one regular expression (^(a|b).*)"
        )
    return {"subscribePattern": patterns[0]}


def start_options(
    start_at: Any, until_eos: bool, last_offsets: Mapping[str, Mapping[int, int]] | None = None
) -> dict[str, str]:
    """``startingOffsets``/``startingTimestamp`` (and ``endingOffsets`` for a batch) for ``start_at``.

    ``last_offsets``: for ``start_at=-N``, ``{topic: {partition: offset to start at}}``,
    computed by the caller from the partitions' watermarks.
    """
    out: dict[str, str] = {}
    if start_at == "earliest":
        out["startingOffsets"] = "earliest"
    elif start_at == "latest":
        if until_eos:
            raise ConfigError(
                "start_at='latest' with until_eos=True would read nothing: a batch reads what the topic "
                "holds now; use start_at='earliest', a datetime or -N"
            )
        out["startingOffsets"] = "latest"
    elif isinstance(start_at, datetime):
        when = start_at if start_at.tzinfo else start_at.replace(tzinfo=timezone.utc)
        out["startingTimestamp"] = str(int(when.timestamp() * 1000))
        out["startingOffsetsByTimestampStrategy"] = "latest"  # a partition with nothing newer starts at its end
    elif isinstance(start_at, int) and not isinstance(start_at, bool) and start_at < 0:
        if last_offsets is None:
            raise ConfigError("start_at=-N needs the partitions' offsets")
        out["startingOffsets"] = json.dumps(
            {t: {str(p): o for p, o in parts.items()} for t, parts in last_offsets.items()}
        )
    else:
        raise ConfigError(
            f"start_at={start_at!r} is not understood: use 'earliest' (default), 'latest' (new alerts "
            "only), a datetime (alerts from that time on) or a negative integer -N (the last N alerts "
            "of each partition)"
        )
    if until_eos:
        out["endingOffsets"] = "latest"
    return out


def source_options(
    spec: StreamSpec,
    *,
    start_at: Any,
    until_eos: bool,
    auth: Credentials,
    last_offsets: Mapping[str, Mapping[int, int]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Every option of Spark's Kafka source for a genesis read, the user's ``options`` last.

    Transactions' aborted messages are never read (``kafka.isolation.level=read_committed``, as
    genesis' exactly-once pipe needs); consumer groups are named ``<user>-<random>`` (Spark appends
    ``-<uuid>`` to ``groupIdPrefix``), which prefixed group ACLs such as Rubin's (``<user>-*``)
    allow. A URL's ``group@`` is used as the exact group id (``kafka.group.id``) instead; Spark
    keeps its position in the checkpoint, not in the group's committed offsets.
    """
    out = {
        "kafka.bootstrap.servers": spec.bootstrap_servers,
        "kafka.isolation.level": "read_committed",
        **topic_options(spec),
        **start_options(start_at, until_eos, last_offsets),
        **security_options(spec, auth),
    }
    if spec.group:
        out["kafka.group.id"] = spec.group
    else:
        out["groupIdPrefix"] = user_name(auth)
    out.update({k: str(v) for k, v in (options or {}).items()})
    return out


def sink_options(spec: StreamSpec, auth: Credentials, options: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Options of Spark's Kafka sink writing to the one topic of ``spec``: acks from every in-sync
    replica and the idempotent producer (no duplicates from the producer's own retries)."""
    if len(spec.topics) != 1 or spec.topics[0].startswith("^"):
        raise ConfigError(f"write to one topic, as in kafka://host/topic, not {','.join(spec.topics)}")
    out = {
        "kafka.bootstrap.servers": spec.bootstrap_servers,
        "topic": spec.topics[0],
        "kafka.acks": "all",
        "kafka.enable.idempotence": "true",
        **security_options(spec, auth),
    }
    out.update({k: str(v) for k, v in (options or {}).items()})
    return out
