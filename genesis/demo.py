"""The demo topics of the streaming notebook, and a walk through its cells.

``genesis cluster up --demo`` (and ``make demo``) calls :func:`create_demo_topics`:

* ``small``: 100 alerts, ``medium``: 20,000 alerts (see :mod:`genesis.samples` for how they
  are derived from the real ZTF packets), one alert per message in a ZTF-style Avro
  container with its schema, 6 partitions, replicated;
* ``lsst``: empty, for ``genesis inject``, retention-capped so injection cannot fill the disk.

``python -m genesis.demo`` then streams from them as the notebook does and prints what it saw.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from typing import Callable

from confluent_kafka import Consumer, TopicPartition

from .cluster import _admin

PARTITIONS = 6
#: retention of the injection topic: 1 GB per partition, 1 hour
LSST_RETENTION = {"retention.bytes": str(1024**3), "retention.ms": str(3600 * 1000),
                  "segment.bytes": str(128 * 1024**2)}


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages currently in ``topic`` (sum over partitions of high - low watermark)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "genesis-topic-size"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in parts:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        c.close()


def load_alerts(url: str, alerts, *, progress: bool = False) -> int:
    """Write ``(schema, record)`` pairs to ``url``, one alert per Avro container message."""
    from ._codecs import encode_container
    from .streaming import open as gs_open

    n = 0
    with gs_open(url, "w") as writer:
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc=f"loading {url.rsplit('/', 1)[-1]}", unit=" alerts", mininterval=0.5)
        for schema, record in alerts:
            writer.write(encode_container(record, schema))
            n += 1
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
    return n


def create_demo_topics(bootstrap: str, replication_factor: int, *, data_dir=None,
                       say: Callable[[str], None] = print, progress: bool = True) -> None:
    """Create and fill ``small`` and ``medium``, and create ``lsst``; topics already there are left as they are."""
    from .samples import DEMO_SIZES, demo_alerts

    admin = _admin.admin(bootstrap)
    existing = set(_admin.topic_partitions(admin))
    for name, size in DEMO_SIZES.items():
        if name in existing:
            have = topic_size(bootstrap, name)
            note = "" if have == size else (f" (it holds {have}, not {size}: delete it with "
                                            f"`genesis cluster down` or an admin tool to reload)")
            say(f"topic {name!r} exists; left as it is{note}")
            continue
        _admin.create_topic(admin, name, PARTITIONS, replication_factor, None, 60)
        t0 = time.monotonic()
        n = load_alerts(f"kafka://{bootstrap}/{name}", demo_alerts(name, data_dir), progress=progress)
        say(f"loaded {n} alerts into {name!r} in {time.monotonic() - t0:.1f} s")
    if "lsst" in existing:
        say("topic 'lsst' exists; left as it is")
    else:
        _admin.create_topic(admin, "lsst", PARTITIONS, replication_factor, LSST_RETENTION, 60)
        say("created topic 'lsst' (empty, for `genesis inject`; retention 1 GB/partition, 1 hour)")


def walkthrough(host: str = "localhost") -> None:
    """The notebook's cells from "Simple Streaming" to "Robustness", bounded so they run unattended."""
    import genesis.streaming as gs
    from .filters import filter_asteroids, is_transient

    base = f"kafka://{host}"
    print("# The first cell waits for new alerts (a fresh group starts at the end); bounded to 5 s here:")
    with gs.open(f"{base}/small") as stream:
        n = sum(1 for _ in stream(timeout=5))
    print(f"received {n} alerts (nothing new was injected)\n")

    print("# start_at='earliest': everything the topic has")
    with gs.open(f"{base}/small", start_at="earliest") as stream:
        alerts = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
    alerts.sort()
    print(f"Read {len(alerts)} alerts.\nFirst few candidate IDs: {alerts[:3]}\n")

    id = "".join(random.choices(string.ascii_uppercase + string.digits, k=8))
    broker_url = f"kafka://{id}@{host}/small"
    print(f"# Remembering offsets with consumer ID {id}: 25 alerts, commit, then the rest")
    with gs.open(broker_url, start_at="earliest") as stream:
        alerts1 = [alert["candid"] for _, alert in stream(limit=25, progress=True)]
        stream.commit()
    with gs.open(broker_url, start_at="earliest") as stream:
        alerts2 = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
        stream.commit()
    print(f"Read {len(alerts1)} then {len(alerts2)} alerts; nothing lost: "
          f"{set(alerts) == set(alerts1 + alerts2)}\n")

    print("# Filtering medium for asteroids")
    with gs.open(f"{base}/medium", start_at="earliest") as stream:
        for idx, alert in stream(limit=10, timeout=10, progress=True, filter=filter_asteroids):
            print(f"[{idx}] Candidate ID: {alert['candid']} {alert['candidate']['ssnamenr']}")

    print("\n# Bellm's transient filter, on 2 worker processes")
    with gs.Pool(2) as workers:
        with gs.open(f"{base}/medium", start_at="earliest") as stream:
            for idx, alert in stream(pool=workers, limit=10, timeout=10, progress=True, filter=is_transient):
                print(f"[{idx}] Candidate ID: {alert['candid']}")

    print("\n# All of medium")
    t0 = time.monotonic()
    with gs.open(f"{base}/medium", start_at="earliest") as stream:
        n = sum(1 for _ in stream(timeout=10, progress=True))
    took = time.monotonic() - t0 - 10  # the stream ends after 10 idle seconds
    print(f"read {n} alerts ({n / max(took, 1e-3):,.0f} alerts/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genesis.demo", description=walkthrough.__doc__)
    parser.add_argument("--host", default="localhost", help="broker host[:port] (default: localhost)")
    walkthrough(parser.parse_args(argv).host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
