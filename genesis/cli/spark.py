"""``genesis spark IN_URL --filter module:function --output DIR|kafka://...``: a filter on Apache Spark.

Runs the stream through ``genesis.spark`` (read, apply, write) as a Structured Streaming query
on ``--master`` (default ``local[*]``: this machine), and first prints the ``spark-submit`` line
that runs the same job on a real Spark cluster. The query keeps its progress in ``--checkpoint``
(default for Parquet: ``DIR/_checkpoint``): run the command again with the same one and it goes on
where it stopped. Parquet output is exactly-once, Kafka output at-least-once (see docs/spark.md).

Needs the extra: ``pip install 'genesis-streaming[spark]'`` (pyspark) and a Java 17+ runtime.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import Any

from .._loader import load_callable
from ..errors import ConfigError
from ._reading import parse_start_at

EXAMPLES = """examples:
  genesis spark kafka://localhost/medium --filter genesis.filters:filter_asteroids \\
      --output asteroids/ --until-eos                  # Parquet; stops when it has caught up
  genesis spark kafka://localhost/ztf --filter mymodule:my_filter --output kafka://localhost/kept \\
      --checkpoint /data/ckpt/kept                       # forwards the kept alerts byte for byte
  genesis spark kafka://localhost/medium --filter genesis.filters:filter_asteroids --output out/ \\
      --submit-line --executor-python /opt/venv/bin/python   # print the spark-submit line only
  genesis spark --fetch                                 # fetch the connector's jars (make setup)
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``genesis spark``."""
    p = sub.add_parser(
        "spark",
        help="run a filter on Apache Spark (Structured Streaming), locally or on a cluster",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", nargs="?", help="kafka://[group@]host[:port]/topic[,topic2] to read")
    p.add_argument("--filter", metavar="MODULE:FUNCTION", help="the genesis filter to run (default: keep all)")
    p.add_argument("--output", metavar="DIR|kafka://...", help="a directory (Parquet) or a kafka:// topic")
    p.add_argument("--checkpoint", metavar="DIR", help="where the query keeps its progress (default: DIR/_checkpoint)")
    p.add_argument("--master", default=None, help="Spark master (default: local[*]; under spark-submit: its own)")
    p.add_argument(
        "--start-at", default="earliest", type=parse_start_at, help="earliest (default), latest, ISO time, -N"
    )
    p.add_argument("--until-eos", action="store_true", help="process what the topics hold now, then stop")
    p.add_argument("--fields", help="comma-separated top-level fields to keep (and decode)")
    p.add_argument("--schemas", metavar="DIR", help="directory of .avsc files (Confluent wire format, Rubin)")
    p.add_argument("--schema-registry", metavar="URL", help="Confluent schema registry (Rubin)")
    p.add_argument("--max-per-batch", type=int, metavar="N", help="at most N messages per micro-batch")
    p.add_argument("--submit-line", action="store_true", help="only print the spark-submit line for a real cluster")
    p.add_argument(
        "--cluster-master", default="spark://HOST:7077", help="the master named in the printed spark-submit line"
    )
    p.add_argument(
        "--executor-python",
        default="python3",
        metavar="PATH",
        help="the executors' Python in the printed line (it must have genesis-streaming[spark] and the filter)",
    )
    p.add_argument("--fetch", action="store_true", help="only fetch the connector's jars into the cache")
    p.set_defaults(func=run)


def job_args(args: argparse.Namespace) -> list[str]:
    """The arguments of the same job, for the spark-submit line (cluster-only options left out)."""
    out = [args.url, "--output", args.output]
    if args.filter:
        out += ["--filter", args.filter]
    if args.checkpoint:
        out += ["--checkpoint", args.checkpoint]
    if args.start_at != "earliest":
        start = args.start_at
        out += ["--start-at", start.isoformat() if hasattr(start, "isoformat") else str(start)]
    for flag, value in (
        ("--fields", args.fields),
        ("--schemas", args.schemas),
        ("--schema-registry", args.schema_registry),
        ("--max-per-batch", args.max_per_batch),
    ):
        if value is not None:
            out += [flag, str(value)]
    if args.until_eos:
        out.append("--until-eos")
    return out


def run(args: argparse.Namespace, *, submitted: bool = False) -> int:
    """Run the job (``submitted``: started by spark-submit, which chose the master)."""
    from .. import spark as gsp

    if args.fetch:
        jars = gsp.connector_jars()
        print(jars[0].parent if jars else "")
        return 0
    if not args.url or not args.output:
        raise ConfigError("genesis spark needs IN_URL and --output DIR|kafka://host/topic (or --fetch)")
    checkpoint = args.checkpoint
    if checkpoint is None:
        if args.output.startswith("kafka://"):
            raise ConfigError(
                "writing to Kafka needs --checkpoint DIR, where the query keeps its progress "
                "(a shared directory on a real cluster)"
            )
        checkpoint = args.output.rstrip("/") + "/_checkpoint"
    flt = load_callable(args.filter, "--filter") if args.filter else None
    if not submitted:
        line = gsp.submit_command(job_args(args), master=args.cluster_master, python=args.executor_python)
        print("on a Spark cluster:\n  " + shlex.join(line), file=sys.stderr)
        if args.submit_line:
            return 0
    spark = gsp.session(None if submitted else (args.master or "local[*]"))
    options: dict[str, Any] = {}
    if args.max_per_batch:
        options["maxOffsetsPerTrigger"] = args.max_per_batch
    fields = tuple(f.strip() for f in args.fields.split(",") if f.strip()) if args.fields else None
    df = gsp.read(
        spark,
        args.url,
        start_at=args.start_at,
        fields=fields,
        schemas=args.schemas,
        schema_registry=args.schema_registry,
        options=options,
    )
    if flt is not None:
        df = gsp.apply(df, flt)
    started = time.monotonic()
    query = gsp.write(df, args.output, checkpoint=checkpoint, trigger="available_now" if args.until_eos else None)
    assert query is not None
    try:
        gsp.wait(query)
    except KeyboardInterrupt:
        query.stop()
    finally:
        progress = query.recentProgress or []
        read = sum(int(p.get("numInputRows", 0) or 0) for p in progress)
        print(
            f"{read} messages in {len(progress)} micro-batches in {time.monotonic() - started:.1f} s "
            f"(checkpoint {checkpoint})",
            file=sys.stderr,
        )
    return 0
