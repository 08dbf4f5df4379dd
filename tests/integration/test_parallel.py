"""Parallel filtering on the real cluster: same alerts as serial, order per partition, at-least-once commits."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest

import genesis.streaming as gs
from genesis import errors
from genesis.demo import PARTITIONS, demo_messages, load_messages
from genesis.samples import DEMO_SIZES, real_ztf_alerts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # setup may start the cluster

SMALL, MEDIUM = DEMO_SIZES["small"], DEMO_SIZES["medium"]  # the demo sets' definition


def group() -> str:
    return "test-par-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def one_partition(demo) -> str:
    """A topic of the 100 ``small`` alerts in one partition: a fixed order, so "the N-th alert" is exact."""
    name = "par-one-" + uuid.uuid4().hex[:6]
    demo.create_topic(name, partitions=1)
    load_messages(demo.url(name), demo_messages("small"))
    yield name
    demo.delete_topic(name)


# A script, as users run them: the filter and its exception class live in __main__.
SCRIPT = r"""
import json, sys
import genesis.streaming as gs

class Rejected(Exception):
    pass

def every_third(alert):
    if alert["candid"] % 3 == 0:
        return alert["candid"]
    return None

def raises_on(alert):
    if alert["candid"] == int(sys.argv[3]):
        raise Rejected("no %d" % alert["candid"])
    return True

def read(url, pool):
    with gs.open(url, start_at="earliest") as stream:
        rows = [(i, v, m.partition, m.offset) for i, v, m in stream(until_eos=True, filter=every_third,
                                                                    pool=pool, metadata=True)]
        return rows, stream.stats.alerts

