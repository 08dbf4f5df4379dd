"""Benchmark: the notebook's ``is_transient`` filter over cores and over consumer processes.

Reads the last ``--alerts`` alerts of ``medium`` (spread evenly over its 6 partitions)
through ``genesis.filters.is_transient`` (pandas; ~450 alerts/s on one core):

* in one process: inline, and with ``gs.Pool(1)`` and ``gs.Pool(2)`` workers;
* with ``genesis.scaleout.run_group`` and 1 and 2 consumer processes in one group.

Rates count every alert processed, from the partitions' assignment (pools) or the first
handled alert of any process (groups) to the last one, so joining the group is left out.
The load average is printed before and after: on a busy machine the speed-ups mean little.

    python bench/parallel.py [--bootstrap B] [--alerts 4000]
"""

from __future__ import annotations

import argparse
import time

from _common import Context, Section, ensure_cluster, machine_busy

TOPIC = "medium"
PARTITIONS = 6
TARGET_SPEEDUP = 1.7


def pooled(url: str, per_partition: int, workers: int | None) -> tuple[int, float]:
    """(alerts, seconds) through is_transient in this process, with ``workers`` pool processes (None: inline)."""
    import genesis.streaming as gs
    from genesis.filters import is_transient

    pool = gs.Pool(workers) if workers else None
    try:
        if pool is not None:  # workers start (and import pandas) before the clock does
            list(pool.imap(abs, range(4 * workers)))
        with gs.open(url, start_at=-per_partition) as stream:
            for _ in stream(until_eos=True, filter=is_transient, pool=pool, timeout=60):
                pass
            end = time.monotonic()
            stats = stream.stats
            assert stats.assigned_at is not None
            return stats.alerts, end - stats.assigned_at
    finally:
        if pool is not None:
            pool.close()


def grouped(url: str, per_partition: int, processes: int) -> tuple[int, float]:
    """(alerts, seconds) through is_transient in ``processes`` consumer processes of one new group."""
    from genesis.filters import is_transient
    from genesis.scaleout import run_group

    report = run_group(
        url, processes, start_at=-per_partition, filter=is_transient, until_eos=True, timeout=60, commit_every=500
    )
    if not report.ok:
        raise RuntimeError(f"a consumer process failed:\n{report}")
    return report.alerts, report.alerts / report.rate if report.rate else float("nan")


def run(ctx: Context, alerts: int = 4000) -> Section:
    """The benchmark on ``ctx``'s cluster (``run_all.py`` calls it like the others)."""
    import pandas  # noqa: F401 - imported once here, so forked workers start with it

    bootstrap = ctx.bootstrap

    url = f"kafka://{bootstrap}/{TOPIC}"
    per_partition = -(-alerts // PARTITIONS)
    load_before = machine_busy()
    runs = [
        ("inline (no pool)", pooled, None),
        ("gs.Pool(1)", pooled, 1),
        ("gs.Pool(2)", pooled, 2),
        ("run_group, 1 process", grouped, 1),
        ("run_group, 2 processes", grouped, 2),
    ]
    rates: dict[str, float] = {}
    rows = []
    for label, how, n in runs:
        count, seconds = how(url, per_partition, n)
        rates[label] = count / seconds
        rows.append([label, count, seconds, rates[label], machine_busy()])
        print(
            f"  {label}: {count} alerts in {seconds:.1f} s = {rates[label]:,.0f} alerts/s (load {machine_busy():.1f})",
            flush=True,
        )
    pool_up = rates["gs.Pool(2)"] / rates["gs.Pool(1)"]
    group_up = rates["run_group, 2 processes"] / rates["run_group, 1 process"]
    notes = [
        f"speed-up gs.Pool(2) / gs.Pool(1) = {pool_up:.2f}x; gs.Pool(2) / inline = "
        f"{rates['gs.Pool(2)'] / rates['inline (no pool)']:.2f}x (target >= {TARGET_SPEEDUP}x)",
        f"speed-up run_group 2 / 1 processes = {group_up:.2f}x (target >= {TARGET_SPEEDUP}x)",
        f"load average (1 min) before: {load_before:.1f}, after: {machine_busy():.1f} on 2 cores: "
        + (
            "the machine was busy, the speed-ups are lower bounds"
            if max(load_before, machine_busy()) >= 1.5
            else "an idle machine"
        ),
    ]
    return Section(
        f"Parallel filtering: is_transient over {per_partition * PARTITIONS:,} alerts of {TOPIC}",
        ["how", "alerts", "s", "alerts/s", "load"],
        rows,
        notes,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", help="bootstrap servers (default: the running local demo cluster)")
    parser.add_argument("--alerts", type=int, default=4000, help="alerts to filter per run (default 4000)")
    args = parser.parse_args()
    ctx = ensure_cluster(args.bootstrap)
    try:
        print(run(ctx, args.alerts).text())
    finally:
        if ctx.started_cluster is not None:
            ctx.started_cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
