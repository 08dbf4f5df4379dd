"""``genesis inject URL --rate 10000/40s``: send LSST-sized alerts at the survey's pace (see genesis.inject).

Exits 0 when every alert was delivered, even if the schedule slipped (the report says so),
1 when deliveries failed or the run was refused (missing topic, too little disk).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

EXAMPLES = """examples:
  genesis inject kafka://localhost/lsst --visits 3                   # 10,000 alerts per 40 s, evenly
  genesis inject kafka://localhost/lsst --rate 10000/4s --duration 60  # 10x the LSST rate
  genesis inject kafka://localhost/lsst --visits 2 --burst 5         # each visit within 5 s, as Rubin does
  genesis inject kafka://localhost/lsst --format lsst --visits 1    # Rubin's newest schema (genesis-streaming[rubin])
  genesis inject kafka://localhost/lsst --format lsst --schema-version 10.0 --visits 1
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inject",
        help="send LSST-sized alerts into a topic at a given rate",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="kafka://host[:port]/topic (an existing topic, e.g. the demo's lsst)")
    p.add_argument("--rate", default="10000/40s", help="ALERTS/SECONDS per visit (default 10000/40s, LSST's average)")
    how_long = p.add_mutually_exclusive_group(required=True)
    how_long.add_argument("--visits", type=int, help="number of visits to send")
    how_long.add_argument("--duration", type=float, help="seconds to send for")
    p.add_argument(
        "--burst",
        type=float,
        default=None,
        help="send each visit within this many seconds, then wait for the next (default: evenly paced)",
    )
    p.add_argument(
        "--format",
        choices=("ztf", "lsst"),
        default="ztf",
        help="ztf: Avro container with schema; lsst: Rubin's Confluent wire format (default ztf)",
    )
    p.add_argument(
        "--schema-version",
        metavar="X.Y",
        help="lsst: Rubin's schema to send, e.g. 10.0 (default: the newest of lsst-alert-packet, "
        "the extra genesis-streaming[rubin]); real Rubin alerts are converted to it",
    )
    p.add_argument(
        "--payloads",
        "--pool",
        type=int,
        default=256,
        help="distinct pre-encoded payloads (default 256; --pool: older name)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="seconds a send may lag its planned time and still count as on schedule (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inject import inject

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C: stop, flush, report
    try:
        print("building the payloads...", file=sys.stderr)
        report = inject(
            args.url,
            args.rate,
            visits=args.visits,
            duration=args.duration,
            burst=args.burst,
            format=args.format,
            schema_version=args.schema_version,
            payloads=args.payloads,
            tolerance=args.tolerance,
            stop=stop,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    print(json.dumps(report.to_dict()) if args.json else report.summary())
    return 0 if report.ok else 1
