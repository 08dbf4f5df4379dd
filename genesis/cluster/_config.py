"""The configuration of a local KRaft cluster: ports, ``server.properties``, log4j2 and JVM flags.

Pure functions of a :class:`Layout`, so they are unit-tested without Kafka.

Every node is a combined broker + controller (``process.roles=broker,controller``) with id
1..N, and the controllers form a static quorum (``controller.quorum.voters``), so all nodes
are formatted alike and any majority elects a leader. Ports, for ``port=9092, brokers=3``:

* client (PLAINTEXT) listener of broker *i*: ``127.0.0.1:port+i-1``  → 9092, 9093, 9094
* controller listener of node *i*: ``127.0.0.1:controller_port+i-1``, with ``controller_port``
  defaulting to ``port+1000`` → 10092, 10093, 10094

A *secure* cluster (:class:`Security`) uses the same ports; the client listener becomes ``CLIENT``,
SASL_SSL with SCRAM-SHA-512, and ACLs are enforced by ``StandardAuthorizer``:

* brokers replicate over that same ``CLIENT`` listener, logged in as ``admin`` (so no extra
  port, and replication takes the path clients take);
* the ``CONTROLLER`` listener stays PLAINTEXT on 127.0.0.1, because SCRAM credentials live in the
  metadata log the controllers replicate and cannot be used between them. Its principal is
  ``User:ANONYMOUS``, which must therefore be a super user, as is ``admin``. Acceptable on
  loopback only: a local program that connects to a controller port is a super user.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"  # never "localhost": it may resolve to ::1 while Kafka binds IPv4
CONTROLLER_OFFSET = 1000
MESSAGE_MAX_BYTES = 10 * 1024 * 1024  # alerts with cutouts are ~100 KB; leave ample room
INTERNAL_PARTITIONS = 3
SCRAM_MECHANISM = "SCRAM-SHA-512"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class Layout:
    """How many nodes, and which ports they listen on."""

    brokers: int = 3
    port: int = 9092
    controller_port: int | None = None

    def __post_init__(self) -> None:
        if self.brokers < 1:
            raise ValueError(f"brokers must be at least 1, not {self.brokers}")
        if self.controller_port is None:
            object.__setattr__(self, "controller_port", self.port + CONTROLLER_OFFSET)
        clients = set(range(self.port, self.port + self.brokers))
        if clients & set(self.controller_ports) or min(self.all_ports) < 1 or max(self.all_ports) > 65535:
            raise ValueError(
                f"client ports {self.port}.. and controller ports {self.controller_port}.. "
                "must be valid and must not overlap"
            )

    @property
    def ids(self) -> list[int]:
        """Node ids, 1..N."""
        return list(range(1, self.brokers + 1))

    def client_port(self, node_id: int) -> int:
        return self.port + node_id - 1

    def controller_port_of(self, node_id: int) -> int:
        return self.controller_port + node_id - 1  # type: ignore[operator]

    @property
    def controller_ports(self) -> list[int]:
        return [self.controller_port_of(i) for i in self.ids]

    @property
    def all_ports(self) -> list[int]:
        return [self.client_port(i) for i in self.ids] + self.controller_ports

    def node_ports(self, node_id: int) -> list[int]:
        return [self.client_port(node_id), self.controller_port_of(node_id)]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{self.client_port(i)}" for i in self.ids)

    @property
    def replication_factor(self) -> int:
        """Default RF: 3 (or N when smaller), so one broker can die without losing data."""
        return min(3, self.brokers)

    @property
    def min_insync_replicas(self) -> int:
        """RF-1: with acks=all a write survives one broker down and still needs two copies (RF 3)."""
        return max(1, self.replication_factor - 1)


def new_cluster_id() -> str:
    """A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # a leading '-' would be read as a command-line option
            return cid


