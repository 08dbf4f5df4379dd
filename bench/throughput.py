"""Benchmark 1: alerts/s and MB/s reading the 20,000-alert ``medium`` topic into Python dicts.

Every consumer runs in its own process with a fresh group, from the earliest offset to the end
of every partition: genesis, a hand-written confluent-kafka + ``fastavro.reader`` loop,
adc-streaming and hop-client (fastavro decoding in user code; from bench/.peers), the raw
transport (bytes, no decoding), and genesis with ``gs.Pool(2)`` and the notebook's asteroid
filter (survivors only come back).
"""

from __future__ import annotations

from _common import Context, Section, standalone

KINDS = [
    ("genesis", "genesis"),
    ("handwritten", "confluent-kafka + fastavro.reader"),
    ("adc", "adc-streaming + fastavro"),
    ("hop", "hop-client + fastavro"),
    ("raw", "raw transport (bytes, no decode)"),
    ("genesis-asteroids", "genesis, Pool(2), asteroid filter"),
]
TOPIC = "medium"
TARGET_FILTER_RATE = 2500  # 10x the LSST average, through the asteroid filter


def run(ctx: Context) -> Section:
    results = {kind: ctx.consume(kind, TOPIC) for kind, _ in KINDS}
    base = results["handwritten"]["alerts_per_s"]
    rows = [
        [
            label,
            r["alerts"],
            r["bytes"] / 1e6,
            r["seconds"],
            r["alerts_per_s"],
            r["mb_per_s"],
            1000 * r["cpu_seconds"] / max(r["alerts"], 1),
            r["alerts_per_s"] / base,
        ]
        for (kind, label), r in ((k, results[k[0]]) for k in KINDS)
    ]
    rate = lambda kind: results[kind]["alerts_per_s"]  # noqa: E731
    notes = [
        f"genesis / hand-written = {rate('genesis') / base:.2f}x (target >= 1.0x)",
        f"genesis / adc-streaming = {rate('genesis') / rate('adc'):.2f}x, genesis / hop-client = "
        f"{rate('genesis') / rate('hop'):.2f}x (target >= 1.3x)",
        f"genesis / raw transport = {rate('genesis') / rate('raw'):.2f}: decoding is the rest",
        f"asteroid filter on gs.Pool(2): {rate('genesis-asteroids'):,.0f} alerts/s "
        f"(target {TARGET_FILTER_RATE:,}: {'reached' if rate('genesis-asteroids') >= TARGET_FILTER_RATE else 'NOT reached'})",
    ]
    return Section(
        "Throughput: reading medium (20,000 alerts) into dicts",
        ["consumer", "alerts", "MB", "s", "alerts/s", "MB/s", "CPU s/1000", "vs hand-written"],
        rows,
        notes,
        [f"python bench/_consumers.py {k} --bootstrap {ctx.bootstrap} --topic {TOPIC}" for k, _ in KINDS],
    )


if __name__ == "__main__":
    raise SystemExit(standalone(run))
