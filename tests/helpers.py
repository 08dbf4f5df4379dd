"""Helpers the tests share (on ``sys.path`` through pytest's ``pythonpath``): comparing decoded alerts."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any


def same(a: Any, b: Any) -> bool:
    """Deep equality where NaN equals NaN (real alerts hold NaNs), types must match (1 != 1.0,
    True != 1) and dict key order counts (a decoder must give fastavro's order)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """:func:`same` as an assertion that says where the two differ (and compares reprs of leaves)."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{path}: keys differ"
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{path}: {len(got)} items != {len(want)}"
        for i, (x, y) in enumerate(zip(got, want)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), f"{path}: {got!r} is not NaN"
    else:
        assert got == want and repr(got) == repr(want), f"{path}: {got!r} != {want!r}"


def record(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Append ``row`` to ``build/<table>.json`` and print it: the tables of failures the tests ran
    (fault, times, expected, received, duplicates, lost) are read from there into the notes.
    Under a lock: pytest-xdist's workers record into the same tables."""
    import fcntl
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "build" / f"{table}.json"
    path.parent.mkdir(exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*rows, row], indent=1) + "\n")
    print(f"\n{table.upper()} {json.dumps(row)}")
    return row


def fault_row(fault: str, times: int, expected: set[Any], received: list[Any], **extra: Any) -> dict[str, Any]:
    """One row of a failure table: how much came, how much twice, how much never."""
    return {
        "fault": fault,
        "times": times,
        "expected": len(expected),
        "received": len(received),
        "duplicates": len(received) - len(set(received)),
        "lost": len(expected - set(received)),
        **extra,
    }


def read_topic(bootstrap: str, topic: str, isolation: str = "read_committed", settle: float = 3.0) -> list:
    """Every message of ``topic`` as a plain client with ``isolation`` sees it, once every partition
    stayed at its end for ``settle`` s (the commit markers of a just-finished transaction are
    written right after commit_transaction returns: an end of partition seen before them is early)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list = []
        ended: dict[int, float] = {}
        deadline = time.monotonic() + 60
        while len(ended) < len(parts) or time.monotonic() - max(ended.values()) < settle:
            assert time.monotonic() < deadline, f"{topic} not read to its end within 60 s"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                ended.setdefault(msg.partition(), time.monotonic())
            else:
                ended.pop(msg.partition(), None)
                out.append(msg)
        return out
    finally:
        consumer.close()


#: source of ``peak_rss()``, for a test's subprocess: the process's peak RSS in bytes. VmHWM, not
#: ru_maxrss: Linux carries ru_maxrss over from the parent at exec, so a big pytest process would
#: set the child's peak
PEAK_RSS = """
def peak_rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
"""
