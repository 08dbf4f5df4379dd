"""``genesis cluster``: run a real local Apache Kafka cluster (KRaft, no Docker) — a thin layer over LocalCluster."""

from __future__ import annotations

import argparse
import json
import time

from ..cluster import DEFAULT_JVM, JVM_PROFILES, LocalCluster, default_dir, ensure_jars
from ..errors import ConfigError

EXAMPLES = """\
examples:
  genesis cluster up                      3 brokers on 127.0.0.1:9092-9094 (controllers 10092-10094)
  genesis cluster up --demo               ... and create the demo topics small, medium and lsst
  genesis cluster up --brokers 1 --port 19092 --dir /tmp/kafka1
  genesis cluster up --jvm fast-start     C1-only brokers: start sooner, cost more CPU once warm
  genesis cluster up --secure --brokers 1 SASL_SSL + SCRAM-SHA-512 + ACLs; users admin, alice, bob
  genesis cluster add-user carol          a new login on the secure cluster; prints its password once
  genesis cluster grant carol --topic small --group-prefix carol-     carol may read small
  genesis cluster status
  genesis cluster stop-broker 2 --kill    SIGKILL broker 2 (chaos testing)
  genesis cluster start-broker 2          it rejoins with its data
  genesis cluster down                    stop every broker and delete the data
  genesis cluster down --keep-data        stop; a later `up` resumes with the same topics
  genesis cluster fetch                   only fetch Kafka's jars from Maven Central (make setup)

The cluster's state (data, logs, cluster.json) lives in --dir, default: {default}.
Kafka's jars are fetched once with `mvn` into the genesis cache; set KAFKA_HOME to use an
unpacked Kafka release instead. Needs java 17+ (and mvn for the first fetch).
"""


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", metavar="PATH", default=None, help=f"state directory of the cluster (default: {default_dir()})"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``genesis cluster`` and its subcommands."""
    parser = subparsers.add_parser(
        "cluster",
        help="run a local multi-broker Kafka cluster (no Docker)",
        description="Run a real Apache Kafka cluster (KRaft, N brokers) on this machine, from Kafka's "
        "own jars on Maven Central.",
        epilog=EXAMPLES.format(default=default_dir()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cluster_command", metavar="ACTION")
    sub.required = True

    up = sub.add_parser(
        "up",
        help="start the cluster; return when it accepts acks=all writes",
        epilog=EXAMPLES.format(default=default_dir()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--brokers", type=int, default=3, metavar="N", help="number of brokers (default: 3)")
    up.add_argument(
        "--port",
        type=int,
        default=9092,
        help="client port of broker 1; broker i listens on PORT+i-1 and its controller on "
        "PORT+1000+i-1 (default: 9092)",
    )
    up.add_argument("--heap", default="384m", help="maximum Java heap per broker (default: 384m)")
    up.add_argument(
        "--jvm",
        choices=list(JVM_PROFILES),
        default=DEFAULT_JVM,
        help=f"the brokers' JVM profile (default: {DEFAULT_JVM}: the least broker CPU under sustained load, "
        "measured by bench/brokers.py; fast-start: C1 only, starts sooner, ~1.5x the CPU per MB)",
    )
    _add_dir(up)
    up.add_argument(
        "--demo",
        action="store_true",
        help="also create the demo topics: small (100 alerts), medium (20,000), lsst (empty)",
    )
    up.add_argument(
        "--secure",
        action="store_true",
        help="clients log in with SASL_SSL and SCRAM-SHA-512 and ACLs apply; users admin (super "
        "user), alice and bob get random passwords, kept with a CA certificate in --dir",
    )
    up.set_defaults(func=_up)

    status = sub.add_parser("status", help="show brokers (pid, port, alive, registered) and topics")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _add_dir(status)
    status.set_defaults(func=_status)

    stop = sub.add_parser("stop-broker", help="stop one broker (SIGTERM; --kill: SIGKILL)")
    stop.add_argument("id", type=int, help="broker id, 1..N")
    stop.add_argument("--kill", action="store_true", help="SIGKILL instead of a controlled shutdown")
    _add_dir(stop)
    stop.set_defaults(func=_stop_broker)

    start = sub.add_parser("start-broker", help="start a stopped broker again (with its data)")
    start.add_argument("id", type=int, help="broker id, 1..N")
    _add_dir(start)
    start.set_defaults(func=_start_broker)

    down = sub.add_parser("down", help="stop every broker and delete the cluster's data")
    down.add_argument("--keep-data", action="store_true", help="keep the data: a later `up` resumes it")
    _add_dir(down)
    down.set_defaults(func=_down)

    fetch = sub.add_parser("fetch", help="fetch Kafka's jars from Maven Central (once) and print where")
    fetch.set_defaults(func=_fetch)

    add_user = sub.add_parser("add-user", help="add a SCRAM login to the running --secure cluster")
    add_user.add_argument("name", help="the user name (letters, digits, '.', '_', '-')")
    add_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (default: a random one, printed)"
    )
    _add_dir(add_user)
    add_user.set_defaults(func=_add_user)

    grant = sub.add_parser("grant", help="allow a user of the --secure cluster to read a topic (ACLs)")
    grant.add_argument("user", help="a user of the cluster (genesis cluster status lists them)")
    grant.add_argument("--topic", required=True, metavar="T", help="the topic the user may use")
    grant.add_argument(
        "--group-prefix",
        metavar="P",
        help="also the consumer groups whose id starts with P (genesis' random ones are '<user>-...')",
    )
    grant.add_argument(
        "--ops",
        default="read,describe",
        type=lambda text: [op.strip().upper() for op in text.split(",") if op.strip()],
        metavar="OPS",
        help="ACL operations, comma-separated (default: read,describe; write lets the user send)",
    )
    _add_dir(grant)
    grant.set_defaults(func=_grant)


def _url_hint(port: int) -> str:
    return "kafka://localhost/<topic>" if port == 9092 else f"kafka://localhost:{port}/<topic>"


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.demo and args.secure:
        raise ConfigError("--demo cannot be combined with --secure yet: start a plain cluster for the demo")
    cluster = LocalCluster(
        args.dir, brokers=args.brokers, port=args.port, heap=args.heap, secure=args.secure, jvm=args.jvm
    )
    print(f"starting {args.brokers} Kafka broker(s) in {cluster.dir} ...", flush=True)
    cluster.start()
    if cluster.already_running:
        print(f"the cluster in {cluster.dir} is already running; nothing changed")
    else:
        print(f"cluster ready in {time.monotonic() - started:.1f} s")
    if args.demo:
        from ..demo import create_demo_topics

        create_demo_topics(cluster.bootstrap_servers, cluster.replication_factor)
    print(f"bootstrap servers: {cluster.bootstrap_servers}")
    print(f"stream URL:        {_url_hint(args.port)}   (or {cluster.url('<topic>')})")
    if cluster.secure:
        _print_secure(cluster)
    print(f"stop it with:      genesis cluster down{'' if args.dir is None else f' --dir {args.dir}'}")
    return 0


def _print_secure(cluster: LocalCluster) -> None:
    """Where a secure cluster's logins are, and how to use them (passwords stay in the file)."""
    first = cluster.bootstrap_servers.split(",")[0]
    print(
        f"security:          SASL_SSL, SCRAM-SHA-512, ACLs; users {', '.join(cluster.credentials)} "
        f"(admin is a super user)"
    )
    print(f"passwords:         {cluster.dir / 'credentials.json'} (0600)")
    print(f"CA certificate:    {cluster.ca_file}")
    print(f"save a login:      genesis auth add {first} --username alice --ca {cluster.ca_file}")


def _status(args: argparse.Namespace) -> int:
    status = LocalCluster.attach(args.dir, require_running=False).status()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    print(f"cluster {status.cluster_id} (Kafka {status.version}) in {status.dir}")
    print(f"bootstrap servers: {status.bootstrap_servers}")
    if status.secure:
        print("security:          SASL_SSL, SCRAM-SHA-512, ACLs (genesis cluster up --secure)")
    print(f"{'broker':>6} {'pid':>8} {'port':>6} {'controller':>10}  state")
    for b in status.brokers:
        state = "running, registered" if b.registered else ("running, not registered" if b.alive else "stopped")
        print(f"{b.id:>6} {b.pid or '-':>8} {b.port:>6} {b.controller_port:>10}  {state}")
    if status.topics:
        print("topics: " + ", ".join(f"{name} ({n} partitions)" for name, n in status.topics.items()))
    else:
        print("topics: none")
    return 0


def _stop_broker(args: argparse.Namespace) -> int:
    LocalCluster.attach(args.dir).stop_broker(args.id, kill=args.kill)
    print(f"broker {args.id} {'killed' if args.kill else 'stopped'}")
    return 0


def _start_broker(args: argparse.Namespace) -> int:
    LocalCluster.attach(args.dir, require_running=False).start_broker(args.id)
    print(f"broker {args.id} started and registered")
    return 0


def _down(args: argparse.Namespace) -> int:
    cluster = LocalCluster.attach(args.dir, require_running=False)
    cluster.stop(keep_data=args.keep_data)
    print(f"cluster in {cluster.dir} stopped" + (" (data kept)" if args.keep_data else " and removed"))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    print(ensure_jars())
    return 0


def _add_user(args: argparse.Namespace) -> int:
    import sys

    cluster = LocalCluster.attach(args.dir)
    given = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    password = cluster.add_user(args.name, given)
    print(f"added user {args.name!r} to the cluster in {cluster.dir} (kept in {cluster.dir / 'credentials.json'})")
    if given is None:
        print(f"password:          {password}   (shown once)")
    print(f"give it access:    genesis cluster grant {args.name} --topic TOPIC --group-prefix {args.name}-")
    first = cluster.bootstrap_servers.split(",")[0]
    print(f"save the login:    genesis auth add {first} --username {args.name} --ca {cluster.ca_file}")
    return 0


def _grant(args: argparse.Namespace) -> int:
    cluster = LocalCluster.attach(args.dir)
    cluster.grant(args.user, topic=args.topic, group_prefix=args.group_prefix, operations=args.ops)
    groups = f" and the groups {args.group_prefix}*" if args.group_prefix else ""
    print(f"{args.user} may now {','.join(args.ops).lower()} topic {args.topic!r}{groups}")
    return 0