if __name__ == "__main__":
    url, method = sys.argv[1], sys.argv[2]
    out = {}
    if method == "serial":
        out["rows"], out["alerts"] = read(url, None)
    else:
        with gs.Pool(2, start_method=method) as workers:
            out["rows"], out["alerts"] = read(url, workers)
            try:
                with gs.open(url, start_at="earliest") as stream:
                    for _ in stream(until_eos=True, filter=raises_on, pool=workers):
                        pass
            except gs.errors.FilterError as exc:
                out["error"] = [type(exc.__cause__).__name__, str(exc.__cause__), exc.partition, exc.offset]
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def script_runs(demo, tmp_path_factory):
    """The script over ``medium``: serially, and with fork and spawn pools (run in parallel)."""
    path = tmp_path_factory.mktemp("script") / "user_script.py"
    path.write_text(SCRIPT)
    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        _, alert, meta = next(stream(limit=1, metadata=True))
    victim = (alert["candid"], meta.partition, meta.offset)
    procs = {
        m: subprocess.Popen(
            [sys.executable, str(path), demo.url("medium"), m, str(victim[0])], stdout=subprocess.PIPE, text=True
        )
        for m in ("serial", "fork", "spawn")
    }
    try:
        results = {m: json.loads(p.communicate(timeout=250)[0]) for m, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    return results, victim


def medium_candids(data_dir) -> list[int]:
    """The candids of medium as genesis.samples documents the set: the real alerts in order (copy 0),
    then copy 1 of each, copy 2, ...; copy c of an alert has its candid + c * 10**15."""
    reals = [a.record["candid"] for a in real_ztf_alerts(data_dir)]
    return [reals[i % len(reals)] + (i // len(reals)) * 10**15 for i in range(MEDIUM)]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_yields_the_serial_set_with_a_filter_from_main(script_runs, method, data_dir):
    results, _ = script_runs
    serial, pooled = results["serial"], results[method]
    assert serial["alerts"] == pooled["alerts"] == MEDIUM
    # every_third keeps (and yields) the candids divisible by 3, in the serial run and the pooled one
    expected = sorted(c for c in medium_candids(data_dir) if c % 3 == 0)
    assert expected and sorted(r[1] for r in serial["rows"]) == expected
    assert sorted(r[1] for r in pooled["rows"]) == expected
    idx = [r[0] for r in pooled["rows"]]
    assert idx == sorted(idx) and len(set(idx)) == len(idx) and idx[-1] < MEDIUM
    for part in range(PARTITIONS):
        offsets = [r[3] for r in pooled["rows"] if r[2] == part]
        assert offsets == sorted(offsets)  # order within a partition is kept


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_exception_class_from_main_comes_back_as_cause(script_runs, method):
    results, (candid, partition, offset) = script_runs
    assert results[method]["error"] == ["Rejected", f"no {candid}", partition, offset]


@pytest.mark.parametrize(
    "make_pool",
    [lambda: gs.Pool(2), lambda: multiprocessing.Pool(2), lambda: ProcessPoolExecutor(2)],
    ids=["gs.Pool", "multiprocessing", "executor"],
)
@pytest.mark.edit_loop
def test_limit_and_break_keep_in_flight_work_for_the_next_call(demo, make_pool):
    workers = make_pool()
    try:
        with gs.open(demo.url("small"), start_at="earliest") as stream:
            a = [(i, x["candid"]) for i, x in stream(limit=30, pool=workers)]
            b = []
            for i, x in stream(pool=workers):
                b.append((i, x["candid"]))
                if len(b) == 20:
                    break
            c = [(i, x["candid"]) for i, x in stream(until_eos=True)]  # inline now: leftovers are reused
    finally:
        if isinstance(workers, ProcessPoolExecutor):
            workers.shutdown()
        else:
            workers.terminate() if hasattr(workers, "terminate") else workers.close()
            workers.join() if hasattr(workers, "join") else None
    rows = a + b + c
    assert len(a) == 30 and len(b) == 20 and len(c) == SMALL - 50
    assert [i for i, _ in rows] == list(range(SMALL))
    assert len({x for _, x in rows}) == SMALL


def test_leftovers_are_refiltered_when_the_filter_changes(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        everything = {a["candid"] for _, a in stream(until_eos=True)}
    with gs.Pool(2) as workers, gs.open(demo.url("small"), start_at="earliest") as stream:
        first = [a["candid"] for _, a in stream(limit=10, pool=workers)]
        rest = [v for _, v in stream(until_eos=True, pool=workers, filter=lambda a: a["candid"] % 2 == 0)]
    assert len(first) == 10 and len(everything) == SMALL
    # the second call yields exactly the even candids the first did not: the batches fetched (and
    # processed without a filter) during the first call are filtered anew, none lost or repeated
    expected = sorted(c for c in everything - set(first) if c % 2 == 0)
    assert expected and all(isinstance(v, dict) for v in rest)  # True keeps the alert itself
    assert sorted(a["candid"] for a in rest) == expected


def test_timeout_with_a_pool(demo):
    with gs.Pool(2) as workers, gs.open(demo.url("small"), start_at="earliest") as stream:
        t0 = time.monotonic()
        got = list(stream(timeout=3, pool=workers))
    assert len(got) == SMALL
    # a hang guard: timeout=3 ends the loop 3 idle seconds after the last alert, once the pool
    # is drained; a loop that forgot the pool's in-flight work, or waited on it forever, would
    # not end (pytest's timeout); 30 s is room for reading 100 alerts on a busy machine
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("n", [0, 37, 99])
def test_commit_stops_exactly_before_the_failing_alert(demo, one_partition, n):
    with gs.open(demo.url(one_partition), start_at="earliest") as stream:
        order = [a["candid"] for _, a in stream(until_eos=True)]
    bad = order[n]

    def fails_on_nth(alert):
        if alert["candid"] == bad:
            raise ValueError(f"bad alert {bad}")
        return True

    grp = group()
    handed = 0
    with gs.Pool(2) as workers, gs.open(demo.url(one_partition, group=grp), start_at="earliest") as stream:
        with pytest.raises(errors.FilterError, match=rf"ValueError: bad alert {bad}.*{one_partition}\[0\]@{n}") as info:
            for _ in stream(pool=workers, filter=fails_on_nth, timeout=30):
                handed += 1
                stream.commit()
    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.topic, info.value.partition, info.value.offset) == (one_partition, 0, n)
    assert handed == n
    assert sum(demo.committed(one_partition, grp).values()) == n


def test_commits_never_pass_what_was_handed_over_on_many_partitions(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        rows = [(a["candid"], m.partition, m.offset) for _, a, m in stream(until_eos=True, metadata=True)]
    # an alert with 5 before it in its partition: whatever order the partitions come in, those
    # 5 are handed over (and committed) before it, so there is something to check
    bad = next(c for c, _, offset in rows[60:] if offset >= 5)

    def fails(alert):
        if alert["candid"] == bad:
            raise KeyError("bad")
        return True

    grp = group()
    last: dict[int, int] = {}
    with gs.Pool(2) as workers, gs.open(demo.url("small", group=grp), start_at="earliest") as stream:
        with pytest.raises(errors.FilterError):
            for _, _, meta in stream(pool=workers, filter=fails, metadata=True):
                last[meta.partition] = meta.offset
                stream.commit()
    got = demo.committed("small", grp)
    assert last and got == {p: o + 1 for p, o in last.items()}


def test_a_killed_worker_stops_the_stream_with_a_typed_error(demo):
    def slow(alert):
        time.sleep(0.02)
        return True

    grp = group()
    handed = 0
    with gs.Pool(2) as workers, gs.open(demo.url("medium", group=grp), start_at="earliest") as stream:
        with pytest.raises(errors.FilterError, match="died.*signal 9"):
            for _ in stream(pool=workers, filter=slow, timeout=60):
                handed += 1
                stream.commit()
                if handed == 200:
                    os.kill(workers.pids[0], signal.SIGKILL)
    assert 0 < handed < MEDIUM
    assert sum(demo.committed("medium", grp).values()) == handed


def test_revoked_partitions_in_flight_are_discarded(demo):
    """B joins A's group while A has batches in its pool: A never yields an alert of a partition
    it no longer owns, and together they see every alert; duplicates only after A's last commit."""
    url = demo.url("medium", group=group())
    seen_b: list[int] = []
    a_rows: list[tuple[int, int, int]] = []
    b_ready = threading.Event()

    def consumer_b():
        with gs.open(url, start_at="earliest") as stream:
            for _, alert in stream(timeout=15):
                b_ready.set()
                seen_b.append(alert["candid"])
                if len(seen_b) % 100 == 0:
                    stream.commit()
            stream.commit()

    def slowish(alert):
        time.sleep(0.001)
        return True

    b = threading.Thread(target=consumer_b, daemon=True)
    outside = 0
    with gs.Pool(2) as workers, gs.open(url, start_at="earliest") as stream:
        for _, alert, meta in stream(pool=workers, filter=slowish, timeout=15, metadata=True):
            if (meta.topic, meta.partition) not in stream.assignment:
                outside += 1
            a_rows.append((alert["candid"], meta.partition, meta.offset))
            if len(a_rows) % 100 == 0:
                stream.commit()
            if len(a_rows) == 2000:
                b.start()
        stream.commit()
    b.join(timeout=60)
    assert not b.is_alive()
    assert b_ready.is_set(), "B never got a partition: no rebalance happened"
    assert outside == 0
    everything = {c for c, _, _ in a_rows} | set(seen_b)
    assert len(everything) == MEDIUM
    duplicates = len(a_rows) + len(seen_b) - MEDIUM
    # at most what A handed over since its last commit (A commits every 100), per revoked partition
    assert duplicates < PARTITIONS * 100
