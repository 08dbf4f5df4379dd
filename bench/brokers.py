"""The brokers' share: broker CPU per MB at the LSST rate, by JVM profile (JIT, garbage collector, heap).

For each profile, a private 3-broker :class:`genesis.cluster.LocalCluster` is started in a
temporary directory on free ports (torn down after), with a topic like the demo's ``lsst``
(6 partitions, replication factor 3, the demo's retention). One genesis consumer reads it
(``_consumers.py live``: every alert decoded, latency measured), and ``genesis.inject`` sends
10,000-alert visits every 40 s (250 alerts/s, ~20 MB/s, evenly paced, acks=all). The first
``--warmup`` seconds (default 120: 3 visits) are left out, so the JIT has compiled what is hot;
then the brokers' CPU (user + system of the three JVMs, from /proc) is summed over the next
``--measure`` seconds (default 320: 8 visits), divided by the MB injected meanwhile. Each
profile takes ~8 min; ``--rounds N`` repeats the profiles in turn (A B C A B C ...) and
reports the best round of each.

Not part of every ``make bench`` (six profiles take ~50 min); run it alone::

    python bench/brokers.py [--rounds 2] [--profiles fast-start,c2,...] [--warmup 120 --measure 320]

and its section is kept in bench/RESULTS.md by later ``make bench`` runs (marked as kept). Every
measurement is appended to bench/brokers-runs.jsonl; the section shows all recorded rounds
(``--fresh``: only this run's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    Context,
    Section,
    cpu_seconds,
    finish_consumer,
    machine_busy,
    message_pool,
    start_consumer,
    wait_ready,
    write_section,
)

RATE = "10000/40s"
TOPIC = "lsst"
#: every measurement made, one JSON object a line (the section shows them all, best per profile)
RUNS = Path(__file__).resolve().parent / "brokers-runs.jsonl"


@dataclass(frozen=True)
class Profile:
    name: str
    what: str
    jvm: str | tuple[str, ...]
    heap: str = "384m"


PROFILES = [
    Profile("fast-start", "C1 only, G1 (MaxGCPauseMillis=20), 384 MB heap: the flags until now", "fast-start"),
    Profile("c2", "default tiered JIT (C1 then C2), G1 (MaxGCPauseMillis=20), 384 MB", "c2"),
    Profile("c2-g1", "C2, G1 with its default pause goal (200 ms), 384 MB", ("-XX:+UseG1GC",)),
    Profile("c2-parallel", "C2, Parallel GC, 384 MB", "c2-parallel"),
    Profile("c2-serial", "C2, Serial GC, 384 MB", ("-XX:+UseSerialGC",)),
    Profile("c2-1g", "C2, G1 (MaxGCPauseMillis=20), 1 GB heap", "c2", "1g"),
]


def free_base_port(brokers: int = 3) -> int:
    """A base port whose client and controller ports (base+1000..) are all free, away from 9092."""

    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    for _ in range(200):
        base = random.randrange(20000, 31000, 10)
        if all(free(base + i) and free(base + 1000 + i) for i in range(brokers)):
            return base
    raise RuntimeError("no free ports")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _machine_ticks() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]


def measure(profile: Profile, warmup: float, seconds: float) -> dict[str, Any]:
    """One profile on a private cluster: broker CPU per MB over ``seconds`` after ``warmup`` seconds."""
    from genesis.cluster import LocalCluster
    from genesis.demo import LSST_RETENTION
    from genesis.inject import inject, parse_rate

    rate = parse_rate(RATE)
    warm_visits = round(warmup / rate.seconds)
    visits = warm_visits + max(1, round(seconds / rate.seconds))
    payloads = message_pool()
    with tempfile.TemporaryDirectory(prefix="genesis-brokers-") as tmp:
        t0 = time.monotonic()
        cluster = LocalCluster(Path(tmp) / "c", port=free_base_port(), jvm=profile.jvm, heap=profile.heap)
        cluster.start()
        try:
            started = time.monotonic() - t0
            cluster.create_topic(TOPIC, 6, 3, LSST_RETENTION)
            pids = list(cluster.pids().values())
            ctx = Context(cluster.bootstrap_servers, cluster=cluster)
            consumer = start_consumer(
                ctx, "live", TOPIC, expect=visits * rate.alerts, per_visit=rate.alerts, timeout=30
            )
            wait_ready(consumer)
            samples: dict[int, tuple[float, float, int, float, list[int]]] = {}

            def on_visit(visit: int, report: Any) -> None:
                if visit + 1 in (warm_visits, visits):
                    samples[visit + 1] = (
                        time.monotonic(),
                        sum(cpu_seconds(p) for p in pids),
                        report.bytes,
                        cpu_seconds(os.getpid()),
                        _machine_ticks(),
                    )

            report = inject(ctx.url(TOPIC), RATE, visits=visits, payloads=payloads, on_visit=on_visit)
            seen = finish_consumer(consumer, timeout=200)
            rss = sum(_rss_mb(p) for p in pids)
        finally:
            cluster.stop()
    (w0, b0, n0, i0, m0), (w1, b1, n1, i1, m1) = samples[warm_visits], samples[visits]
    wall, mb = w1 - w0, (n1 - n0) / 1e6
    ticks = [b - a for a, b in zip(m0, m1)]
    return {
        "profile": profile.name,
        "start_s": started,
        "wall_s": wall,
        "mb": mb,
        "broker_cpu_s": b1 - b0,
        "broker_cores": (b1 - b0) / wall,
        "ms_per_mb": 1000 * (b1 - b0) / mb,
        "injector_cores": (i1 - i0) / wall,
        "machine_busy": 1 - ticks[3] / max(sum(ticks), 1),
        "rss_mb": rss,
        "p99_s": seen["latency"].get("p99"),
        "received": seen["alerts"],
        "sent": report.delivered,
        "kept_schedule": report.kept_schedule,
        "load": machine_busy(),
    }


def _recorded() -> list[dict]:
    """Every measurement recorded in RUNS (one JSON object a line)."""
    if not RUNS.exists():
        return []
    return [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]


def run(
    ctx: Context | None = None,
    rounds: int = 1,
    names: list[str] | None = None,
    warmup: float = 120,
    seconds: float = 320,
    fresh: bool = False,
) -> Section:
    """Measure ``rounds`` rounds of the ``names`` profiles; the table shows them with the rounds recorded
    before in RUNS (unless ``fresh``), every profile of PROFILES that has a measurement."""
    chosen = [p for p in PROFILES if names is None or p.name in names]
    results: dict[str, list[dict]] = {p.name: [] for p in PROFILES}
    if not fresh:
        for m in _recorded():
            if m["profile"] in results:
                results[m["profile"]].append(m)
    for r in range(rounds):
        for profile in chosen:
            print(f"  round {r + 1}, {profile.name} ...", flush=True)
            m = measure(profile, warmup, seconds)
            m["when"] = time.strftime("%Y-%m-%d %H:%M")
            results[profile.name].append(m)
            with RUNS.open("a") as out:
                out.write(json.dumps(m) + "\n")
            print(
                f"    {m['ms_per_mb']:.1f} CPU ms/MB, {m['broker_cores']:.2f} cores, start {m['start_s']:.1f} s, "
                f"p99 {m['p99_s']} s, load {m['load']:.1f}",
                flush=True,
            )
    chosen = [p for p in PROFILES if results[p.name]]
    best = {name: min(runs, key=lambda m: m["ms_per_mb"]) for name, runs in results.items() if runs}
    base = best.get("fast-start")
    rows = []
    for p in chosen:
        m = best[p.name]
        rows.append(
            [
                p.name,
                p.what,
                " / ".join(f"{x['ms_per_mb']:.1f}" for x in results[p.name]),
                m["ms_per_mb"],
                f"{m['ms_per_mb'] / base['ms_per_mb']:.2f}" if base else "",
                m["broker_cores"],
                m["start_s"],
                f"{m['rss_mb']:,.0f}",
                m["p99_s"],
                f"{m['received']:,}/{m['sent']:,}",
                f"{m['machine_busy']:.0%} / {m['load']:.1f}",
            ]
        )
    winner = min(best.values(), key=lambda m: m["ms_per_mb"])
    notes = [
        f"lowest broker CPU per MB: **{winner['profile']}** ({winner['ms_per_mb']:.1f} CPU ms per MB injected"
        + (f", {winner['ms_per_mb'] / base['ms_per_mb']:.2f}x fast-start's" if base else "")
        + ")",
        f"each profile: a private 3-broker cluster, topic of 6 partitions RF 3, one genesis consumer, "
        f"{RATE} evenly paced; {warmup:.0f} s warm-up left out, then {seconds:.0f} s measured; MB = bytes "
        "injected (each is written 3 times and read by the consumer once)",
        "cores = broker CPU s per wall s (all three JVMs); start = LocalCluster.start() until acks=all writes "
        "succeed; RSS = the three JVMs at the end; machine = share of the 2 cores not idle during the "
        "measurement / load average at the end",
        "rounds run in turn (A B C ... A B C); the best round of each is shown, every round's CPU ms/MB listed "
        f"(all recorded in bench/{RUNS.name}); rounds run "
        + ", ".join(sorted({m.get("when", "?")[:13] + "h" for runs in results.values() for m in runs})),
    ]
    return Section(
        "Broker JVM profiles: CPU per MB at the LSST rate (bench/brokers.py, run alone)",
        [
            "profile",
            "JVM",
            "CPU ms/MB per round",
            "best CPU ms/MB",
            "vs fast-start",
            "broker cores",
            "start s",
            "RSS MB",
            "p99 s",
            "received",
            "machine busy / load",
        ],
        rows,
        notes,
        ["python bench/brokers.py --rounds " + str(rounds) + (f" --profiles {','.join(names)}" if names else "")],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profiles", help=f"comma-separated subset of {', '.join(p.name for p in PROFILES)}")
    parser.add_argument("--warmup", type=float, default=120)
    parser.add_argument("--measure", type=float, default=320)
    parser.add_argument("--no-write", action="store_true", help="do not write the section into bench/RESULTS.md")
    parser.add_argument("--fresh", action="store_true", help=f"leave out the rounds recorded in {RUNS.name}")
    args = parser.parse_args()
    names = args.profiles.split(",") if args.profiles else None
    section = run(None, args.rounds, names, args.warmup, args.measure, args.fresh)
    print(section.text())
    if not args.no_write:
        write_section("brokers", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
