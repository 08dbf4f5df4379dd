"""Benchmark 4: CPU seconds per 1,000 alerts, genesis vs the hand-written loop, and where genesis' time goes.

CPU is ``getrusage`` (self + children) in each consumer process, reading ``medium``; runs made by
the throughput benchmark are reused. The profile is cProfile over genesis' consumer loop on
the first 5,000 alerts of ``medium``.
"""

from __future__ import annotations

from _common import Context, Section, finish_consumer, standalone, start_consumer

KINDS = [
    ("genesis", "genesis"),
    ("handwritten", "confluent-kafka + fastavro.reader"),
    ("raw", "raw transport (no decode)"),
]


def run(ctx: Context) -> Section:
    results = {kind: ctx.consume(kind, "medium") for kind, _ in KINDS}
    per = {k: 1000 * r["cpu_seconds"] / r["alerts"] for k, r in results.items()}
    rows = [
        [label, results[k]["alerts"], results[k]["cpu_seconds"], per[k], per[k] / per["handwritten"]]
        for k, label in KINDS
    ]
    profile = finish_consumer(start_consumer(ctx, "profile", "medium", limit=5000))
    notes = [
        f"genesis costs {per['genesis'] / per['handwritten']:.2f}x the hand-written loop's CPU per alert; "
        f"the transport alone is {per['raw']:.2f} CPU s per 1,000",
        f"cProfile, genesis loop, {profile['alerts']} alerts, {profile['seconds']:.1f} s under the profiler "
        "(top functions by own time):",
    ]
    notes += [
        f"`{row['function']}`: {row['tottime']:.2f} s own ({100 * row['share']:.0f}%), {row['calls']:,} calls"
        for row in profile["top"]
    ]
    return Section(
        "Cost per alert: CPU seconds per 1,000 alerts (reading medium)",
        ["consumer", "alerts", "CPU s", "CPU s / 1000", "vs hand-written"],
        rows,
        notes,
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
