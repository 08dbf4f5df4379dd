"""``LocalCluster``: a real multi-broker Apache Kafka (KRaft) on this machine, without Docker.

State directory layout (default ``cache_dir()/cluster``)::

    cluster.json                 ports, pids, cluster id, version (see _state.py)
    log4j2.properties            broker logging; tools-log4j2.properties for StorageTool
    tmp/                         java.io.tmpdir of the JVMs
    node<i>/server.properties    configuration of node i (see _config.py)
    node<i>/data/                its log dir (topic data and KRaft metadata)
    node<i>/logs/server.log      its log (INFO and up)
    node<i>/stdout.log           its stdout/stderr (JVM errors, WARN and up)

and, for a secure cluster (``secure=True``)::

    credentials.json             user -> password (admin and the users), 0600
    tls/ca.pem                   the CA clients must trust (``ca_file``)
    tls/broker.pem               the brokers' key and certificate chain, 0600
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from .. import _topics
from .._paths import cache_dir
from .._urls import StreamSpec
from ..auth import Auth
from ..errors import ClusterError, PortInUseError
from . import _admin, _config, _jars, _process, _tls
from ._state import ClusterState, read_state, write_state

log = logging.getLogger("genesis.cluster")

_PROBE_TOPIC = "__genesis_ready"
_USER_NAME = re.compile(r"[A-Za-z0-9._-]+")
_CREDENTIALS = "credentials.json"
_TLS_DIR = "tls"


@dataclass
class BrokerStatus:
    """One node of the cluster as seen by ``status()``."""

    id: int
    pid: int | None
    port: int
    controller_port: int
    alive: bool  #: its JVM is running
    registered: bool  #: the cluster metadata lists it (it serves clients)


@dataclass
class ClusterStatus:
    """What ``status()`` reports; ``topics`` maps user topic names to their partition count."""

    dir: str
    cluster_id: str
    version: str
    bootstrap_servers: str
    brokers: list[BrokerStatus]
    topics: dict[str, int] = field(default_factory=dict)
    secure: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def default_dir() -> Path:
    """Where ``genesis cluster up`` keeps its cluster unless told otherwise."""
    return cache_dir() / "cluster"


class LocalCluster:
    """N combined broker+controller Kafka nodes on 127.0.0.1, run from Kafka's jars on Maven Central.

    Use as a context manager (start on enter; on exit stop and delete the state directory,
    unless ``keep_data``), or call :meth:`start` / :meth:`stop`; the JVMs are detached, so the
    cluster outlives this Python process and :meth:`attach` finds it again. Client ports are
    ``port .. port+N-1``, controller ports ``controller_port .. +N-1`` (default ``port+1000``).
    Defaults are durable: replication factor min(3, N), ``min.insync.replicas`` RF-1, no unclean
    leader election, no topic auto-creation.

    ``secure=True``: clients connect with SASL_SSL and SCRAM-SHA-512 and ACLs apply (see
    ``_config`` for the listeners). The users (``admin``, a super user, and ``users``) get
    random passwords, kept in the state dir (:attr:`credentials`); clients trust :attr:`ca_file`;
    :meth:`add_user` adds a login while it runs, :meth:`grant` gives a user access; :meth:`auth` is a
    user's :class:`~genesis.auth.Auth`.

    ``jvm``: the brokers' JVM profile, a name of ``genesis.cluster.JVM_PROFILES`` (default
    ``DEFAULT_JVM``, the one measured to cost the brokers least CPU under sustained load;
    ``"fast-start"`` starts sooner, for short-lived clusters such as test fixtures), or a list of
    JVM flags used instead. A cluster restarted from its directory keeps the profile it was
    created with, as it keeps its heap.
    """

    def __init__(
        self,
        dir: str | Path | None = None,
        brokers: int = 3,
        port: int = 9092,
        controller_port: int | None = None,
        heap: str = "384m",
        *,
        keep_data: bool = False,
        start_timeout: float = 120.0,
        secure: bool = False,
        users: Iterable[str] = ("alice", "bob"),
        listeners: Iterable[_config.Listener] = (),
        properties: dict[str, str] | None = None,
        jvm: str | Sequence[str] | None = None,
    ) -> None:
        self.dir = Path(dir or default_dir()).expanduser().resolve()
        self.layout = _config.Layout(brokers, port, controller_port)
        self.listeners = tuple(listeners)
        #: broker settings applied over genesis' own (a test's misconfiguration, a tuning)
        self.properties = dict(properties or {})
        for listener in self.listeners:
            if len(listener.ports) != brokers:
                raise ClusterError(f"listener {listener.name} has {len(listener.ports)} ports for {brokers} brokers")
        self.secure = secure
        self.users = tuple(users)
        self.heap = heap
        #: the brokers' JVM profile: a name of ``_config.JVM_PROFILES`` or a list of flags
        self.jvm: str | list[str] = _config.DEFAULT_JVM if jvm is None else jvm if isinstance(jvm, str) else list(jvm)
        _config.jvm_profile(self.jvm)  # refuse an unknown profile now, not when a broker starts
        self.keep_data = keep_data
        self.start_timeout = start_timeout
        #: True when start() found the cluster already running and changed nothing
        self.already_running = False
        self._state: ClusterState | None = None
        self._admin: AdminClient | None = None

    # ----------------------------------------------------------------- finding
    @classmethod
    def attach(cls, dir: str | Path | None = None, *, require_running: bool = True) -> LocalCluster:
        """The cluster recorded in ``dir`` (default state dir); :class:`ClusterError` if there is none running.

        ``require_running=False`` also returns a cluster whose JVMs are all stopped (to restart
        brokers, or to delete it).
        """
        path = Path(dir or default_dir()).expanduser().resolve()
        state = read_state(path)
        if state is None:
            raise ClusterError(
                f"no local Kafka cluster in {path}; start one with `genesis cluster up"
                f"{'' if dir is None else f' --dir {path}'}`"
            )
        cluster = cls(
            path, state.brokers, state.port, state.controller_port, state.heap, secure=state.secure, jvm=state.jvm
        )
        running = cluster.running_brokers()  # also reads the recorded state (pids, ports)
        if require_running and not running:
            raise ClusterError(
                f"the local Kafka cluster in {path} is not running; start it with `genesis cluster up --dir {path}`"
            )
        return cluster

    # ---------------------------------------------------------------- properties
    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:9092,127.0.0.1:9093,...``: every broker's client listener."""
        return self.layout.bootstrap_servers

    @property
    def replication_factor(self) -> int:
        return self.layout.replication_factor

    @property
    def ids(self) -> list[int]:
        return self.layout.ids

    def url(self, topic: str, group: str | None = None) -> str:
        """A genesis stream URL for ``topic`` on this cluster: ``kafka://[group@]host:port,.../topic``."""
        return f"kafka://{group + '@' if group else ''}{self.bootstrap_servers}/{topic}"

    def _marker(self, node_id: int) -> str:
        """A string only the command line of node ``node_id``'s JVM contains."""
        return f"kafka.Kafka {self._node_dir(node_id) / 'server.properties'}"

    def _node_dir(self, node_id: int) -> Path:
        return self.dir / f"node{node_id}"

    def _pid(self, node_id: int) -> int | None:
        return self._state.pids.get(node_id) if self._state else None

    def running_brokers(self) -> list[int]:
        """Ids of the brokers whose JVM is alive (as recorded in the cluster's state directory)."""
        if self._state is None:
            self._state = read_state(self.dir)
        return self._alive_ids()

    def _alive_ids(self) -> list[int]:
        return [i for i in self.ids if _process.is_running(self._pid(i), self._marker(i))]

    def _check_id(self, node_id: int) -> None:
        if node_id not in self.ids:
            raise ClusterError(f"there is no broker {node_id}; valid broker ids are {', '.join(map(str, self.ids))}")

    def _client(self) -> AdminClient:
        if self._admin is None:
            self._admin = _admin.admin(self.bootstrap_servers, self._admin_security())
        return self._admin

    # ---------------------------------------------------------------- security
    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) clients of a secure cluster must trust."""
        self._require_secure()
        return self.dir / _TLS_DIR / _tls.CA_FILE

    @property
    def credentials(self) -> dict[str, str]:
        """User name -> password of a secure cluster (``admin`` included)."""
        self._require_secure()
        try:
            return json.loads((self.dir / _CREDENTIALS).read_text())
        except FileNotFoundError:
            raise ClusterError(f"{self.dir} holds no {_CREDENTIALS}; was the cluster started?") from None

    def auth(self, user: str = _config.ADMIN_USER) -> Auth:
        """The login of ``user`` on this secure cluster (for ``gs.open(url, auth=...)``)."""
        passwords = self.credentials
        if user not in passwords:
            raise ClusterError(f"the cluster in {self.dir} has no user {user!r}; it has {', '.join(passwords)}")
        return Auth(user, passwords[user], mechanism=_config.SCRAM_MECHANISM, ca=str(self.ca_file))

    def admin_config(self) -> dict[str, Any]:
        """librdkafka settings that log in as ``admin`` (empty for a cluster that is not secure)."""
        return self._admin_security()

    def _admin_security(self) -> dict[str, Any]:
        return self.auth().librdkafka_config() if self.secure else {}

    def _require_secure(self) -> None:
        if not self.secure:
            raise ClusterError(f"the cluster in {self.dir} is not secure (start it with secure=True / --secure)")

    def grant(
        self,
        user: str,
        *,
        topic: str | None = None,
        group_prefix: str | None = None,
        group: str | None = None,
        operations: Iterable[str] = ("READ",),
        timeout: float = 30.0,
    ) -> None:
        """Allow ``user`` ``operations`` (READ implies DESCRIBE; WRITE, ...) on ``topic``, on the consumer
        groups whose id starts with ``group_prefix`` (e.g. ``"alice-"``, what random group ids look
        like), and on ``group``."""
        self._require_secure()
        resources = (
            ([("TOPIC", topic, "LITERAL")] if topic else [])
            + ([("GROUP", group_prefix, "PREFIXED")] if group_prefix else [])
            + ([("GROUP", group, "LITERAL")] if group else [])
        )
        if not resources:
            raise ValueError("grant() needs topic=, group_prefix= or group=")
        if user not in self.credentials:
            raise ClusterError(
                f"the cluster in {self.dir} has no user {user!r} (it has {', '.join(self.credentials)}); "
                f"add it first: genesis cluster add-user {user}"
            )
        _admin.grant(self._client(), f"User:{user}", resources, list(operations), timeout)

    def add_user(self, user: str, password: str | None = None, timeout: float = 30.0) -> str:
        """Add a SCRAM-SHA-512 login to the running secure cluster; return its password (random unless given).

        Kafka stores the credential in its metadata log, so it works at once and after restarts;
        the password is also kept in ``credentials.json`` (0600), like those made at format time.
        The user may do nothing until :meth:`grant` allows it.
        """
        self._require_secure()
        if not _USER_NAME.fullmatch(user):
            raise ClusterError(f"user name {user!r}: use letters, digits, '.', '_' and '-' only")
        passwords = self.credentials
        if user in passwords:
            raise ClusterError(f"the cluster in {self.dir} already has a user {user!r}; choose another name")
        password = password if password is not None else secrets.token_urlsafe(18)
        if not password:
            raise ClusterError(f"the password of {user!r} is empty")
        _admin.add_scram_user(self._client(), user, password, timeout)
        _tls.write_private(
            self.dir / _CREDENTIALS, (json.dumps({**passwords, user: password}, indent=2) + "\n").encode()
        )
        return password

    # ------------------------------------------------------------------ start
    def start(self) -> LocalCluster:
        """Start the cluster; return once every broker is registered and an RF-replicated topic takes acks=all writes.

        A directory that holds this cluster stopped (``down --keep-data``) is restarted with its
        data; one that holds it running is left alone (``already_running`` becomes True).
        """
        state = read_state(self.dir)
        if state is not None:
            if state.secure != self.secure:
                raise ClusterError(
                    f"{self.dir} holds a {'secure' if state.secure else 'plaintext'} local cluster, "
                    f"not the requested {'secure' if self.secure else 'plaintext'} one; use another "
                    f"--dir, or remove it with `genesis cluster down --dir {self.dir}`"
                )
            if state.layout != self.layout:
                raise ClusterError(
                    f"{self.dir} holds a different local cluster ({state.brokers} brokers on port {state.port}, "
                    f"controllers on {state.controller_port}), not the requested {self.layout.brokers} on "
                    f"{self.layout.port}/{self.layout.controller_port}; use another --dir, or remove it with "
                    f"`genesis cluster down --dir {self.dir}`"
                )
            self._state = state
            running = self._alive_ids()
            if running:
                self.already_running = True
                log.info(
                    "the local Kafka cluster in %s is already running (brokers %s); nothing changed", self.dir, running
                )
                return self
        elif self.dir.exists() and any(self.dir.iterdir()):
            raise ClusterError(
                f"{self.dir} is not empty and holds no genesis cluster (no valid cluster.json); "
                "choose another --dir or an empty one"
            )
        java = _jars.java_executable()
        libs = Path(state.libs) if state and Path(state.libs).is_dir() else _jars.ensure_jars()
        _process.check_disk(self.dir)
        _process.check_ports_free(self.layout.all_ports + [p for lst in self.listeners for p in lst.ports])
        fresh = state is None
        try:
            if state is None:
                self._create(java, libs)
            else:
                state.libs = str(libs)
            for node_id in self.ids:
                self._spawn(java, node_id)
            self._wait_ready()
        except BaseException:
            self._abort(remove=fresh)
            raise
        return self

    def _create(self, java: str, libs: Path) -> None:
        """Write the configuration of every node and format their storage with one cluster id."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        (self.dir / "log4j2.properties").write_text(_config.log4j2_properties())
        (self.dir / "tools-log4j2.properties").write_text(_config.log4j2_properties(quiet=True))
        self._state = ClusterState(
            brokers=self.layout.brokers,
            port=self.layout.port,
            controller_port=self.layout.controller_port,  # type: ignore[arg-type]
            cluster_id=_config.new_cluster_id(),
            version=_jars.kafka_version(),
            heap=self.heap,
            libs=str(libs),
            secure=self.secure,
            jvm=self.jvm,
        )
        write_state(self.dir, self._state)
        security, scram_args = self._create_security() if self.secure else (None, [])
        commands = []
        for node_id in self.ids:
            node = self._node_dir(node_id)
            (node / "logs").mkdir(parents=True)
            props = _config.server_properties(
                self.layout, node_id, node / "data", security, self.listeners, self.properties
            )
            # a secure node's properties hold the admin password
            _tls.write_private(node / "server.properties", _config.render_properties(props).encode())
            options = [
                "-Xmx256m",
                f"-Dlog4j2.configurationFile={self.dir / 'tools-log4j2.properties'}",
                f"-Djava.io.tmpdir={self.dir / 'tmp'}",
                "-XX:TieredStopAtLevel=1",
                "-XX:-UsePerfData",
            ]
            commands.append(
                _process.java_command(
                    java,
                    libs,
                    options,
                    "kafka.tools.StorageTool",
                    ["format", "-t", self._state.cluster_id, "-c", str(node / "server.properties"), *scram_args],
                )
            )
        for node_id, (status, output) in zip(self.ids, _process.run_parallel(commands)):
            if status != 0:
                raise ClusterError(
                    f"formatting the storage of broker {node_id} failed (exit {status}):\n{output.strip()[-3000:]}"
                )

    def _create_security(self) -> tuple[_config.Security, list[str]]:
        """Certificates and passwords of a new secure cluster; the format arguments that create its users."""
        files = _tls.create(self.dir / _TLS_DIR)
        # token_urlsafe: letters, digits, '-' and '_', nothing Kafka's --add-scram parser would split on
        passwords = {user: secrets.token_urlsafe(18) for user in (_config.ADMIN_USER, *self.users)}
        _tls.write_private(self.dir / _CREDENTIALS, (json.dumps(passwords, indent=2) + "\n").encode())
        security = _config.Security(files.ca, files.broker, passwords[_config.ADMIN_USER])
        return security, _config.scram_format_arguments(passwords)

    def _spawn(self, java: str, node_id: int) -> None:
        state = self._state
        assert state is not None  # created or read by start() before any broker is spawned
        node = self._node_dir(node_id)
        options = _config.jvm_options(
            state.heap,
            log4j2_file=self.dir / "log4j2.properties",
            logs_dir=node / "logs",
            tmp_dir=self.dir / "tmp",
            jvm=state.jvm,
        )
        cmd = _process.java_command(java, Path(state.libs), options, "kafka.Kafka", [str(node / "server.properties")])
        state.pids[node_id] = _process.spawn(cmd, node / "stdout.log")
        write_state(self.dir, state)

    def _broker_log(self, node_id: int) -> str:
        """The end of a broker's logs, for error messages."""
        node = self._node_dir(node_id)
        parts = []
        for path in (node / "stdout.log", node / "logs" / "server.log"):
            text = _process.tail(path, 15)
            if text:
                parts.append(f"--- {path} (last lines) ---\n{text}")
        return "\n" + "\n".join(parts) if parts else f"\n(broker {node_id} wrote no log in {node})"

    def _check_starting(self, node_id: int) -> None:
        """:class:`ClusterError` with the broker's log if the JVM of a starting broker has exited."""
        if not _process.is_running(self._pid(node_id), self._marker(node_id)):
            log = self._broker_log(node_id)
            if "Address already in use" in log:  # taken by another program after the ports were checked
                raise PortInUseError(
                    f"broker {node_id} of the local cluster in {self.dir} could not bind its port: another "
                    f"program took it; start again (or choose --port){log}"
                )
            raise ClusterError(f"broker {node_id} of the local cluster in {self.dir} exited while starting{log}")

    def _wait_registered(self, node_ids: list[int], timeout: float) -> None:
        """Wait until the metadata lists ``node_ids``; fail early, with its log, if one of their JVMs dies."""

        def check() -> bool:
            for node_id in node_ids:
                self._check_starting(node_id)
            return set(node_ids) <= _admin.registered_brokers(self._client(), timeout=1.0)

        def missing_log() -> str:
            seen = _admin.registered_brokers(self._client(), timeout=1.0)
            late = [i for i in node_ids if i not in seen] or node_ids
            return f" (broker {late[0]} is not registered){self._broker_log(late[0])}"

        _admin.poll_until(f"brokers {node_ids} to register", check, timeout, on_timeout=missing_log)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        self._wait_registered(self.ids, self.start_timeout)
        left = max(10.0, deadline - time.monotonic())
        client = self._client()
        try:
            _topics.create_topic(
                client,
                _PROBE_TOPIC,
                self.layout.brokers,
                self.replication_factor,
                brokers=self.bootstrap_servers,
                timeout=left,
            )
            _admin.write_acks_all(
                self.bootstrap_servers,
                _PROBE_TOPIC,
                self.layout.brokers,
                max(10.0, deadline - time.monotonic()),
                self._admin_security(),
            )
            _topics.delete_topic(
                client, _PROBE_TOPIC, brokers=self.bootstrap_servers, timeout=max(10.0, deadline - time.monotonic())
            )
        except ClusterError as exc:
            raise ClusterError(
                f"the local cluster in {self.dir} registered its brokers but is not usable: {exc}{self._broker_log(1)}"
            ) from exc

    def _abort(self, remove: bool) -> None:
        """Undo a failed start: no JVM may survive it; a directory this call created is removed."""
        try:
            self._stop_nodes(self.ids, kill=True)
        finally:
            if remove:
                shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------- stop
    def stop(self, keep_data: bool = False, kill: bool = False) -> None:
        """Stop every JVM of the cluster (SIGTERM, SIGKILL after 30 s); delete the state dir unless ``keep_data``.

        ``kill`` sends SIGKILL at once: for a throwaway cluster whose data goes with it, where a
        controlled shutdown only costs time (up to 30 s when brokers wait on one another).
        Works from ``cluster.json``, so it also stops a cluster started by a process that has died.
        """
        self._state = read_state(self.dir) or self._state
        if self._state is None:
            return  # nothing of ours here: never delete a directory that is not a genesis cluster
        self._stop_nodes(self.ids, kill=kill and not keep_data)
        self._admin = None
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    down = stop

    def _stop_nodes(self, node_ids: list[int], kill: bool = False, grace: float = 30.0) -> None:
        if self._state is None:
            return
        pids = {i: self._state.pids[i] for i in node_ids if i in self._state.pids}
        _process.stop_processes(pids, {i: self._marker(i) for i in pids}, kill=kill, grace=grace)
        for node_id in pids:
            del self._state.pids[node_id]
        if self.dir.is_dir():
            write_state(self.dir, self._state)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if not self.already_running:  # never tear down a cluster someone else started
            self.stop(keep_data=self.keep_data)

    # ----------------------------------------------------------- one broker
    def stop_broker(self, node_id: int, kill: bool = False) -> None:
        """Stop one broker: SIGTERM (controlled shutdown) and wait up to 30 s, then SIGKILL; or SIGKILL at once."""
        self._check_id(node_id)
        self._stop_nodes([node_id], kill=kill)

    def start_broker(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a stopped broker again with its data; return once it is registered again."""
        self._check_id(node_id)
        if self._state is None:
            raise ClusterError(f"no local Kafka cluster in {self.dir}; start it first")
        restarted = not _process.is_running(self._pid(node_id), self._marker(node_id))
        if restarted:
            _process.wait_ports_free(self.layout.node_ports(node_id), timeout=min(timeout, 15.0))
            self._spawn(_jars.java_executable(), node_id)
            # A SIGKILLed broker stays listed until its session times out, so the cluster's metadata
            # alone could count the dead JVM's registration: wait for the new JVM to list itself.
            self._wait_answering(node_id, timeout)
        self._wait_registered([node_id], timeout)

    def _wait_answering(self, node_id: int, timeout: float) -> None:
        """Wait until broker ``node_id`` answers on its own port with metadata that lists it (unfenced)."""
        own = f"{_config.HOST}:{self.layout.client_port(node_id)}"

        def check() -> bool:
            self._check_starting(node_id)
            # a fresh client each time: its only known broker is node_id, so node_id answers
            return node_id in _admin.registered_brokers(_admin.admin(own, self._admin_security()), timeout=1.0)

        _admin.poll_until(
            f"broker {node_id} to answer on {own}", check, timeout, on_timeout=lambda: self._broker_log(node_id)
        )

    def pause_broker(self, node_id: int) -> None:
        """Freeze a broker's JVM (SIGSTOP): it stops answering without closing its sockets."""
        self._signal(node_id, signal.SIGSTOP)

    def resume_broker(self, node_id: int) -> None:
        """Continue a broker frozen by :meth:`pause_broker` (SIGCONT)."""
        self._signal(node_id, signal.SIGCONT)

    def _signal(self, node_id: int, sig: signal.Signals) -> None:
        self._check_id(node_id)
        pid = self._pid(node_id)
        if not _process.is_running(pid, self._marker(node_id)):
            raise ClusterError(f"broker {node_id} is not running")
        _process.send_signal(pid, sig)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- observe
    def status(self) -> ClusterStatus:
        """Per broker: id, pid, ports, whether its JVM is alive and whether it is registered; and the topics."""
        if self._state is None:
            self._state = read_state(self.dir)
        if self._state is None:
            raise ClusterError(f"no local Kafka cluster in {self.dir}")
        alive = set(self._alive_ids())
        registered = _admin.registered_brokers(self._client()) if alive else set()
        topics: dict[str, int] = {}
        if registered:
            try:
                topics = _topics.topic_names(self._client())
            except Exception:  # a cluster without quorum still gets its process table reported
                topics = {}
        brokers = [
            BrokerStatus(
                i,
                self._pid(i) if i in alive else None,
                self.layout.client_port(i),
                self.layout.controller_port_of(i),
                i in alive,
                i in registered,
            )
            for i in self.ids
        ]
        return ClusterStatus(
            str(self.dir),
            self._state.cluster_id,
            self._state.version,
            self.bootstrap_servers,
            brokers,
            topics,
            self.secure,
        )

    def pids(self) -> dict[int, int]:
        """Node id -> pid of every running JVM of this cluster."""
        return {i: self._pid(i) for i in self._alive_ids()}  # type: ignore[misc]

    def leader(self, topic: str, partition: int) -> int:
        """Id of the broker leading ``topic[partition]`` (-1 while it has none)."""
        return _admin.partition(self._client(), topic, partition).leader

    def in_sync_replicas(self, topic: str, partition: int) -> list[int]:
        """Ids of the brokers in the ISR of ``topic[partition]``."""
        return sorted(_admin.partition(self._client(), topic, partition).isrs)

    def create_topic(
        self,
        name: str,
        partitions: int = 6,
        replication_factor: int | None = None,
        config: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Create ``name`` (idempotent) with RF ``replication_factor`` (default min(3, N)); wait until usable."""
        _topics.create_topic(
            self._client(),
            name,
            partitions,
            replication_factor or self.replication_factor,
            config,
            brokers=self.bootstrap_servers,
            timeout=timeout,
        )

    def delete_topic(self, name: str, timeout: float = 60.0) -> None:
        """Delete ``name`` if it exists; wait until the metadata no longer lists it."""
        _topics.delete_topic(self._client(), name, brokers=self.bootstrap_servers, timeout=timeout)

    def committed(self, topic: str, group: str) -> dict[int, int]:
        """Partition -> offset committed by ``group`` on ``topic`` (partitions without a commit left out)."""
        spec = StreamSpec.for_brokers(self.bootstrap_servers)
        return _topics.committed(spec, topic, group, auth=self._admin_security())

    def __repr__(self) -> str:
        return (
            f"LocalCluster(dir={str(self.dir)!r}, brokers={self.layout.brokers}, port={self.layout.port}"
            f"{', secure=True' if self.secure else ''})"
        )
