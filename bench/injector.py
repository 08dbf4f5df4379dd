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

from _common import Context, Section, cpu_seconds, message_pool, standalone

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


def _broker_pids() -> list[int]:
    try:
        from genesis.cluster import LocalCluster

        return list(LocalCluster.attach().pids().values())
    except Exception:  # noqa: BLE001 - brokers elsewhere: not sampled
        return []


def measured(action) -> dict:
    """Run ``action()`` and return what it cost: CPU of this process, the brokers, the machine; disk writes."""
    brokers = _broker_pids()
    me = os.getpid()
    cpu0, disk0 = _machine()
    b0 = sum(cpu_seconds(p) for p in brokers)
    m0, t0 = cpu_seconds(me), time.monotonic()
    result = action()
    wall = time.monotonic() - t0
    cpu1, disk1 = _machine()
    ticks = [b - a for a, b in zip(cpu0, cpu1)]
    total = sum(ticks) or 1
    return {
        "result": result,
        "wall": wall,
        "injector_cpu": (cpu_seconds(me) - m0) / wall,
        "brokers_cpu": (sum(cpu_seconds(p) for p in brokers) - b0) / wall if brokers else None,
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
    from genesis.cluster import _admin
    from genesis.demo import LSST_RETENTION
    from genesis.inject import inject

    pool = message_pool()
    rows = []
    null = measured(_null_run)
    rows.append(
        [
            "loop only (no Kafka)",
            f"{null['result']['rate']:,.0f}",
            "",
            "",
            f"{null['injector_cpu']:.2f}",
            "",
            "",
            "",
            "",
        ]
    )
    admin = _admin.admin(ctx.bootstrap)
    _admin.create_topic(admin, RF1_TOPIC, 6, 1, LSST_RETENTION, 60)
    try:
        for label, topic in (("lsst (RF 3, acks=all)", "lsst"), ("RF 1 topic (acks=all)", RF1_TOPIC)):
            m = measured(lambda: inject(ctx.url(topic), RATE, duration=SECONDS, pool=pool))
            r = m["result"]
            rows.append(
                [
                    label,
                    f"{r.achieved_rate:,.0f}",
                    "kept" if r.kept_schedule else f"late {r.max_late:.1f} s",
                    r.ack_seconds,
                    f"{m['injector_cpu']:.2f}",
                    f"{m['brokers_cpu']:.2f}" if m["brokers_cpu"] is not None else "?",
                    f"{m['user']:.0%} / {m['system']:.0%} / {m['iowait']:.0%} / {m['idle']:.0%}",
                    m["disk_mb_s"],
                    r.mb_per_s,
                ]
            )
    finally:
        _admin.delete_topic(admin, RF1_TOPIC)
    return Section(
        "Injector at 10x the LSST rate (target 2,500 alerts/s, ~200 MB/s)",
        [
            "run",
            "alerts/s",
            "schedule",
            "acks after s",
            "injector cores",
            "broker cores",
            "machine user/sys/iowait/idle",
            "disk MB/s",
            "sent MB/s",
        ],
        rows,
        ["cores = CPU seconds per wall second (2 = the whole machine)"],
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
