"""``genesis pipe IN_URL OUT_URL``: filter one topic into another, exactly once (Kafka transactions).

Every input alert's output (the alert, what the filter returned, or nothing) appears in OUT
exactly once to readers with isolation.level=read_committed (genesis' readers; set it for Java
and Spark ones), whatever crashes: outputs and input offsets are committed in one transaction.
IN_URL names the consumer group whose offsets remember the progress. With --processes N, N
processes of that group share the partitions; each has its own slot (transactional id), so a
restarted one fences its predecessor. Ctrl-C or SIGTERM: finish the current message, commit, stop.

An http(s):// OUT_URL makes it a webhook: each output is POSTed as JSON (or a Slack message), at
least once (the group commits only what a 2xx acknowledged), retried on 5xx/408/429/timeouts;
other refusals go to --dead-letter or stop the pipe naming the alert.
"""

from __future__ import annotations

import argparse
import json
import signal
from dataclasses import asdict
from typing import Any

from .._loader import load_callable
from .._urls import is_webhook
from ..errors import ConfigError
from . import _notes as notes
from . import _webhook as webhook
from ._processes import child_options, run_slots
from ._reading import parse_start_at, start_at_text

EXAMPLES = """examples:
  genesis pipe kafka://asteroids@localhost/medium kafka://localhost/asteroids \\
      --filter genesis.filters:filter_asteroids --start-at earliest --until-eos --create
  genesis pipe kafka://tr@localhost/lsst kafka://localhost/transients --filter mymodule:is_transient \\
      --processes 2
  genesis pipe kafka://notify@localhost/ztf https://hooks.slack.com/services/T0/B0/XXXX \\
      --filter genesis.filters:filter_asteroids --format slack --link 'https://alerce.online/object/{objectId}'
  genesis pipe kafka://svc@localhost/lsst https://example.org/alerts --header 'Authorization: Bearer TOKEN' \\
      --dead-letter kafka://localhost/refused
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipe",
        help="filter one topic into another, exactly once",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("in_url", metavar="IN_URL", help="kafka://GROUP@host[:port]/topic (the group is required)")
    p.add_argument("out_url", metavar="OUT_URL", help="kafka://host[:port]/topic, or an http(s):// webhook")
    p.add_argument("--filter", metavar="MODULE:FUNCTION", help="keep (or transform) alerts with FUNCTION(alert)")
    p.add_argument(
        "--start-at",
        default="latest",
        type=parse_start_at,
        metavar="WHEN",
        help="where a group with nothing committed starts: earliest | latest (default) | ISO time | -N",
    )
    p.add_argument("--until-eos", action="store_true", help="stop once caught up with every input partition")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds without input")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N input alerts (per process)")
    p.add_argument("--processes", type=int, default=1, metavar="N", help="N pipe processes of the group")
    p.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)  # set for each of --processes
    p.add_argument("--create", action="store_true", help="create OUT if it does not exist")
    p.add_argument("--schemas", metavar="DIR", help="directory of .avsc files for Confluent wire-format alerts")
    p.add_argument("--json", action="store_true", help="print the pipe's statistics as JSON")
    webhook.add_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if args.processes > 1:
        return _processes(args)
    from ..pipe import PipeStats, pipe

    options: dict[str, Any] = {"start_at": args.start_at}
    if args.schemas:
        options["schemas"] = args.schemas
    if is_webhook(args.out_url):
        options.update(webhook.options(args))
    else:
        options.update(slot=args.slot, create=args.create)
    flt = load_callable(args.filter, "--filter") if args.filter else None
    with pipe(args.in_url, args.out_url, filter=flt, **options) as p:
        stop = lambda *_: p.stop()
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        stats = p.run(limit=args.limit, timeout=args.timeout, until_eos=args.until_eos)
    if args.until_eos and isinstance(stats, PipeStats):
        notes.started_at_end("pipe", p.in_spec.group, stats.started_at_end)
    print(json.dumps(asdict(stats)) if args.json else f"pipe: {stats}", flush=True)
    return 0


def _child_argv(args: argparse.Namespace, slot: int) -> list[str]:
    """The command line of the pipe process of ``slot`` (OUT exists by then)."""
    argv = ["pipe", args.in_url, args.out_url, f"--start-at={start_at_text(args.start_at)}", "--slot", str(slot)]
    values = (
        ("--filter", args.filter),
        ("--timeout", args.timeout),
        ("--limit", args.limit),
        ("--schemas", args.schemas),
    )
    switches = [("--until-eos", args.until_eos), ("--json", args.json)]
    return argv + child_options(values, switches) + (webhook.child_argv(args) if is_webhook(args.out_url) else [])


def _processes(args: argparse.Namespace) -> int:
    """``--processes N``: N ``genesis pipe`` processes, slots 0..N-1, in the group of IN_URL."""
    from .._urls import parse_url
    from ..pipe import output_partitions

    if not is_webhook(args.out_url):  # once, before they race
        output_partitions(parse_url(args.in_url), parse_url(args.out_url), create=args.create)
    return run_slots(lambda slot: _child_argv(args, slot), args.processes)
