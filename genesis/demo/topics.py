"""The demo topics of the streaming notebook.

``genesis cluster up --demo`` (and ``make demo``) calls :func:`create_demo_topics`:

* ``small``: 100 alerts, ``medium``: 20,000 alerts (see :mod:`genesis.samples` for how they
  are derived from the real ZTF packets), one alert per message in a ZTF-style Avro
  container with its schema, 6 partitions, replicated;
* ``lsst``: empty, for ``genesis inject``, retention-capped so injection cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .. import _topics
from .._kafka import new_admin
from .._paths import cache_dir
from .._progress import ProgressBar
from .._urls import StreamSpec
from .data import alert_data_dir

PARTITIONS = 6
#: retention of the injection topic: 1 GB per partition, 1 hour
LSST_RETENTION = {
    "retention.bytes": str(1024**3),
    "retention.ms": str(3600 * 1000),
    "segment.bytes": str(128 * 1024**2),
}


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages currently in ``topic`` of the cluster at ``bootstrap`` (the sum over partitions)."""
    return _topics.message_count(StreamSpec.for_brokers(bootstrap), topic)


#: bump when the derivation of the demo sets or their encoding changes (invalidates the cache)
DEMO_FORMAT = 1


def load_messages(url: str, messages: Iterable[bytes], *, progress: bool = False) -> int:
    """Write encoded alert messages to ``url`` (acks=all); return how many."""
    from ..streaming import open as gs_open

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


def prepare_demo_sets(data_dir: str | Path | None = None) -> list[Path]:
    """Build the demo sets (``small``, ``medium``) into genesis' cache now, if not there yet, and
    return their files: ``make test`` does it before its workers start, so that none of them
    spends a test's time limit encoding (or waiting for) 20,000 alerts."""
    from .samples import DEMO_SIZES

    return [_cached_set(name, data_dir, None) for name in DEMO_SIZES]


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
    from .._codecs import encode_container
    from .samples import demo_slice

    name, data_dir, start, stop = job
    return [encode_container(record, schema) for schema, record in demo_slice(name, start, stop, data_dir)]


def _cached_set(name: str, data_dir: str | Path | None, workers: int | None) -> Path:
    from .samples import DEMO_SIZES

    path = cache_dir() / "demo" / f"{name}-{_cache_key(name, data_dir)}.msgs"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _only_builder(path.with_suffix(".lock")):
        if path.exists():  # another process built it while this one waited
            return path
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        total = DEMO_SIZES[name]
        try:
            with tmp.open("wb") as out:
                for message in _build(name, data_dir, total, workers or os.cpu_count() or 1):
                    out.write(len(message).to_bytes(4, "big"))
                    out.write(message)
            os.replace(tmp, path)  # atomic: a reader never sees half a set
        finally:
            tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _only_builder(lock_path: Path) -> Iterator[None]:
    """One process at a time builds a set (several test workers or notebooks loading at once would
    each spend minutes of CPU on the same file); the others wait, then read its file. Where file
    locks do not exist (Windows), each builds its own copy, as before."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with lock_path.open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(name: str, data_dir: str | Path | None, total: int, workers: int) -> Iterator[bytes]:
    if data_dir is None and alert_data_dir() is None:
        from .._codecs import encode_container
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
    _topics.create_topic(
        new_admin(StreamSpec.for_brokers(bootstrap)), name, PARTITIONS, replication_factor, brokers=bootstrap
    )
    return load_messages(f"kafka://{bootstrap}/{name}", demo_messages(name, data_dir), progress=progress)


def create_demo_topics(
    bootstrap: str, replication_factor: int, *, data_dir=None, say: Callable[[str], None] = print, progress: bool = True
) -> None:
    """Create and fill ``small`` and ``medium``, and create ``lsst``; topics already there are left as they are."""
    from .samples import DEMO_SIZES

    spec = StreamSpec.for_brokers(bootstrap)
    admin = new_admin(spec)
    existing = set(_topics.topic_names(admin))
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
        _topics.create_topic(admin, "lsst", PARTITIONS, replication_factor, LSST_RETENTION, brokers=bootstrap)
        say("created topic 'lsst' (empty, for `genesis inject`; retention 1 GB/partition, 1 hour)")
