"""Run every benchmark on one cluster and write bench/RESULTS.md (``make bench``).

``python bench/run_all.py [--bootstrap HOST:PORT,...] [--only throughput,latency,...]``; without
``--bootstrap`` the running local demo cluster is used (one is started, and stopped after, if
none runs). A new benchmark is a module with ``run(ctx) -> Section``, listed in ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import sys
import time

import cost
import injector
import latency
import parallel
import throughput
import users
from _common import ensure_cluster, write_results

BENCHMARKS = {
    "throughput": throughput,
    "cost": cost,
    "latency": latency,
    "users": users,
    "injector": injector,
    "parallel": parallel,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="bootstrap servers (default: the running local demo cluster)")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    ctx = ensure_cluster(args.bootstrap)
    t0 = time.monotonic()
    sections = []
    try:
        for name in names:
            print(f"# {name} ...", file=sys.stderr, flush=True)
            section = BENCHMARKS[name].run(ctx)
            print(section.text() + "\n", flush=True)
            sections.append(section)
            write_results(ctx, sections, ["bench/run_all.py", *sys.argv[1:]], time.monotonic() - t0)
    finally:
        if ctx.started_cluster is not None:
            ctx.started_cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
