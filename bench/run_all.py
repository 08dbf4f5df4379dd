"""Run every benchmark on one cluster and write bench/RESULTS.md (``make bench``, ~30 min).

``python bench/run_all.py [--bootstrap HOST:PORT,...] [--only throughput,latency,...]``; without
``--bootstrap`` the running local demo cluster is used (one is started, and stopped after, if
none runs). A new benchmark is a module with ``run(ctx) -> Section``, listed in ``BENCHMARKS``;
the slow ones in ``OPTIONAL`` run only when ``--only`` names them (``--only spark``: Spark
``local[2]`` against genesis, which needs the extra ``[spark]``).

``brokers`` (the brokers' JVM profiles, ~50 min on private clusters) is not in the default list:
run ``python bench/brokers.py`` (or ``--only brokers``); RESULTS.md keeps its last section.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import brokers
import cost
import decode
import injector
import latency
import longnight
import parallel
import pipe
import query
import throughput
import users
import webhook
from _common import ensure_cluster, write_results

BENCHMARKS = {
    "decode": decode,
    "throughput": throughput,
    "cost": cost,
    "latency": latency,
    "users": users,
    "injector": injector,
    "parallel": parallel,
    "pipe": pipe,
    "query": query,
    "webhook": webhook,
    "longnight": longnight,
    "brokers": brokers,
}
#: slow benchmarks, run only when --only names them (imported then: they need optional extras)
OPTIONAL = {"spark": "spark"}
#: what ``make bench`` runs
DEFAULT = [name for name in BENCHMARKS if name != "brokers"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="bootstrap servers (default: the running local demo cluster)")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join([*BENCHMARKS, *OPTIONAL])}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else DEFAULT
    ctx = ensure_cluster(args.bootstrap)
    t0 = time.monotonic()
    sections = []
    try:
        for name in names:
            print(f"# {name} ...", file=sys.stderr, flush=True)
            module = BENCHMARKS[name] if name in BENCHMARKS else importlib.import_module(OPTIONAL[name])
            section = module.run(ctx)
            print(section.text() + "\n", flush=True)
            section.name = name
            sections.append(section)
            write_results(ctx, sections, ["bench/run_all.py", *sys.argv[1:]], time.monotonic() - t0)
    finally:
        if ctx.started_cluster is not None:
            ctx.started_cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
