"""``genesis topics URL``: the topics of a cluster with their partitions, message counts and
retention; with a group in the URL (``kafka://group@host/topic``), what that group has
committed and how far behind it is (lag) on every partition.

``genesis topics create URL`` makes the URL's topics (the cluster's default partitions and
replication unless told), ``genesis topics delete URL`` removes them (after asking, unless ``--yes``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, replace
from typing import Any

from .. import _topics
from .._topics import TopicInfo
from .._urls import StreamSpec, parse_url
from ..errors import ConfigError

EXAMPLES = """examples:
  genesis topics kafka://localhost/                  # every topic of the cluster
  genesis topics kafka://localhost/small,medium      # just these
  genesis topics kafka://mygroup@localhost/small     # and the lag of consumer group mygroup
  genesis topics kafka://localhost/ --json
  genesis topics create kafka://localhost/mytopic --partitions 6 --retention 7d
  genesis topics create kafka://localhost/mytopic --if-not-exists --config max.message.bytes=10485760
  genesis topics delete kafka://localhost/mytopic --yes
"""

_TIMEOUT = 10.0
_ALL = "__all_topics__"  # stands in for "no topic" so the URL grammar accepts kafka://host/
_UNITS = {"ms": 1, "s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


class _AnyWord:
    """Choices that admit any first word: one that names no action is the URL of a listing."""

    def __contains__(self, word: object) -> bool:
        return True


class _ListUnlessNamed(argparse._SubParsersAction):
    """``genesis topics URL`` lists; ``create`` or ``delete`` as the first word is that action."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyWord()  # type: ignore[assignment]  # argparse checks the first word against it

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values and values[0] not in self._name_parser_map:
            values = ["list", *values]
        super().__call__(parser, namespace, values, option_string)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "topics",
        help="topics, partitions, message counts, retention; a group's lag; create and delete topics",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.register("action", "parsers", _ListUnlessNamed)
    actions = p.add_subparsers(dest="topics_command", metavar="[create|delete] URL")
    actions.required = True

    listing = actions.add_parser(
        "list", help="(the default) list topics", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    listing.add_argument("url", help="kafka://[group@]host[:port]/[topic[,topic2]] (no topic: all of them)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument("--partitions", action="store_true", help="one row per partition, not per topic")
    listing.set_defaults(func=run)

    create = actions.add_parser(
        "create", help="create the URL's topics", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    create.add_argument("url", help="kafka://host[:port]/topic[,topic2]")
    create.add_argument("--partitions", type=int, default=-1, metavar="N", help="partitions (default: the cluster's)")
    create.add_argument(
        "--replication", type=int, default=-1, metavar="N", help="replicas of each partition (default: the cluster's)"
    )
    create.add_argument(
        "--retention", type=parse_duration, metavar="TIME", help="how long messages stay: 7d, 12h, 30min, forever"
    )
    create.add_argument(
        "--config",
        action="append",
        default=[],
        type=parse_setting,
        metavar="KEY=VALUE",
        help="a topic setting (repeatable)",
    )
    create.add_argument(
        "--if-not-exists", action="store_true", help="a topic that exists already is fine (kept as it is)"
    )
    create.set_defaults(func=run_create)

    delete = actions.add_parser(
        "delete",
        help="delete the URL's topics and their messages",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    delete.add_argument("url", help="kafka://host[:port]/topic[,topic2]")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    delete.set_defaults(func=run_delete)


def parse_duration(text: str) -> int:
    """``7d``, ``12h``, ``30min``, ``90s``, ``500ms`` (or ``forever``) -> milliseconds (-1: forever)."""
    if text.strip().lower() in ("forever", "-1"):
        return -1
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h, 30min, 90s or forever")
    return round(float(match[1]) * _UNITS[match[2]])


def parse_setting(text: str) -> tuple[str, str]:
    """``key=value`` -> ``(key, value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. retention.bytes=1073741824")
    return key.strip(), value.strip()


def _parse(url: str) -> StreamSpec:
    """The URL's StreamSpec; ``kafka://host`` and ``kafka://host/`` (no topic) mean every topic."""
    rest = url.partition("://")[2]
    if "/" not in rest or rest.endswith("/"):
        return parse_url(f"{url.rstrip('/')}/{_ALL}")
    return parse_url(url)


def describe(url: str, timeout: float = _TIMEOUT) -> list[TopicInfo]:
    """What ``genesis topics`` prints, as data: user topics (or those of the URL) and the URL group's lag."""
    spec = _parse(url)
    return _topics.describe(replace(spec, topics=tuple(t for t in spec.topics if t != _ALL)), timeout=timeout)


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


def _named_topics(url: str) -> StreamSpec:
    spec = parse_url(url)
    if any(t.startswith("^") for t in spec.topics):
        raise ConfigError("name the topics in the URL, not a pattern")
    return spec


def run_create(args: argparse.Namespace) -> int:
    spec = _named_topics(args.url)
    config = dict(args.config)
    if args.retention is not None:
        config["retention.ms"] = str(args.retention)
    if args.partitions == 0 or args.partitions < -1 or args.replication == 0 or args.replication < -1:
        raise ConfigError("--partitions and --replication must be positive")
    for name, created in _topics.create(
        spec,
        partitions=args.partitions,
        replication_factor=args.replication,
        config=config,
        exist_ok=args.if_not_exists,
    ):
        print(f"created topic {name!r}" if created else f"topic {name!r} exists; left as it is")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    spec = _named_topics(args.url)
    infos = _topics.describe(replace(spec, group=None))  # they exist (or a clear error), and what they hold
    if not args.yes:
        what = ", ".join(f"{t.name!r} ({t.messages:,} messages)" for t in infos)
        if not sys.stdin.isatty():
            raise ConfigError(f"deleting {what} needs a yes: pass --yes (there is no terminal to ask on)")
        answer = input(f"delete {what} on {spec.bootstrap_servers}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    for info in infos:
        _topics.delete(spec, info.name)
        print(f"deleted topic {info.name!r}")
    return 0
