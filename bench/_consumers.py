"""The consumers the benchmarks time, one per process: ``python bench/_consumers.py KIND --bootstrap B --topic T``.

Each reads ``topic`` into Python dicts (``raw``: bytes only) with a fresh group, prints ``READY``
once it reads, and finally one JSON line: alerts, bytes, wall seconds from the first alert to
the last (``seconds``; ``total_seconds`` includes joining the group), and CPU seconds of the
process and its children. ``adc`` and ``hop`` run in the peers' venv (bench/.peers), which
has no genesis, so this file imports genesis only inside the genesis kinds.

Kinds: ``genesis`` (``--fastavro 1``: with ``genesis.Decoder(compiled=False)``), ``genesis-fields``
(``stream(fields=("objectId", "candidate"))``), ``genesis-asteroids`` (``gs.Pool(2)`` + the
notebook's asteroid filter, ``genesis.filters.filter_asteroids``), ``genesis-asteroids-inline``
(the same filter without a pool), ``handwritten`` (confluent-kafka + ``fastavro.reader``), ``raw`` (confluent-kafka, no
decoding), ``adc`` (adc-streaming + fastavro in user code), ``hop`` (hop-client; its Blob
payload decoded with fastavro in user code), ``live`` (genesis on a topic being injected:
latency from the ``genesis.sent_ns`` header and per-visit completion; ends after
``--expect`` alerts or ``--timeout`` idle seconds; ``--touch candidate`` reads that field of
every alert, ``--fields`` passes ``stream(fields=...)``, ``--query SQL`` reads the rows of that push
query instead, ``{url}`` in it standing for the topic's URL). The SQL kinds (bench/query.py):
``query-where`` (the issue's example: three columns of the known asteroids brighter than 19),
``python-where`` (the same condition and columns in Python, with declared fields), ``query-projection``
(the three columns of every alert), ``query-star`` (``SELECT *`` of the alerts brighter than 18:
whole alerts) and ``python-star`` (the same in Python, with declared fields).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _group() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _ready() -> None:
    print("READY", flush=True)


# --------------------------------------------------------------------------- throughput kinds
# Each yields (alert_or_bytes, message_bytes) until the end of every partition.


def _genesis(args: argparse.Namespace, **loop: Any) -> Iterator[tuple[Any, int]]:
    """genesis' stream from the earliest offset to the end: each alert with its message's bytes."""
    import genesis
    import genesis.streaming as gs

    with gs.open(f"kafka://{args.bootstrap}/{args.topic}", start_at="earliest") as stream:
        if args.fastavro:
            stream.decoder = genesis.Decoder(compiled=False)
        _ready()
        last = 0
        for _, alert in stream(until_eos=True, timeout=args.timeout, **loop):
            size = stream.stats.bytes
            yield alert, size - last
            last = size


def genesis_alerts(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    return _genesis(args)


def genesis_fields(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    """Only ``objectId`` and ``candidate`` of each alert: decoded only as far as ``candidate``."""
    return _genesis(args, fields=("objectId", "candidate"))


def _asteroids(args: argparse.Namespace, workers: int) -> Iterator[tuple[Any, int]]:
    import genesis.streaming as gs
    from genesis.filters import filter_asteroids

    pool = gs.Pool(workers) if workers else None
    try:
        if pool is not None:  # the workers start before the clock does
            list(pool.imap(abs, range(4 * workers)))
        with gs.open(f"kafka://{args.bootstrap}/{args.topic}", start_at="earliest") as stream:
            _ready()
            for _, alert in stream(until_eos=True, timeout=args.timeout, pool=pool, filter=filter_asteroids):
                yield alert, 0
            stats = stream.stats
            args.bytes_total = stats.bytes
            args.alerts_total = stats.alerts
    finally:
        if pool is not None:
            pool.close()


def genesis_asteroids(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    """The notebook's asteroid filter (``genesis.filters.filter_asteroids``) in ``gs.Pool(2)``'s workers."""
    return _asteroids(args, 2)


def genesis_asteroids_inline(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    """The same filter in the consumer's own process."""
    return _asteroids(args, 0)


#: the SQL kinds' queries ({url}: the topic); python_where and python_star are the same in Python
WHERE = "candidate.ssnamenr <> 'null' AND candidate.magpsf < 19"
COLUMNS = "objectId, candid, candidate.magpsf AS mag"
QUERIES = {
    "query-where": f"SELECT {COLUMNS} FROM '{{url}}' WHERE {WHERE}",
    "query-projection": f"SELECT {COLUMNS} FROM '{{url}}'",
    "query-star": "SELECT * FROM '{url}' WHERE candidate.magpsf < 18",
}


def _query(args: argparse.Namespace, sql: str) -> Iterator[tuple[Any, int]]:
    import genesis.streaming as gs

    with gs.query(sql.format(url=f"kafka://{args.bootstrap}/{args.topic}"), start_at="earliest") as q:
        _ready()
        for _, row in q(until_eos=True, timeout=args.timeout):
            yield row, 0
        args.bytes_total, args.alerts_total = q.stats.bytes, q.stats.alerts