@dataclass(frozen=True)
class Listener:
    """An extra client listener on every broker, beside the main one (which replication keeps using).

    Broker *i* listens on ``127.0.0.1:ports[i-1]`` and tells clients to connect to
    ``127.0.0.1:advertised[i-1]`` (default: the same port): point ``advertised`` at a proxy to make
    every client connection go through it. ``oauthbearer=True`` makes it SASL_PLAINTEXT with
    OAUTHBEARER and Kafka's unsecured JWS validator (unsigned tokens, for tests of token logins),
    clients re-authenticating every ``reauth_ms``.
    """

    name: str
    ports: tuple[int, ...]
    advertised: tuple[int, ...] = ()
    oauthbearer: bool = False
    reauth_ms: int = 30000

    def __post_init__(self) -> None:
        if not self.name.isalpha() or self.name.upper() in ("PLAINTEXT", "CONTROLLER", "CLIENT"):
            raise ValueError(f"listener name {self.name!r}: letters only, not PLAINTEXT, CONTROLLER or CLIENT")
        object.__setattr__(self, "name", self.name.upper())
        if not self.advertised:
            object.__setattr__(self, "advertised", tuple(self.ports))
        if len(self.advertised) != len(self.ports):
            raise ValueError("a listener needs one advertised port per listening port")

    @property
    def protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.oauthbearer else "PLAINTEXT"

    def bootstrap_servers(self) -> str:
        """What clients of this listener bootstrap from (the advertised ports)."""
        return ",".join(f"{HOST}:{p}" for p in self.advertised)

    def properties(self, node_id: int) -> dict[str, str]:
        """What this listener adds to the ``server.properties`` of node ``node_id`` (lists appended)."""
        props = {
            "listeners": f"{self.name}://{HOST}:{self.ports[node_id - 1]}",
            "advertised.listeners": f"{self.name}://{HOST}:{self.advertised[node_id - 1]}",
            "listener.security.protocol.map": f"{self.name}:{self.protocol}",
        }
        if self.oauthbearer:
            prefix = f"listener.name.{self.name.lower()}"
            props.update(
                {
                    f"{prefix}.sasl.enabled.mechanisms": "OAUTHBEARER",
                    # no server callback handler: Kafka's unsecured JWS validator checks the token
                    f"{prefix}.oauthbearer.sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer."
                    'OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";',
                    f"{prefix}.oauthbearer.connections.max.reauth.ms": str(self.reauth_ms),
                }
            )
        return props


@dataclass(frozen=True)
class Security:
    """What the nodes of a secure cluster need: its PEM files and the admin's password (for replication)."""

    ca_file: Path
    broker_file: Path
    admin_password: str = field(repr=False)


def scram_format_arguments(credentials: dict[str, str]) -> list[str]:
    """``StorageTool format`` arguments that create the SCRAM users (the same list for every node).

    Kafka splits these on ',' and strips quotes, so a password must contain neither.
    """
    args = []
    for user, password in credentials.items():
        if any(c in user + password for c in ',"=[]'):
            raise ValueError(f'SCRAM user {user!r} or its password contains one of , " = [ ]')
        args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
    return args


