"""Benchmark 5: can the injector hold 10x the LSST rate (2,500 alerts/s, ~200 MB/s), and if not, what limits it.

Three runs of 8 s at 10x: (1) the injector's own loop with no Kafka (payload patching and
headers only: the producer-side Python cost); (2) into ``lsst`` (replication factor 3,
acks=all); (3) into a topic of this benchmark with replication factor 1 (deleted afterwards),
which removes the brokers' replication traffic. During each, the CPU of the injector, of the
broker JVMs and of the whole machine (/proc/stat: user, system, iowait, idle) is sampled, and
the bytes written to disk (/proc/diskstats).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _common import Context, Section, broker_pids, cpu_seconds, message_pool, settle, standalone

RATE, SECONDS = "10000/4s", 8
RF1_TOPIC = "bench-inject-rf1"


def _machine() -> tuple[list[int], int]:
    cpu = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    sectors = sum(
        int(line.split()[9])
        for line in Path("/proc/diskstats").read_text().splitlines()
        if line.split()[2].startswith(("vd", "sd", "nvme"))
        and not line.split()[2][-1].isdigit()
        or line.split()[2] in ("vda", "sda", "nvme0n1")
    )
    return cpu, sectors


def _user_system(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of ``pids`` so far."""
    user = system = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
        system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
    return user, system


def measured(ctx: Context, action) -> dict:
    """Run ``action()`` and return what it cost: CPU of this process, the brokers, the machine; disk writes."""
    brokers = broker_pids(ctx)
    me = os.getpid()
    cpu0, disk0 = _machine()
    bu0, bs0 = _user_system(brokers)
    m0, t0 = cpu_seconds(me), time.monotonic()
    result = action()
    wall = time.monotonic() - t0
    cpu1, disk1 = _machine()
    bu1, bs1 = _user_system(brokers)
    ticks = [b - a for a, b in zip(cpu0, cpu1)]
    total = sum(ticks) or 1
    return {
        "result": result,
        "wall": wall,
        "injector_cpu": (cpu_seconds(me) - m0) / wall,
        "brokers_cpu": (bu1 - bu0 + bs1 - bs0) / wall if brokers else None,
        "brokers_user_sys": ((bu1 - bu0) / wall, (bs1 - bs0) / wall),
        "brokers_cpu_s": bu1 - bu0 + bs1 - bs0,
        "user": (ticks[0] + ticks[1]) / total,
        "system": (ticks[2] + ticks[5] + ticks[6]) / total,
        "iowait": ticks[4] / total,
        "idle": ticks[3] / total,
        "disk_mb_s": (disk1 - disk0) * 512 / 1e6 / wall,
    }


def _null_run() -> dict:
    """The paced loop's own work without a producer: how fast can payloads and headers be made."""
    pool = message_pool()
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 2:
        pool.message(n, 8 * 10**18 + n)
        [("genesis.sent_ns", b"%d" % time.time_ns())]
        n += 1
    return {"rate": n / (time.monotonic() - t0)}


def run(ctx: Context) -> Section:
    from genesis.demo import LSST_RETENTION
    from genesis.inject import inject

    pool = message_pool()
    null = measured(ctx, _null_run)
    rows = [["loop only (no Kafka)", f"{null['result']['rate']:,.0f}", "", "", f"{null['injector_cpu']:.2f}"]]
    rows[0] += [""] * 6
    runs = [("lsst (RF 3, acks=all)", "lsst")]
    if ctx.cluster is not None:  # an RF 1 topic for comparison, where the cluster is ours to change
        ctx.cluster.create_topic(RF1_TOPIC, 6, 1, LSST_RETENTION)
        runs.append(("RF 1 topic (acks=all)", RF1_TOPIC))
    found = {}
    try:
        for label, topic in runs:
            settle(ctx)
            m = measured(ctx, lambda t=topic: inject(ctx.url(t), RATE, duration=SECONDS, payloads=pool))
            r = m["result"]
            found[topic] = m
            user, system = m["brokers_user_sys"]
            rows.append(
                [
                    label,
                    f"{r.achieved_rate:,.0f}",
                    "kept" if r.kept_schedule else f"late {r.max_late:.1f} s",
                    r.ack_seconds,
                    f"{m['injector_cpu']:.2f}",
                    f"{m['brokers_cpu']:.2f} ({user:.2f} + {system:.2f})" if m["brokers_cpu"] is not None else "?",
                    f"{1000 * m['brokers_cpu_s'] / (r.bytes / 1e6):.1f}" if m["brokers_cpu"] is not None else "?",
                    f"{m['user']:.0%} / {m['system']:.0%} / {m['iowait']:.0%} / {m['idle']:.0%}",
                    m["disk_mb_s"],
                    r.mb_per_s,
                    f"{r.bytes / 1e6 / m['wall']:.0f}",
                ]
            )
    finally:
        if ctx.cluster is not None:
            ctx.cluster.delete_topic(RF1_TOPIC)
    notes = ["cores = CPU seconds per wall second (2 = the whole machine); broker cores = user + system of the 3 JVMs"]
    rf3 = found.get("lsst")
    if rf3 is not None:
        r = rf3["result"]
        limit = []
        if rf3["idle"] < 0.05:
            limit.append(f"the CPU: the 2 cores were {1 - rf3['idle']:.0%} busy")
        if rf3["iowait"] > 0.10:
            limit.append(f"the disk: {rf3['iowait']:.0%} iowait at {rf3['disk_mb_s']:,.0f} MB/s written")
        notes.append(
            f"10x to RF 3: {r.achieved_rate:,.0f} alerts/s of 2,500 "
            + ("(kept)" if r.kept_schedule else f"(late by up to {r.max_late:.1f} s)")
            + f", acknowledged {r.ack_seconds:.1f} s after the last send; the brokers used "
            f"{rf3['brokers_cpu'] or 0:.2f} cores and the injector {rf3['injector_cpu']:.2f} of the 2; "
            f"its own loop makes {null['result']['rate']:,.0f} messages/s without Kafka. Limit: "
            + ("; ".join(limit) if limit else "none reached in this run")
        )
    return Section(
        "Injector at 10x the LSST rate (target 2,500 alerts/s, ~200 MB/s)",
        [
            "run",
            "alerts/s",
            "schedule",
            "acks after s",
            "injector cores",
            "broker cores (user + sys)",
            "broker CPU ms/MB",
            "machine user/sys/iowait/idle",
            "disk MB/s",
            "sent MB/s",
            "acked MB/s",
        ],
        rows,
        notes,
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