def query_where(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    return _query(args, QUERIES["query-where"])


def query_projection(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    return _query(args, QUERIES["query-projection"])


def query_star(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    return _query(args, QUERIES["query-star"])


def _python(
    args: argparse.Namespace, keep: Callable[[dict], bool], row: Callable[[dict], Any]
) -> Iterator[tuple[Any, int]]:
    """The query's condition as a filter that declares it reads ``candidate`` (decoded that far)."""
    import genesis.streaming as gs

    flt = gs.Filter(keep, fields=("candidate",))
    with gs.open(f"kafka://{args.bootstrap}/{args.topic}", start_at="earliest") as stream:
        _ready()
        for _, alert in stream(until_eos=True, timeout=args.timeout, filter=flt):
            yield row(alert), 0
        args.bytes_total, args.alerts_total = stream.stats.bytes, stream.stats.alerts


def python_where(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    keep = lambda a: a["candidate"]["ssnamenr"] != "null" and a["candidate"]["magpsf"] < 19
    row = lambda a: {"objectId": a["objectId"], "candid": a["candid"], "mag": a["candidate"]["magpsf"]}
    return _python(args, keep, row)


def python_star(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    return _python(args, lambda a: a["candidate"]["magpsf"] < 18, lambda a: a)


def _confluent(args: argparse.Namespace, extra: dict | None = None) -> Iterator[Any]:
    """Messages from a plain confluent-kafka consumer, until every assigned partition hit its end."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": _group(),
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            **(extra or {}),
        }
    )
    consumer.subscribe([args.topic])
    _ready()
    eof: set[int] = set()
    try:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            assigned = consumer.assignment()
            if assigned and len(eof) >= len(assigned):
                return
            for msg in consumer.consume(500, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition())
                    continue
                eof.discard(msg.partition())
                deadline = time.monotonic() + args.timeout
                yield msg
    finally:
        consumer.close()


def handwritten(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    import fastavro

    for msg in _confluent(args):
        value = msg.value()
        yield next(fastavro.reader(io.BytesIO(value))), len(value)


def raw(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    for msg in _confluent(args):
        value = msg.value()
        yield value, len(value)


def adc(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    import fastavro
    from adc.consumer import Consumer, ConsumerConfig

    consumer = Consumer(ConsumerConfig(broker_urls=args.bootstrap.split(","), group_id=_group(), read_forever=False))
    consumer.subscribe(args.topic)
    _ready()
    try:
        for msg in consumer.stream():
            value = msg.value()
            yield next(fastavro.reader(io.BytesIO(value))), len(value)
    finally:
        consumer.close()


def hop(args: argparse.Namespace) -> Iterator[tuple[Any, int]]:
    import fastavro
    from hop.io import StartPosition, Stream

    first_broker = args.bootstrap.split(",")[0]  # hop takes one broker address
    stream = Stream(auth=False, start_at=StartPosition.EARLIEST, until_eos=True)
    with stream.open(f"kafka://{first_broker}/{args.topic}", "r", group_id=_group()) as consumer:
        _ready()
        for blob in consumer.read():  # no _format header: hop hands over a Blob of the raw bytes
            value = blob.content
            yield next(fastavro.reader(io.BytesIO(value))), len(value)


def throughput(source: Callable[[argparse.Namespace], Iterator[tuple[Any, int]]], args: argparse.Namespace) -> dict:
    t0 = time.monotonic()
    cpu0 = _cpu()
    n = size = 0
    first = last = None
    for _, nbytes in source(args):
        now = time.monotonic()
        first = first or now
        last = now
        n += 1
        size += nbytes
    end = time.monotonic()
    cpu = _cpu() - cpu0
    alerts = getattr(args, "alerts_total", n)
    size = getattr(args, "bytes_total", size)
    span = (last - first) if first and last and last > first else end - t0
    return {
        "kind": args.kind,
        "alerts": alerts,
        "yielded": n,
        "bytes": size,
        "seconds": span,
        "total_seconds": end - t0,
        "cpu_seconds": cpu,
        "alerts_per_s": alerts / span if span else 0.0,
        "mb_per_s": size / 1e6 / span if span else 0.0,
    }


# --------------------------------------------------------------------------- live (latency, users)


def live(args: argparse.Namespace) -> dict:
    """Latency of alerts injected while reading: now - genesis.sent_ns, and per-visit completion."""
    from datetime import datetime, timezone

    import genesis.streaming as gs

    url = f"kafka://{args.bootstrap}/{args.topic}"
    latencies: list[float] = []
    sends: list[int] = []
    sent_by_visit: dict[int, list[int]] = {}
    received_by_visit: dict[int, list[int]] = {}
    seen: set[bytes] = set()
    duplicates = 0
    fields = tuple(args.fields.split(",")) if args.fields else None
    touch = args.touch
    cpu0 = _cpu()
    now_utc = datetime.now(timezone.utc)
    opened = gs.query(args.query.format(url=url), start_at=now_utc) if args.query else gs.open(url, start_at=now_utc)
    with opened as stream:
        announced = False
        deadline = time.monotonic() + args.timeout + 600
        while len(latencies) < args.expect and time.monotonic() < deadline:
            loop = {"metadata": True} if args.query else {"metadata": True, "fields": fields}
            for _, alert, meta in stream(timeout=0.5 if not announced else args.timeout, **loop):
                if touch:
                    alert[touch]  # what a user's code reads
                now = time.time_ns()
                headers = dict(meta.headers)
                if headers["genesis.id"] in seen:
                    duplicates += 1
                    continue
                seen.add(headers["genesis.id"])
                sent, visit = int(headers["genesis.sent_ns"]), int(headers["genesis.visit"])
                latencies.append((now - sent) / 1e9)
                sends.append(sent)
                sent_by_visit.setdefault(visit, []).append(sent)
                received_by_visit.setdefault(visit, []).append(now)
                if len(latencies) >= args.expect:
                    break
            if not announced and (stream.stream if args.query else stream).assignment:
                announced = True
                _ready()
            elif announced:
                break  # idle for args.timeout seconds
    return {
        "kind": "live",
        "alerts": len(latencies),
        "duplicates": duplicates,
        "cpu_seconds": _cpu() - cpu0,
        "latency": _percentiles(latencies),
        # the alerts sent in the first 5 s (while the consumer's first fetches start) and the rest
        "latency_first_5s": _percentiles([x for x, t in zip(latencies, sends) if t - min(sends) < 5e9]),
        "latency_after_5s": _percentiles([x for x, t in zip(latencies, sends) if t - min(sends) >= 5e9]),
        "visits": {
            str(v): _visit(sent_by_visit[v], received_by_visit[v], args.per_visit) for v in sorted(sent_by_visit)
        },
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1], "n": len(ordered)}


def _visit(sent: list[int], received: list[int], expected: int) -> dict[str, Any]:
    """Seconds from the visit's first send until 98% / 100% of its ``expected`` alerts were received,
    and its lag: last receipt minus last send."""
    start, arrivals = min(sent), sorted(received)
    at = lambda share: (
        (arrivals[math.ceil(share * expected) - 1] - start) / 1e9
        if len(arrivals) >= math.ceil(share * expected)
        else None
    )
    return {"alerts": len(arrivals), "t98_s": at(0.98), "t100_s": at(1.0), "lag_s": (arrivals[-1] - max(sent)) / 1e9}


def profile(args: argparse.Namespace) -> dict:
    """cProfile (CPU time) of genesis' loop over the first ``--limit`` alerts: the functions with most own time."""
    import cProfile
    import pstats

    import genesis.streaming as gs

    with gs.open(f"kafka://{args.bootstrap}/{args.topic}", start_at="earliest") as stream:
        _ready()
        for _ in stream(limit=1, timeout=args.timeout):  # join the group outside the profile
            pass
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine may be busy
        t0 = time.monotonic()
        profiler.enable()
        n = 1 + sum(1 for _ in stream(limit=args.limit - 1, timeout=args.timeout))
        profiler.disable()
        seconds = time.monotonic() - t0
    stats = pstats.Stats(profiler).stats
    total = sum(row[2] for row in stats.values())
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:8]
    return {
        "kind": "profile",
        "alerts": n,
        "seconds": seconds,
        "top": [
            {"function": f"{Path(f).name}:{line}({name})", "calls": row[1], "tottime": row[2], "share": row[2] / total}
            for (f, line, name), row in top
        ],
    }


KINDS: dict[str, Callable[[argparse.Namespace], Iterator[tuple[Any, int]]]] = {
    "genesis": genesis_alerts,
    "genesis-fields": genesis_fields,
    "genesis-asteroids": genesis_asteroids,
    "genesis-asteroids-inline": genesis_asteroids_inline,
    "handwritten": handwritten,
    "query-where": query_where,
    "query-projection": query_projection,
    "query-star": query_star,
    "python-where": python_where,
    "python-star": python_star,
    "raw": raw,
    "adc": adc,
    "hop": hop,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=[*KINDS, "live", "profile"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="medium")
    parser.add_argument("--timeout", type=float, default=30, help="idle seconds before giving up")
    parser.add_argument("--expect", type=int, default=0, help="live: stop after this many alerts")
    parser.add_argument("--limit", type=int, default=5000, help="profile: alerts to profile")
    parser.add_argument("--per-visit", type=int, default=10000, help="live: alerts per visit")
    parser.add_argument("--fastavro", type=int, default=0, help="genesis kinds: 1 = decode with fastavro")
    parser.add_argument("--touch", default="", help="live: read this field of every alert (e.g. candidate)")
    parser.add_argument("--fields", default="", help="live: stream(fields=...), comma-separated")
    parser.add_argument("--query", default="", help="live: the rows of this push query ({url}: the topic)")
    args = parser.parse_args()
    special = {"live": live, "profile": profile}
    result = special[args.kind](args) if args.kind in special else throughput(KINDS[args.kind], args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
