"""Benchmark: how many simultaneous users one machine serves at the LSST rate, brokers and injector included.

The LSST average is injected into ``lsst`` as Rubin sends it: 10,000-alert visits every 40 s,
evenly paced (250 alerts/s, ~20 MB/s, acks=all to replication factor 3), 3 visits per step.
Each user is a separate process with its own consumer group (``_consumers.py live --touch
candidate``: genesis decodes every alert whole and the user reads its ``candidate``). Steps of
1, 2, 4, 6 and 8 users; all on the same 2 cores as the three brokers and the injector. A user
keeps up when it received every alert and its p99 latency (send to hand-over) is below 5 s.
The CPU split: the brokers' JVMs and the injector while it injected, each user over its run, in
cores (CPU seconds per wall second; the machine has 2).
"""

from __future__ import annotations

from _common import Context, Section, inject_while_reading, machine_busy, settle, standalone

RATE, VISITS, STEPS = "10000/40s", 3, (1, 2, 4, 6, 8)
P99_LIMIT = 5.0
TARGET_USERS = 6


def keeps_up(result: dict, expected: int) -> bool:
    return result["alerts"] >= expected and result["latency"].get("p99", float("inf")) < P99_LIMIT


def run(ctx: Context, steps: tuple[int, ...] = STEPS) -> Section:
    rows, sustained, broke = [], 0, None
    for users in steps:
        calm = settle(ctx)
        meter: dict[str, float] = {}
        report, results = inject_while_reading(
            ctx,
            RATE,
            consumers=users,
            visits=VISITS,
            idle=30,
            consumer_options={"touch": "candidate"},
            meter=meter,
        )
        ok = [keeps_up(r, report.delivered) for r in results]
        wall = meter["wall"]
        user_cores = [r["cpu_seconds"] / wall for r in results]
        p99 = [r["latency"].get("p99", float("nan")) for r in results]
        rows.append(
            [
                users,
                report.delivered,
                f"{report.achieved_rate:,.0f}/s "
                + ("kept" if report.kept_schedule else f"late {report.max_late:.1f} s"),
                min(r["alerts"] for r in results),
                max(r["latency"].get("p50", float("nan")) for r in results),
                max(p99),
                f"{meter['brokers']:.2f}",
                f"{meter['injector']:.2f}",
                " ".join(f"{c:.3f}" for c in user_cores),
                f"{1000 * sum(r['cpu_seconds'] for r in results) / users / max(report.delivered, 1):.2f}",
                f"{meter['machine_busy']:.0%}",
                f"{machine_busy():.1f}",
                "yes" if all(ok) else f"no ({ok.count(False)} behind)",
            ]
        )
        print(f"  {users} users: p99 {max(p99):.2f} s, keep up: {all(ok)} (settled {calm['waited']:.0f} s)", flush=True)
        if not all(ok):
            broke = users
            break
        sustained = users
    note = (
        f"sustained {sustained} simultaneous users at the LSST rate; broke at {broke}"
        if broke
        else f"sustained all {sustained} users tried"
    )
    return Section(
        "Simultaneous users at the LSST rate (10,000-alert visits every 40 s, evenly paced)",
        [
            "users",
            "injected",
            "injector",
            "fewest received",
            "worst p50 s",
            "worst p99 s",
            "broker cores",
            "injector cores",
            "each user's cores",
            "user CPU ms/alert",
            "machine busy",
            "load",
            "keep up",
        ],
        rows,
        [
            f"{note} (target >= {TARGET_USERS}: {'met' if sustained >= TARGET_USERS else 'NOT met'}); a user keeps "
            f"up when it received every alert with p99 latency < {P99_LIMIT:.0f} s",
            f"{VISITS} visits per step; each user is a separate process (own group) decoding every alert whole "
            "(the compiled decoder) and reading its candidate; the brokers (3 JVMs) and the injector share the "
            "same 2 cores",
            "cores = CPU s per wall s of the injection; the users' CPU counts from their start to their last alert",
        ],
        [f"python bench/_consumers.py live --bootstrap {ctx.bootstrap} --topic lsst --expect N --touch candidate"],
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
