"""Benchmark 3: how many independent users (consumer groups, one process each, decoding every alert)
one machine sustains at the LSST average rate before their lag grows visit over visit.

The LSST average (250 alerts/s) is injected as 2,500-alert visits every 10 s (same rate, shorter
visits, so each step takes ~40 s); 1, 2, 4, 8 users, 3 visits each, stopping at the first
failure. A user keeps up when it received every alert and its lag (last receipt minus last
send of a visit) did not grow by more than 1 s from the first visit to the last.
"""

from __future__ import annotations

from _common import Context, Section, inject_while_reading, machine_busy, standalone

RATE, VISITS, STEPS = "2500/10s", 3, (1, 2, 4, 8)


def keeps_up(result: dict, expected: int) -> bool:
    lags = [v["lag_s"] for v in result["visits"].values()]
    return result["alerts"] == expected and len(lags) == VISITS and lags[-1] <= lags[0] + 1.0


def run(ctx: Context) -> Section:
    rows, sustained, broke = [], 0, None
    for users in STEPS:
        report, results = inject_while_reading(ctx, RATE, consumers=users, visits=VISITS, idle=30)
        ok = [keeps_up(r, report.delivered) for r in results]
        lags = [[v["lag_s"] for v in r["visits"].values()] for r in results]
        worst = [max(lag[i] for lag in lags if len(lag) > i) for i in range(VISITS)]
        rows.append(
            [
                users,
                report.delivered,
                min(r["alerts"] for r in results),
                " / ".join(f"{x:.1f}" for x in worst),
                max(r["latency"].get("p99", 0) for r in results),
                f"{machine_busy():.1f}",
                "yes" if all(ok) else f"no ({ok.count(False)} behind)",
            ]
        )
        if not all(ok):
            broke = users
            break
        sustained = users
    note = (
        f"sustained {sustained} simultaneous users at the LSST average rate; broke at {broke}"
        if broke
        else f"sustained all {sustained} users tried"
    )
    return Section(
        "Simultaneous users at the LSST rate (250 alerts/s)",
        ["users", "injected", "fewest received", "worst lag per visit s", "worst p99 s", "load avg", "keep up"],
        rows,
        [
            note,
            "each user is a separate process decoding every alert; the brokers and the injector share the same 2 cores",
        ],
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