def _secure_properties(layout: Layout, node_id: int, security: Security) -> dict[str, str]:
    client = f"CLIENT://{HOST}:{layout.client_port(node_id)}"
    jaas = (
        f"org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{security.admin_password}";'
    )
    return {
        "listeners": f"{client},CONTROLLER://{HOST}:{layout.controller_port_of(node_id)}",
        "advertised.listeners": client,
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,CLIENT:SASL_SSL",
        # Kafka's defaults are GSSAPI for both
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        # the server side checks against the metadata log; username/password are the broker's own login
        f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(security.broker_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(security.ca_file),
        "ssl.client.auth": "none",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def server_properties(
    layout: Layout,
    node_id: int,
    data_dir: Path,
    security: Security | None = None,
    listeners: tuple[Listener, ...] = (),
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """``server.properties`` of one combined broker+controller node (secured when ``security`` is
    given), with the extra client ``listeners``, then ``overrides`` (applied last, as they are)."""
    if node_id not in layout.ids:
        raise ValueError(f"node id {node_id} is not one of {layout.ids}")
    rf, min_isr = str(layout.replication_factor), str(layout.min_insync_replicas)
    voters = ",".join(f"{i}@{HOST}:{layout.controller_port_of(i)}" for i in layout.ids)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{HOST}:{layout.client_port(node_id)},"
        f"CONTROLLER://{HOST}:{layout.controller_port_of(node_id)}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{layout.client_port(node_id)}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # durability: a replicated topic keeps accepting acks=all writes with one broker down
        "num.partitions": "6",
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": str(INTERNAL_PARTITIONS),
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": str(INTERNAL_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "share.coordinator.state.topic.num.partitions": str(INTERNAL_PARTITIONS),
        # notice a dead broker in seconds, not the default 9 s / 30 s
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "replica.lag.time.max.ms": "5000",
        "group.initial.rebalance.delay.ms": "0",
        # alerts with image cutouts
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        # retention-capped topics (the demo's lsst, injection runs) shed old segments within seconds,
        # not Kafka's 5 minutes, so a fast injection cannot fill a small disk meanwhile
        "log.retention.check.interval.ms": "10000",
        # small machine: the 128 MiB default dedupe buffer is allocated on the heap at start
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        "log.cleaner.threads": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.replica.fetchers": "1",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        # a broker restarted after SIGKILL re-reads every segment past its recovery point, and only a
        # rolled segment is ever flushed: with the 1 GiB default every demo topic is one unflushed
        # segment, re-validated whole on each restart; checkpoint the recovery points every 5 s
        "log.segment.bytes": str(64 * 1024**2),
        "log.flush.offset.checkpoint.interval.ms": "5000",
    }
    if security is not None:
        props.update(_secure_properties(layout, node_id, security))
    for listener in listeners:
        for key, value in listener.properties(node_id).items():
            joined = key in ("listeners", "advertised.listeners", "listener.security.protocol.map")
            props[key] = f"{props[key]},{value}" if joined else value
    props.update(overrides or {})
    return props


def render_properties(props: dict[str, str]) -> str:
    """Java ``.properties`` text (values here never need escaping beyond backslashes)."""
    return "".join(f"{key}={value.replace(chr(92), chr(92) * 2)}\n" for key, value in props.items())


def log4j2_properties(quiet: bool = False) -> str:
    """Log4j2 configuration: INFO and up into ``${kafka.logs.dir}/server.log``, WARN and up to stderr.

    ``quiet`` (for one-shot tools such as ``StorageTool``): WARN to stderr only.
    """
    lines = [
        "status = warn",
        "appender.err.type = Console",
        "appender.err.name = STDERR",
        "appender.err.target = SYSTEM_ERR",
        "appender.err.layout.type = PatternLayout",
        "appender.err.layout.pattern = [%d] %p %m (%c)%n",
    ]
    if quiet:
        lines += ["rootLogger.level = WARN", "rootLogger.appenderRef.err.ref = STDERR"]
    else:
        lines += [
            "appender.file.type = File",
            "appender.file.name = FILE",
            "appender.file.fileName = ${sys:kafka.logs.dir}/server.log",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = FILE",
            "rootLogger.appenderRef.err.ref = STDERR",
            "rootLogger.appenderRef.err.level = WARN",
        ]
        for i, name in enumerate(
            ["kafka.request.logger", "state.change.logger", "org.apache.kafka.clients", "kafka.log.LogCleaner"]
        ):
            lines += [f"logger.q{i}.name = {name}", f"logger.q{i}.level = WARN"]
    return "\n".join(lines) + "\n"


#: The broker JVM's flags besides heap, logging and paths, by profile (``LocalCluster(jvm=...)``,
#: ``genesis cluster up --jvm``). Measured by ``bench/brokers.py`` (bench/RESULTS.md, "Broker JVM
#: profiles"): three brokers on 2 cores at the LSST rate (~20 MB/s to replication factor 3, one
#: consumer), after a 2-minute warm-up, used 35 CPU ms per MB with C1 only, 24-25 with the default
#: JIT and G1, 22 with the default JIT and the Parallel collector; C2 costs a slower start (~25 s
#: instead of ~8 s for three brokers on a busy 2-core machine).
#:
#: * ``c2-parallel`` (the default): the JVM's tiered JIT (C1, then C2 for hot code) and the
#:   Parallel collector, the least broker CPU under sustained load;
#: * ``c2``: the tiered JIT with G1 (pause goal 20 ms);
#: * ``fast-start``: C1 only (``-XX:TieredStopAtLevel=1``) and G1, which starts a broker sooner and
#:   suits short-lived clusters (the test fixtures), at ~1.5x the CPU per MB once warm.
JVM_PROFILES: dict[str, tuple[str, ...]] = {
    "c2-parallel": ("-XX:+UseParallelGC",),
    "c2": ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"),
    "fast-start": (
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:TieredStopAtLevel=1",
        "-XX:ReservedCodeCacheSize=64m",
    ),
}
#: the profile of ``genesis cluster up`` and of ``LocalCluster()`` (see JVM_PROFILES)
DEFAULT_JVM = "c2-parallel"


def jvm_profile(jvm: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The flags of profile ``jvm`` (a name of :data:`JVM_PROFILES`, None for the default), or ``jvm``
    itself when it is a sequence of flags (e.g. to try another garbage collector)."""
    if jvm is None:
        jvm = DEFAULT_JVM
    if isinstance(jvm, str):
        try:
            return JVM_PROFILES[jvm]
        except KeyError:
            raise ValueError(
                f"unknown JVM profile {jvm!r}: choose one of {', '.join(JVM_PROFILES)} (or give a list of flags)"
            ) from None
    flags = tuple(jvm)
    if not all(isinstance(f, str) and f.startswith("-") for f in flags):
        raise ValueError(f"JVM flags must be strings starting with '-', not {jvm!r}")
    return flags


def jvm_options(
    heap: str,
    *,
    log4j2_file: Path,
    logs_dir: Path,
    tmp_dir: Path,
    jvm: str | tuple[str, ...] | list[str] | None = None,
) -> list[str]:
    """JVM flags for a broker: a small heap, then the flags of profile ``jvm`` (see :data:`JVM_PROFILES`)."""
    return [
        f"-Xmx{heap}",
        "-Xms64m",
        *jvm_profile(jvm),
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-UsePerfData",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2_file}",
        f"-Dkafka.logs.dir={logs_dir}",
        f"-Djava.io.tmpdir={tmp_dir}",  # zstd-jni / snappy unpack native libraries here
    ]
