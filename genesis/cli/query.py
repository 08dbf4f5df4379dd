"""``genesis query SQL``: a push query, the rows of SQL over an alert stream as they arrive.

The SQL is DuckDB's dialect over the stream its FROM names (a genesis URL in quotes) and the
tables given with ``--table NAME=FILE`` (CSV or Parquet), e.g. a watchlist joined with
``cone(...)``. Rows go to stdout: a table on a terminal (columns sized by the first rows), or
with ``--jsonl`` one JSON object per row whose keys are exactly the selected names. See
``docs/query.md`` for the dialect, the functions and examples.

Offsets are committed (``--commit``) only for alerts whose rows were all printed.

``CREATE STREAM name AS SELECT ... FROM 'kafka://GROUP@host/topic' ...`` is a persistent query: it
writes its rows into the topic ``name`` on the same cluster (made if missing), exactly once, as
``genesis pipe`` does (Kafka transactions; ``SELECT *`` writes the input messages unchanged, a
projection Avro with a schema from the result's types), until ``--until-eos``, ``--timeout``,
``--limit`` (input alerts, per process) or Ctrl-C; ``--processes N`` runs N processes of the group.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from .. import alerts
from ..errors import ConfigError
from ..streaming import query
from . import _notes as notes
from . import _reading as reading
from ._processes import child_options, run_slots

EXAMPLES = """examples:
  genesis query "SELECT objectId, candid, candidate.magpsf AS mag FROM 'kafka://localhost/medium'
      WHERE candidate.ssnamenr <> 'null' AND candidate.magpsf < 19" --start-at earliest --until-eos
  genesis query "SELECT objectId, jd_to_iso(candidate.jd) AS t FROM 'kafka://localhost/ztf'
      WHERE len(prv_candidates) > 3" --jsonl --timeout 60 > rows.jsonl
  genesis query "SELECT a.objectId, w.name FROM 'kafka://me@localhost/ztf' a JOIN watchlist w
      ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)" --table watchlist=mylist.csv --commit
  genesis query "CREATE STREAM bright AS SELECT * FROM 'kafka://bright@localhost/ztf'
      WHERE candidate.magpsf < 16" --start-at earliest --processes 2
"""

#: commit every this many rows with --commit (and at the end)
COMMIT_EVERY = 1000
#: the widest a terminal column gets
WIDEST = 32


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "query",
        help="run SQL over an alert stream: rows as they arrive (DuckDB's dialect; watchlists with --table)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sql", help="SELECT ... FROM 'kafka://[group@]host/topic' [JOIN table ...] WHERE ...")
    p.add_argument(
        "--table",
        action="append",
        default=[],
        type=parse_table,
        metavar="NAME=FILE",
        help="a CSV or Parquet file the query may join as NAME (repeatable)",
    )
    p.add_argument("--jsonl", action="store_true", help="one JSON object per row (keys: the selected names)")
    reading.add_start_at(p)
    p.add_argument("--limit", type=int, metavar="N", help="stop after N rows (CREATE STREAM: N input alerts)")
    reading.add_end(p)
    p.add_argument("--commit", action="store_true", help="commit offsets of alerts whose rows were printed")
    reading.add_schemas(p)
    p.add_argument("--processes", type=int, default=1, metavar="N", help="CREATE STREAM: N processes of the group")
    p.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)  # set for each of --processes
    p.add_argument("--json", action="store_true", help="CREATE STREAM: print its statistics as JSON")
    p.set_defaults(func=run)


def parse_table(text: str) -> tuple[str, Path]:
    """``watchlist=mylist.csv`` -> ``("watchlist", Path("mylist.csv"))``."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"--table takes NAME=FILE (e.g. watchlist=mylist.csv), not {text!r}")
    return name.strip(), Path(path.strip())


def run(args: argparse.Namespace) -> int:
    from ..sql import plan

    tables = dict(args.table)
    if len(tables) != len(args.table):
        raise ConfigError("each --table NAME may be given once")
    options: dict[str, Any] = {"start_at": args.start_at}
    if args.schemas:
        options["schemas"] = args.schemas
    if args.schema_registry:
        options["schema_registry"] = args.schema_registry
    if args.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if plan(args.sql, tuple(tables)).create is not None:
        return _persistent(args, tables, options)
    if args.processes != 1:
        raise ConfigError("--processes runs a CREATE STREAM query in N processes; a push query runs in one")
    timeout = reading.timeout(args)
    out = Rows(sys.stdout, jsonl=args.jsonl)
    with query(args.sql, tables=tables, **options) as q:
        try:
            for n, (_, row) in enumerate(q(timeout=timeout, limit=args.limit, until_eos=args.until_eos), 1):
                out.write(row)
                if args.commit and n % COMMIT_EVERY == 0:
                    out.flush()
                    q.commit()
        except BrokenPipeError:  # `genesis query ... | head`: the reader has what it wanted
            sys.stderr.close()
            return 0
        out.flush()
        if args.commit:
            q.commit()
        if args.until_eos:
            notes.started_at_end("query", q.stream.group, q.stats.started_at_end)
    print(f"genesis query: {q.rows} rows from {q.stats.alerts} alerts", file=sys.stderr)
    return 0


def _persistent(args: argparse.Namespace, tables: dict[str, Path], options: dict[str, Any]) -> int:
    """CREATE STREAM: an exactly-once pipe into the stream's topic (N processes with --processes N)."""
    from ..streaming import persistent_query

    if args.processes > 1:
        from ..sql import output_topic

        output_topic(args.sql, tables)  # made once, before the processes race to make it
        return run_slots(lambda slot: _child_argv(args, slot), args.processes)
    with persistent_query(args.sql, tables, slot=args.slot, **options) as p:
        stop = lambda *_: p.stop()
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        stats = p.run(limit=args.limit, timeout=reading.timeout(args), until_eos=args.until_eos)
    if args.until_eos:
        notes.started_at_end("query", p.in_spec.group, stats.started_at_end)
    print(json.dumps(asdict(stats)) if args.json else f"genesis query: {p.topic}: {stats}", flush=True)
    return 0


def _child_argv(args: argparse.Namespace, slot: int) -> list[str]:
    """The command line of the CREATE STREAM process of ``slot``."""
    argv = ["query", args.sql, f"--start-at={reading.start_at_text(args.start_at)}", "--slot", str(slot)]
    for name, path in args.table:
        argv += ["--table", f"{name}={path}"]
    values = (
        ("--timeout", args.timeout),
        ("--limit", args.limit),
        ("--schemas", args.schemas),
        ("--schema-registry", args.schema_registry),
    )
    return argv + child_options(values, (("--until-eos", args.until_eos), ("--json", args.json)))


class Rows:
    """Rows to a text stream: JSON lines, or a table whose columns the first rows size."""

    def __init__(self, out: TextIO, *, jsonl: bool) -> None:
        self.out = out
        self.jsonl = jsonl
        self._widths: dict[str, int] | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self.jsonl:
            self.out.write(json.dumps(alerts.jsonable(row), allow_nan=False, default=str) + "\n")
            return
        if self._widths is None:
            self._widths = {k: min(WIDEST, max(len(k), len(_cell(v)))) for k, v in row.items()}
            self.out.write("  ".join(k.ljust(w)[:w] for k, w in self._widths.items()).rstrip() + "\n")
        self.out.write("  ".join(_cell(row.get(k)).ljust(w)[:w] for k, w in self._widths.items()).rstrip() + "\n")

    def flush(self) -> None:
        self.out.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return "" if value is None else str(value)
