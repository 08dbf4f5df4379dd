"""Benchmark: a long night. 1,000,000 alerts injected at 10x the LSST rate into a retention-capped
topic, read by one stream that commits every 1,000 (inline, and with gs.Pool(2), at once, each in
its own process), its RSS, threads and open files sampled every 1,000: the memory curve.

    python bench/longnight.py [--bootstrap B] [--alerts 1000000]
    python bench/longnight.py reader URL TOTAL EVERY WORKERS     # one reader (prints JSON)

``tests/integration/test_long_night.py`` runs the same readers over 200,000 alerts in CI.
"""

from __future__ import annotations

import array
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import NamedTuple

ALERTS, EVERY = 1_000_000, 1_000
#: the RSS curve in the table shows one sample in this many alerts
SHOWN = 50_000
#: alerts read before the memory counts (caches warm, librdkafka's queues full)
WARM = 40_000
#: the criterion: the least-squares line through the RSS samples after WARM rises by less than this
MAX_SLOPE_MB = 20.0  # per 100,000 alerts


class Trend(NamedTuple):
    """How RSS moves after warm-up: the least-squares line's ``slope`` in MB per 100,000 alerts
    and ``spread``, the standard deviation in MB of the samples around that line."""

    slope: float
    spread: float


def rss_trend(samples: list[dict], warm: int = WARM) -> Trend:
    """The least-squares line through the RSS samples taken at ``warm`` alerts or later."""
    import statistics

    points = [(s["alerts"], s["rss"] / 2**20) for s in samples if s["alerts"] >= warm]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    residuals = [y - (slope * x + intercept) for x, y in points]
    return Trend(slope * 100_000, statistics.pstdev(residuals))


RATE = "10000/4s"  # 10x the LSST average
#: librdkafka's buffers, capped: at 10x the LSST rate (~200 MB/s of 82 KB alerts) a reader behind
#: the injector gets full fetch responses (genesis' default: up to 64 MB per broker, each in its
#: own receive buffer) and a 256 MB prefetch queue that fills and drains within a second; their fill
#: level, not what the client keeps, would decide each RSS sample (swings of 100-250 MB measured).
#: Bounded by design, they are not growth; capped, the samples show what the client holds on to.
PREFETCH = {
    "queued.max.messages.kbytes": 16 * 1024,
    "fetch.max.bytes": 4 * 2**20,
    "max.partition.fetch.bytes": 2**20,
    "receive.message.max.bytes": 5 * 2**20,
    "fetch.queue.backoff.ms": 10,
}


def reader(url: str, total: int, every: int, workers: int) -> dict:
    """Read ``total`` alerts of ``url`` (committing every 1,000), sampling RSS, threads and fds."""
    import ctypes
    import ctypes.util

    import genesis.streaming as gs

    # glibc keeps freed memory in its per-thread arenas (librdkafka's broker threads free fetch
    # buffers of up to 64 MB each): returned to the system before each sample, RSS counts what is
    # alive, not the high-water mark of buffers long gone
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    trim = getattr(libc, "malloc_trim", None)

    def sample(n: int) -> dict:
        if trim is not None:
            trim(0)
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        return {
            "alerts": n,
            "rss": rss,
            "blocks": sys.getallocatedblocks(),  # Python's own objects: a leak of them shows here first
            "threads": len(os.listdir("/proc/self/task")),
            "fds": len(os.listdir("/proc/self/fd")),
        }

    # the candids in 8 bytes each (a set would grow by ~6 MB per 100,000 alerts: the reader's own memory)
    samples, seen, n = [], array.array("q"), 0
    pool = gs.Pool(workers) if workers else None
    try:
        with gs.open(url, start_at="earliest", config=PREFETCH) as stream:
            for n, (_, alert) in enumerate(stream(timeout=60, pool=pool), 1):
                seen.append(alert["candid"])
                if n % 1000 == 0:
                    stream.commit()
                if n % every == 0:
                    samples.append(sample(n))
                if n == total:
                    break
            stream.commit()
    finally:
        if pool is not None:
            pool.close()
    return {"received": n, "distinct": len(set(seen)), "samples": samples}


