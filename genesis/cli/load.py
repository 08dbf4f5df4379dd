"""``genesis load URL PATH...``: write alert files into a topic, one alert per message."""

from __future__ import annotations

import argparse
import time

from .._files import alert_files, one_alert_messages

EXAMPLES = """examples:
  genesis load kafka://localhost/small ../shared/data/ztf/raw
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
    p.add_argument("paths", nargs="+", metavar="PATH", help=".avro files or directories")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..streaming import open as gs_open

    t0 = time.monotonic()
    n = 0
    with gs_open(args.url, "w") as writer:
        for path in alert_files(args.paths):
            for message in one_alert_messages(path):
                writer.write(message)
                n += 1
    print(f"loaded {n} alerts into {args.url} in {time.monotonic() - t0:.1f} s")
    return 0
