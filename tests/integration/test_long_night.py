"""A long night: 200,000 alerts injected at 10x the LSST rate, read by one stream that commits every
1,000, its RSS, threads and open files sampled every 1,000 — inline and with gs.Pool(2).

The two readers run at once, each in its own process (so each has its own RSS), while the
injector sends LSST-sized alerts (real ZTF packets lengthened to ~82 KB, new ids each) into a
retention-capped topic. After the first 40,000 alerts (caches warm, librdkafka's queues full) the
least-squares line through the RSS samples must rise by less than 20 MB per 100,000 alerts (one
sample against another said little: buffers filling and draining move single samples both ways),
and the thread and descriptor counts may not grow at all. librdkafka's buffers are capped for the
readers (bench/longnight.py says why), so that the samples show what the client keeps.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import record

pytestmark = pytest.mark.slow

TOTAL, EVERY = 200_000, 1_000

#: the night (injector and readers) is bench/longnight.py's; make bench runs it over 1,000,000 alerts
LONGNIGHT = Path(__file__).resolve().parents[2] / "bench" / "longnight.py"


def _longnight():
    """bench/longnight.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("longnight", LONGNIGHT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# 140 s alone; 300 s (the suite's hang guard) was once reached with the nemesis loading both cores
@pytest.mark.timeout(720)
def test_a_long_night_does_not_grow(cluster):
    # RF 1: the client's memory is under test, not the brokers' replication; retention capped (but
    # above what the run writes, so a reader that falls behind on a busy machine reads late, never
    # finds its next alerts deleted)
    longnight = _longnight()
    results = longnight.night(
        f"kafka://{cluster.bootstrap_servers}",
        lambda topic, config: cluster.create_topic(topic, partitions=6, replication_factor=1, config=config),
        cluster.delete_topic,
        TOTAL,
        EVERY,
    )
    for name, result in results.items():
        assert result["delivered"] == TOTAL, (name, result["delivered"])
        assert result["received"] == result["distinct"] == TOTAL, (name, result["received"], result["distinct"])
        samples = result["samples"]
        assert [s["alerts"] for s in samples] == list(range(EVERY, TOTAL + 1, EVERY))
        warm = [s for s in samples if s["alerts"] >= longnight.WARM]
        trend = longnight.rss_trend(samples)
        record(
            "abuse-memory",
            {
                "reader": name,
                "alerts": [s["alerts"] for s in samples if s["alerts"] % 10_000 == 0],
                "rss_mb": [round(s["rss"] / 2**20, 1) for s in samples if s["alerts"] % 10_000 == 0],
                "threads": sorted({s["threads"] for s in samples}),
                "fds": sorted({s["fds"] for s in samples}),
                "injected_per_s": round(result["injected_per_s"]),
                "slope_mb_per_100k": round(trend.slope, 2),
                "spread_mb": round(trend.spread, 2),
                "python_blocks": [s["blocks"] for s in samples if s["alerts"] % 20_000 == 0],
            },
        )
        assert trend.slope < longnight.MAX_SLOPE_MB, (
            f"{name}: RSS rises {trend.slope:.1f} MB per 100,000 alerts after {longnight.WARM:,} "
            f"(spread {trend.spread:.1f} MB): "
            f"{[round(s['rss'] / 2**20) for s in samples if s['alerts'] % 10_000 == 0]}"
        )
        assert max(s["threads"] for s in warm) <= warm[0]["threads"], (name, sorted({s["threads"] for s in samples}))
        assert max(s["fds"] for s in warm) <= warm[0]["fds"], (name, sorted({s["fds"] for s in samples}))
