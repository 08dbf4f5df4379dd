"""Benchmark: a long night. 1,000,000 alerts injected at 10x the LSST rate into a retention-capped
topic, read by one stream that commits every 1,000 (inline, and with gs.Pool(2), at once, each in
its own process), its RSS, threads and open files sampled every 50,000: the memory curve.

    python bench/longnight.py [--bootstrap B] [--alerts 1000000]
    python bench/longnight.py reader URL TOTAL EVERY WORKERS     # one reader (prints JSON)

``tests/integration/test_long_night.py`` runs the same readers over 200,000 alerts in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ALERTS, EVERY = 1_000_000, 50_000
RATE = "10000/4s"  # 10x the LSST average


def reader(url: str, total: int, every: int, workers: int) -> dict:
    """Read ``total`` alerts of ``url`` (committing every 1,000), sampling RSS, threads and fds."""
    import genesis.streaming as gs

    def sample(n: int) -> dict:
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        return {
            "alerts": n,
            "rss": rss,
            "threads": len(os.listdir("/proc/self/task")),
            "fds": len(os.listdir("/proc/self/fd")),
        }

    samples, seen, n = [], set(), 0
    pool = gs.Pool(workers) if workers else None
    try:
        with gs.open(url, start_at="earliest") as stream:
            for n, (_, alert) in enumerate(stream(timeout=60, pool=pool), 1):
                seen.add(alert["candid"])
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
    return {"received": n, "distinct": len(seen), "samples": samples}


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
        warm = [s for s in samples if s["alerts"] >= 2 * EVERY]
        rows.append(
            [
                name,
                result["received"],
                result["distinct"],
                " ".join(f"{s['rss'] / 2**20:.0f}" for s in samples),
                (warm[-1]["rss"] - warm[0]["rss"]) / 2**20 if warm else float("nan"),
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
        f"RSS in MB every {EVERY:,} alerts; growth counted after the first {2 * EVERY:,}; load {machine_busy():.1f}"
    )
    return Section(
        f"A long night: {ALERTS:,} alerts at 10x the LSST rate, one stream committing every 1,000",
        ["reader", "received", "distinct", "RSS curve (MB)", "growth after warm-up (MB)", "threads", "fds"],
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
