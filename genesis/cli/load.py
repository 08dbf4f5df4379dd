"""``genesis load URL PATH...``: write alert files into a topic, one alert per message.

PATH is an ``.avro`` file, a directory (searched recursively) or a ``.tar``/``.tar.gz``
archive of them, as ``gs.open("file://...")`` reads them. A file holding several alerts
is split into one Avro container per alert; a one-alert file is sent byte for byte.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError, UnknownTopicError

EXAMPLES = """examples:
  genesis load kafka://localhost/small ../shared/data/ztf/raw
  genesis load kafka://localhost/mytopic ../shared/data/ztf/raw --create   # makes the topic if needed
  genesis load kafka://localhost/mytopic alert1.avro alert2.avro
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "load",
        help="write alert files (or directories of them) into a topic",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="kafka://host[:port]/topic")
    p.add_argument("paths", nargs="+", metavar="PATH", type=Path, help=".avro files, directories or tarballs")
    p.add_argument(
        "--create",
        action="store_true",
        help="create the topic first if it does not exist (the cluster's default partitions and replication)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._codecs import Decoder
    from .._sources.archive import archive_files
    from ..streaming import open as gs_open

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    if args.create:
        from .. import _topics
        from .._urls import parse_url

        for name, created in _topics.create(parse_url(args.url), exist_ok=True):
            if created:
                print(f"created topic {name!r}")
    t0 = time.monotonic()
    n = 0
    decoder = Decoder()
    try:
        writer = gs_open(args.url, "w")
    except UnknownTopicError as exc:
        if args.create:
            raise
        raise UnknownTopicError(
            f"{exc} To create it as it loads: genesis load {args.url} ... --create",
            topic=exc.topic,
            similar=exc.similar,
            brokers=exc.brokers,
        ) from None
    with writer:
        for path in args.paths:
            for _, data in archive_files(path):
                for message in decoder.split(data):
                    writer.write(message)
                    n += 1
    print(f"loaded {n} alerts into {args.url} in {time.monotonic() - t0:.1f} s")
    return 0
