"""``genesis topics URL``: the topics of a cluster with their partitions, message counts and
retention; with a group in the URL (``kafka://group@host/topic``), what that group has
committed and how far behind it is (lag) on every partition."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import ConfigError

EXAMPLES = """examples:
  genesis topics kafka://localhost/                  # every topic of the cluster
  genesis topics kafka://localhost/small,medium      # just these
  genesis topics kafka://mygroup@localhost/small     # and the lag of consumer group mygroup
  genesis topics kafka://localhost/ --json
"""

_TIMEOUT = 10.0
_ALL = "__all_topics__"  # stands in for "no topic" so the URL grammar accepts kafka://host/


@dataclass
class PartitionInfo:
    partition: int
    low: int
    high: int
    leader: int
    replicas: list[int]
    committed: int | None = None  #: the group's committed offset (None: nothing committed)
    lag: int | None = None  #: messages after the committed offset (all of them without one)

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass
class TopicInfo:
    name: str
    partitions: list[PartitionInfo]
    retention_ms: int | None = None
    retention_bytes: int | None = None
    messages: int = 0
    lag: int | None = None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "topics",
        help="topics, partitions, message counts, retention; a group's lag",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="kafka://[group@]host[:port]/[topic[,topic2]] (no topic: all of them)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--partitions", action="store_true", help="one row per partition, not per topic")
    p.set_defaults(func=run)


def _parse(url: str):
    """The URL's StreamSpec; ``kafka://host`` and ``kafka://host/`` (no topic) mean every topic."""
    from .._urls import parse_url

    rest = url.partition("://")[2]
    if "/" not in rest or rest.endswith("/"):
        return parse_url(f"{url.rstrip('/')}/{_ALL}")
    return parse_url(url)


def describe(url: str, timeout: float = _TIMEOUT) -> list[TopicInfo]:
    """What ``genesis topics`` prints, as data: user topics (or those of the URL) and the URL group's lag."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient

    from .._kafka import ErrorLog, base_config, connect, translate

    spec = _parse(url)
    wanted = [t for t in spec.topics if t != _ALL]
    if any(t.startswith("^") for t in wanted):
        raise ConfigError("genesis topics takes topic names, not patterns")
    errors = ErrorLog(spec.bootstrap_servers)
    conf = base_config(spec, error_log=errors)
    consumer = Consumer({**conf, "group.id": spec.group or "genesis-topics", "enable.auto.commit": False})
    try:
        meta = connect(consumer.list_topics, replace(spec, topics=tuple(wanted)), errors, timeout)
        names = wanted or sorted(t for t in meta.topics if not t.startswith("__"))
        admin = AdminClient({k: v for k, v in conf.items() if k != "error_cb"})
        configs = _retention(admin, names, timeout)
        infos = []
        for name in names:
            parts = []
            for p in sorted(meta.topics[name].partitions.values(), key=lambda p: p.id):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p.id), timeout=timeout)
                parts.append(PartitionInfo(p.id, low, high, p.leader, list(p.replicas)))
            if spec.group:
                _add_lag(consumer, name, parts, timeout)
            info = TopicInfo(name, parts, *configs.get(name, (None, None)))
            info.messages = sum(p.messages for p in parts)
            if spec.group:
                info.lag = sum(p.lag or 0 for p in parts)
            infos.append(info)
        return infos
    except KafkaException as exc:
        raise translate(exc, brokers=spec.bootstrap_servers) from None
    finally:
        consumer.close()


def _retention(admin: Any, names: list[str], timeout: float) -> dict[str, tuple[int | None, int | None]]:
    from confluent_kafka.admin import ConfigResource

    if not names:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names], request_timeout=timeout
    )
    out = {}
    for resource, future in futures.items():
        entries = future.result(timeout=timeout)

        def number(key: str) -> int | None:
            entry = entries.get(key)
            return int(entry.value) if entry is not None and entry.value is not None else None

        out[resource.name] = (number("retention.ms"), number("retention.bytes"))
    return out


def _add_lag(consumer: Any, topic: str, parts: list[PartitionInfo], timeout: float) -> None:
    from confluent_kafka import TopicPartition

    committed = consumer.committed([TopicPartition(topic, p.partition) for p in parts], timeout=timeout)
    for p, tp in zip(parts, committed):
        p.committed = tp.offset if tp.offset >= 0 else None
        p.lag = p.high - max(p.committed, p.low) if p.committed is not None else p.messages


def _duration(ms: int | None) -> str:
    if ms is None:
        return "?"
    if ms < 0:
        return "forever"
    for unit, size in (("d", 86400000), ("h", 3600000), ("min", 60000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms / 1000:g} s"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 0:
        return "unlimited"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows
    )


def render(infos: list[TopicInfo], group: str | None, per_partition: bool) -> str:
    """The table ``genesis topics`` prints."""
    if not infos:
        return "no topics"
    if per_partition:
        head = ["topic", "partition", "leader", "replicas", "first", "next", "messages"]
        head += ["committed", "lag"] if group else []
        rows = [head]
        for t in infos:
            for p in t.partitions:
                row = [
                    t.name,
                    str(p.partition),
                    str(p.leader),
                    ",".join(map(str, p.replicas)),
                    str(p.low),
                    str(p.high),
                    f"{p.messages:,}",
                ]
                if group:
                    row += ["-" if p.committed is None else str(p.committed), f"{p.lag:,}"]
                rows.append(row)
    else:
        head = ["topic", "partitions", "replicas", "messages", "retention", "retention.bytes"]
        head += ["committed", "lag"] if group else []
        rows = [head]
        for t in infos:
            row = [
                t.name,
                str(len(t.partitions)),
                str(max((len(p.replicas) for p in t.partitions), default=0)),
                f"{t.messages:,}",
                _duration(t.retention_ms),
                _size(t.retention_bytes),
            ]
            if group:
                committed = [p for p in t.partitions if p.committed is not None]
                row += [f"{len(committed)}/{len(t.partitions)} partitions", f"{t.lag:,}"]
            rows.append(row)
    title = f"consumer group {group!r}\n" if group else ""
    return title + _table(rows)


def run(args: argparse.Namespace) -> int:
    spec = _parse(args.url)
    infos = describe(args.url)
    if args.json:
        print(json.dumps({"group": spec.group, "topics": [asdict(t) for t in infos]}, indent=2))
    else:
        print(render(infos, spec.group, args.partitions))
    return 0
