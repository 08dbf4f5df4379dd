"""A long night: 200,000 alerts injected at 10x the LSST rate, read by one stream that commits every
1,000, its RSS, threads and open files sampled every 20,000 — inline and with gs.Pool(2).

The two readers run at once, each in its own process (so each has its own RSS), while the
injector sends LSST-sized alerts (real ZTF packets lengthened to ~82 KB, new ids each) into a
retention-capped topic. After the first 40,000 alerts (caches warm, librdkafka's queues full)
the RSS may not grow by 50 MB, and the thread and descriptor counts may not grow at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers import record

pytestmark = pytest.mark.slow

TOTAL, EVERY, WARM = 200_000, 20_000, 40_000

#: the night (injector and readers) is bench/longnight.py's; make bench runs it over 1,000,000 alerts
LONGNIGHT = Path(__file__).resolve().parents[2] / "bench" / "longnight.py"


def _longnight():
    """bench/longnight.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("longnight", LONGNIGHT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_long_night_does_not_grow(cluster):
    # RF 1: the client's memory is under test, not the brokers' replication; retention capped (but
    # above what the run writes, so a reader that falls behind on a busy machine reads late, never
    # finds its next alerts deleted)
    results = _longnight().night(
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
        warm = [s for s in samples if s["alerts"] >= WARM]
        growth = warm[-1]["rss"] - warm[0]["rss"]
        record(
            "abuse-memory",
            {
                "reader": name,
                "alerts": [s["alerts"] for s in samples],
                "rss_mb": [round(s["rss"] / 2**20, 1) for s in samples],
                "threads": [s["threads"] for s in samples],
                "fds": [s["fds"] for s in samples],
                "injected_per_s": round(result["injected_per_s"]),
            },
        )
        assert growth < 50 * 2**20, f"{name}: RSS grew {growth / 2**20:.0f} MB after {WARM:,} alerts"
        assert max(s["threads"] for s in warm) <= warm[0]["threads"], (name, [s["threads"] for s in samples])
        assert max(s["fds"] for s in warm) <= warm[0]["fds"], (name, [s["fds"] for s in samples])
