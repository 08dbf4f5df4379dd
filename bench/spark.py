"""Benchmark: the asteroid filter over ``medium`` with Spark ``local[2]`` and with genesis on the same 2 cores.

Every alert of ``medium`` (20,000 ZTF alerts) through ``genesis.filters.filter_asteroids``:

* genesis, one process (inline) and with ``gs.Pool(2)``: ``stream(filter=..., until_eos=True)``;
* Spark ``local[2]`` (2 executor cores in the driver's JVM): ``genesis.spark.read`` (batch,
  ``until_eos=True``), ``apply``, ``count()`` (every message decoded and filtered, nothing
  written); run twice, the first run paying for Python workers and schema compilation;
* Spark ``local[2]`` decoding every alert into columns (``read`` only, no filter).

Spark's figure per executor core (warm run / 2) is what sizing a cluster needs: executor cores
= alert rate / per-core rate (docs/spark.md). Only public API is used.

    python bench/spark.py [--bootstrap B]
"""

from __future__ import annotations

import time

from _common import Context, Section, machine_busy, standalone

TOPIC = "medium"
CORES = 2


def genesis_run(url: str, workers: int | None) -> tuple[int, int, float]:
    """(alerts, kept, seconds) of gs.open with the asteroid filter, inline or with a pool."""
    import genesis.streaming as gs
    from genesis.filters import filter_asteroids

    pool = gs.Pool(workers) if workers else None
    try:
        if pool is not None:
            list(pool.imap(abs, range(4 * workers)))  # workers started before the clock
        with gs.open(url, start_at="earliest") as stream:
            kept = sum(1 for _ in stream(filter=filter_asteroids, until_eos=True, pool=pool, timeout=60))
            end = time.monotonic()
            assert stream.stats.assigned_at is not None
            return stream.stats.alerts, kept, end - stream.stats.assigned_at
    finally:
        if pool is not None:
            pool.close()


def spark_run(spark, url: str, filtered: bool) -> tuple[int, float]:
    """(rows out, seconds) of read (+ apply), counted: Spark runs the Python work for every
    message (a mapInArrow is opaque to it, nothing is pruned)."""
    import genesis.spark as gsp
    from genesis.filters import filter_asteroids

    t0 = time.monotonic()
    df = gsp.read(spark, url, until_eos=True)
    if filtered:
        df = gsp.apply(df, filter_asteroids)
    rows = df.count()
    return rows, time.monotonic() - t0


def run(ctx: Context) -> Section:
    """The benchmark on ``ctx``'s cluster (``run_all.py --only spark`` calls it)."""
    import genesis.spark as gsp

    url = ctx.url(TOPIC)
    load_before = machine_busy()
    rows = []
    total = 0
    for label, workers in (("genesis inline (1 process)", None), ("genesis gs.Pool(2)", 2)):
        alerts, kept, seconds = genesis_run(url, workers)
        total = alerts
        rows.append([label, alerts, kept, seconds, alerts / seconds, alerts / seconds / (workers or 1), machine_busy()])
        print(f"  {label}: {alerts} alerts in {seconds:.1f} s", flush=True)
    t0 = time.monotonic()
    spark = gsp.session(f"local[{CORES}]", **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.monotonic() - t0
    try:
        spark_rates = {}
        for label, filtered in (
            ("Spark local[2], read + apply, 1st run", True),
            ("Spark local[2], read + apply", True),
            ("Spark local[2], read only (all columns)", False),
        ):
            kept, seconds = spark_run(spark, url, filtered)
            spark_rates[label] = total / seconds
            rows.append([label, total, kept, seconds, total / seconds, total / seconds / CORES, machine_busy()])
            print(f"  {label}: {total} alerts in {seconds:.1f} s", flush=True)
    finally:
        spark.stop()
    warm = spark_rates["Spark local[2], read + apply"]
    pool = rows[1][4]
    notes = [
        f"Spark local[2] is {pool / warm:.1f}x slower than genesis gs.Pool(2) on the same 2 cores "
        f"({warm:,.0f} against {pool:,.0f} alerts/s), {rows[0][4] / warm:.1f}x slower than one genesis process",
        f"per executor core: {warm / CORES:,.0f} alerts/s with the asteroid filter "
        f"({spark_rates['Spark local[2], read only (all columns)'] / CORES:,.0f} alerts/s decoding every "
        "alert into columns); size a cluster as executor cores = peak alerts/s / that, plus headroom",
        f"session start (JVM, connector) {startup:.1f} s, not counted; each Spark run counts planning, "
        "reading Kafka, decoding and filtering in the Python workers, and Arrow to the JVM",
        f"load average (1 min) before: {load_before:.1f}, after: {machine_busy():.1f} on 2 cores"
        + (": the machine was busy, rates are lower bounds" if max(load_before, machine_busy()) >= 1.5 else ""),
    ]
    return Section(
        f"Spark local[2] against genesis: filter_asteroids over the {total:,} alerts of {TOPIC}",
        ["how", "alerts", "kept", "s", "alerts/s", "alerts/s per core", "load"],
        rows,
        notes,
    )


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
