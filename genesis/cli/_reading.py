"""Command-line options of the commands that read a stream, defined once: where to start, when to
stop, and where wire-format schemas come from (``genesis consume``, ``genesis query``)."""

from __future__ import annotations

import argparse
import re
from datetime import datetime


def parse_start_at(text: str) -> str | int | datetime:
    """``earliest``/``latest``, ``-N``, or an ISO 8601 time (a trailing ``Z`` allowed)."""
    if text in ("earliest", "latest"):
        return text
    if re.fullmatch(r"-\d+", text):
        return int(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not earliest, latest, -N or an ISO time like 2024-05-01T06:00:00"
        ) from None


def start_at_text(value: str | int | datetime) -> str:
    """``--start-at``'s value as a command line gives it again (for the processes of ``--processes N``)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def add_start_at(p: argparse.ArgumentParser) -> None:
    """``--start-at WHEN`` (default ``latest``)."""
    p.add_argument(
        "--start-at",
        default="latest",
        type=parse_start_at,
        metavar="WHEN",
        help="earliest | latest (default; where the group has no committed offset) | "
        "an ISO time (UTC unless it says) | -N (the last N of every partition)",
    )


def add_end(p: argparse.ArgumentParser) -> None:
    """``--timeout S`` and ``--until-eos``; :func:`timeout` gives the timeout they mean together."""
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="stop after S seconds without a new alert (default: wait forever, or 10 s with --until-eos)",
    )
    p.add_argument("--until-eos", action="store_true", help="stop once caught up with the end of every partition")


def timeout(args: argparse.Namespace) -> float | None:
    """``--timeout``, or 10 s with ``--until-eos`` (a partition that never reports its end must not hang)."""
    return args.timeout if args.timeout is not None else (10.0 if args.until_eos else None)


def add_schemas(p: argparse.ArgumentParser) -> None:
    """``--schemas DIR`` and ``--schema-registry URL`` for Confluent wire-format alerts."""
    p.add_argument("--schemas", metavar="DIR", help="directory of .avsc files for Confluent wire-format (LSST) alerts")
    p.add_argument("--schema-registry", metavar="URL", help="Confluent schema registry for wire-format alerts")