def night(bootstrap_url: str, create_topic, delete_topic, total: int, every: int) -> dict[str, dict]:
    """Inject ``total`` alerts at 10x into a fresh capped topic while both readers read it.

    ``create_topic(name, config)`` makes the topic (6 partitions, RF 1), ``delete_topic(name)``
    removes it after. Returns each reader's result ("inline", "gs.Pool(2)") with the injector's
    rate and how many alerts it delivered."""
    from genesis.demo import LSST_RETENTION
    from genesis.inject import inject

    topic = f"night-{uuid.uuid4().hex[:8]}"
    # RF 1: the client's memory is under test; retention capped at 3 GB per partition, which a
    # reader that falls ~90 s behind still finds unread
    create_topic(topic, {**LSST_RETENTION, "retention.bytes": str(3 * 1024**3)})
    url = f"{bootstrap_url}/{topic}"
    me = str(Path(__file__).resolve())
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                me,
                "reader",
                url.replace("kafka://", f"kafka://{topic}-{name}@"),
                str(total),
                str(every),
                str(workers),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, workers in (("inline", 0), ("gs.Pool(2)", 2))
    }
    try:
        report = inject(url, RATE, visits=total // 10_000, payloads=64)
        out = {name: p.communicate(timeout=900) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        delete_topic(topic)
    results = {}
    for name, (stdout, stderr) in out.items():
        if procs[name].returncode != 0:
            raise RuntimeError(f"reader {name} failed:\n{stderr[-3000:]}")
        results[name] = {**json.loads(stdout), "injected_per_s": report.achieved_rate, "delivered": report.delivered}
    return results


def run(ctx):
    from _common import Section, machine_busy

    if ctx.cluster is None:
        raise RuntimeError("the long night needs the local cluster (it creates and deletes a topic)")

    def create(topic: str, config: dict) -> None:
        ctx.cluster.create_topic(topic, 6, 1, config)

    results = night(f"kafka://{ctx.bootstrap}", create, ctx.cluster.delete_topic, ALERTS, EVERY)
    rows, notes = [], []
    for name, result in results.items():
        samples = result["samples"]
        trend = rss_trend(samples)
        rows.append(
            [
                name,
                result["received"],
                result["distinct"],
                " ".join(f"{s['rss'] / 2**20:.0f}" for s in samples if s["alerts"] % SHOWN == 0),
                f"{trend.slope:+.1f}",
                f"{trend.spread:.1f}",
                f"{min(s['threads'] for s in samples)}-{max(s['threads'] for s in samples)}",
                f"{min(s['fds'] for s in samples)}-{max(s['fds'] for s in samples)}",
            ]
        )
        notes.append(
            f"{name}: injected at {result['injected_per_s']:,.0f} alerts/s; "
            + (
                "read every alert"
                if result["received"] >= ALERTS
                else f"{ALERTS - result['received']:,} never read: retention deleted them before this reader, "
                "behind the injector, reached them (the stream resumes at the oldest alert left)"
            )
        )
    notes.append(
        f"RSS in MB sampled every {EVERY:,} alerts (shown: every {SHOWN:,}); slope: the least-squares line "
        f"through the samples after the first {WARM:,} (criterion: under {MAX_SLOPE_MB:g} MB per 100,000), "
        "spread: their standard deviation around it; librdkafka's buffers capped (prefetch 16 MB, fetches "
        f"4 MB); load {machine_busy():.1f}"
    )
    return Section(
        f"A long night: {ALERTS:,} alerts at 10x the LSST rate, one stream committing every 1,000",
        [
            "reader",
            "received",
            "distinct",
            "RSS curve (MB)",
            "slope (MB/100k alerts)",
            "spread (MB)",
            "threads",
            "fds",
        ],
        rows,
        notes,
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "reader":
        url, total, every, workers = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(reader(url, total, every, workers)))
        return 0
    from _common import standalone

    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
