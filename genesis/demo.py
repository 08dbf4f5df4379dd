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
import hashlib
import multiprocessing
import os
import random
import string
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from confluent_kafka import Consumer, TopicPartition

from ._paths import alert_data_dir, cache_dir
from ._progress import ProgressBar
from .cluster import _admin

PARTITIONS = 6
#: retention of the injection topic: 1 GB per partition, 1 hour
LSST_RETENTION = {
    "retention.bytes": str(1024**3),
    "retention.ms": str(3600 * 1000),
    "segment.bytes": str(128 * 1024**2),
}


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


#: bump when the derivation of the demo sets or their encoding changes (invalidates the cache)
DEMO_FORMAT = 1


def load_messages(url: str, messages: Iterable[bytes], *, progress: bool = False) -> int:
    """Write encoded alert messages to ``url`` (acks=all); return how many."""
    from .streaming import open as gs_open

    bar = ProgressBar(progress, desc=f"loading {url.rsplit('/', 1)[-1]}")
    n = 0
    # no sticky batching: every message picks a random partition, so all partitions get their share
    with gs_open(url, "w", config={"sticky.partitioning.linger.ms": 0}) as writer:
        for message in messages:
            writer.write(message)
            n += 1
            bar.update()
    bar.close()
    return n


def demo_messages(name: str, data_dir: str | Path | None = None, *, workers: int | None = None) -> Iterator[bytes]:
    """The messages of demo set ``name``: one ZTF-style Avro container per alert.

    Encoding 20,000 alerts costs minutes of fastavro time, so the set is built once, in
    parallel, into genesis' cache (``<cache>/demo/<name>-<key>.msgs``, the key hashing the
    source data), and read from there afterwards.
    """
    path = _cached_set(name, data_dir, workers)
    with path.open("rb") as f:
        while header := f.read(4):
            yield f.read(int.from_bytes(header, "big"))


def _cache_key(name: str, data_dir: str | Path | None) -> str:
    root = Path(data_dir) if data_dir is not None else alert_data_dir()
    h = hashlib.sha1(f"{DEMO_FORMAT}:{name}".encode())
    if root is None:
        h.update(b"simulated")
    else:
        for f in sorted((root / "ztf").rglob("*.avro")):
            h.update(f"{f.relative_to(root)}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _encode_slice(job: tuple[str, str | None, int, int]) -> list[bytes]:
    from ._codecs import encode_container
    from .samples import demo_slice

    name, data_dir, start, stop = job
    return [encode_container(record, schema) for schema, record in demo_slice(name, start, stop, data_dir)]


def _cached_set(name: str, data_dir: str | Path | None, workers: int | None) -> Path:
    from .samples import DEMO_SIZES

    path = cache_dir() / "demo" / f"{name}-{_cache_key(name, data_dir)}.msgs"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    total = DEMO_SIZES[name]
    try:
        with tmp.open("wb") as out:
            for message in _build(name, data_dir, total, workers or os.cpu_count() or 1):
                out.write(len(message).to_bytes(4, "big"))
                out.write(message)
        os.replace(tmp, path)  # atomic: a concurrent builder's copy is identical
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _build(name: str, data_dir: str | Path | None, total: int, workers: int) -> Iterator[bytes]:
    if data_dir is None and alert_data_dir() is None:
        from ._codecs import encode_container
        from .samples import demo_alerts  # warns that the set is simulated

        for schema, record in demo_alerts(name):
            yield encode_container(record, schema)
        return
    step = 250
    jobs = [(name, None if data_dir is None else str(data_dir), i, min(i + step, total)) for i in range(0, total, step)]
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            yield from _encode_slice(job)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for chunk in pool.imap(_encode_slice, jobs):
            yield from chunk


def load_demo_topic(
    bootstrap: str, name: str, replication_factor: int, *, data_dir=None, progress: bool = False
) -> int:
    """Create demo topic ``name`` (6 partitions) and fill it; return the number of alerts written."""
    _admin.create_topic(_admin.admin(bootstrap), name, PARTITIONS, replication_factor, None, 60)
    return load_messages(f"kafka://{bootstrap}/{name}", demo_messages(name, data_dir), progress=progress)


def create_demo_topics(
    bootstrap: str, replication_factor: int, *, data_dir=None, say: Callable[[str], None] = print, progress: bool = True
) -> None:
    """Create and fill ``small`` and ``medium``, and create ``lsst``; topics already there are left as they are."""
    from .samples import DEMO_SIZES

    existing = set(_admin.topic_partitions(_admin.admin(bootstrap)))
    for name, size in DEMO_SIZES.items():
        if name in existing:
            have = topic_size(bootstrap, name)
            note = (
                ""
                if have == size
                else (
                    f" (it holds {have}, not {size}: delete it with `genesis cluster down` or an admin tool to reload)"
                )
            )
            say(f"topic {name!r} exists; left as it is{note}")
            continue
        t0 = time.monotonic()
        n = load_demo_topic(bootstrap, name, replication_factor, data_dir=data_dir, progress=progress)
        say(f"loaded {n} alerts into {name!r} in {time.monotonic() - t0:.1f} s")
    if "lsst" in existing:
        say("topic 'lsst' exists; left as it is")
    else:
        _admin.create_topic(_admin.admin(bootstrap), "lsst", PARTITIONS, replication_factor, LSST_RETENTION, 60)
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
    print(f"Read {len(alerts1)} then {len(alerts2)} alerts; nothing lost: {set(alerts) == set(alerts1 + alerts2)}\n")

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
