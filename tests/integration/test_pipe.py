"""The exactly-once pipe on the real cluster: what comes out, how it is framed, and its errors."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers import read_topic

import genesis.streaming as gs
from genesis import Decoder, Filter, errors
from genesis._sources.transactional import Aborted
from genesis.filters import filter_asteroids
from genesis.samples import DEMO_SIZES

ROOT = Path(__file__).resolve().parents[2]


def candids(messages: list) -> list[int]:
    decoder = Decoder()
    return [a["candid"] for m in messages for a in decoder.decode(m.value(), m.key())]


@pytest.fixture(scope="module")
def small_set(demo) -> dict[int, dict]:
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        return {a["candid"]: a for _, a in stream(until_eos=True)}


def test_asteroids_once_each_forwarded_byte_for_byte(demo, small_set):
    out = f"asteroids-{uuid.uuid4().hex[:6]}"
    group = f"pipe-{uuid.uuid4().hex[:6]}"
    with gs.pipe(
        demo.url("small", group), demo.url(out), filter=filter_asteroids, create=True, start_at="earliest"
    ) as pipe:
        stats = pipe.run(until_eos=True)
    messages = read_topic(demo.bootstrap_servers, out)
    expected = {c for c, a in small_set.items() if filter_asteroids(a) is not None}
    assert expected and sorted(candids(messages)) == sorted(expected)  # each once
    assert stats.alerts == DEMO_SIZES["small"] and stats.outputs == stats.forwarded == len(expected)
    assert stats.transactions >= 1 and stats.aborted == 0
    with gs.open(demo.url("small"), start_at="earliest") as stream:  # the inputs, byte for byte
        originals = {(m.topic, m.partition, m.offset): m.value for _, _, m in stream(until_eos=True, metadata=True)}
    for m in messages:
        h = dict(m.headers())
        where = (h["genesis.topic"].decode(), int(h["genesis.partition"]), int(h["genesis.offset"]))
        assert originals[where] == m.value() and m.partition() == where[1]
    assert sum(demo.committed("small", group).values()) == DEMO_SIZES["small"]  # offsets in the transactions


def test_a_restarted_pipe_goes_on_where_it_committed(demo, small_set):
    out, group = f"half-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    with gs.pipe(demo.url("small", group), demo.url(out), create=True, start_at="earliest") as pipe:
        pipe.run(limit=40)
    with gs.pipe(demo.url("small", group), demo.url(out), start_at="earliest") as pipe:
        pipe.run(until_eos=True)
    assert sorted(candids(read_topic(demo.bootstrap_servers, out))) == sorted(small_set)


def test_transformed_outputs_need_a_schema(demo, small_set):
    summary = {"type": "record", "name": "summary", "fields": [{"name": "candid", "type": "long"}]}
    out, group = f"summary-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    to_summary = Filter(lambda a: {"candid": a["candid"]}, fields=("candid",))
    with gs.pipe(
        demo.url("small", group), demo.url(out), filter=to_summary, schema=summary, create=True, start_at="earliest"
    ) as pipe:
        pipe.run(until_eos=True)
    assert sorted(candids(read_topic(demo.bootstrap_servers, out))) == sorted(small_set)


def test_the_input_must_name_a_group_and_the_output_must_exist(demo):
    with pytest.raises(errors.ConfigError, match="must name a consumer group"):
        gs.pipe(demo.url("small"), demo.url("anything"))
    with pytest.raises(errors.UnknownTopicError, match="--create"):
        gs.pipe(demo.url("small", "g"), demo.url(f"missing-{uuid.uuid4().hex[:6]}"))


def test_with_a_pool_the_output_keeps_each_partitions_order(demo, small_set):
    out, group = f"pooled-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    with (
        gs.Pool(2) as workers,
        gs.pipe(
            demo.url("small", group),
            demo.url(out),
            filter=filter_asteroids,
            pool=workers,
            create=True,
            start_at="earliest",
        ) as pipe,
    ):
        pipe.run(until_eos=True)
    messages = read_topic(demo.bootstrap_servers, out)
    expected = {c for c, a in small_set.items() if filter_asteroids(a) is not None}
    assert sorted(candids(messages)) == sorted(expected)
    by_partition: dict[int, list[int]] = {}
    for m in messages:  # read_topic reads each partition in order
        by_partition.setdefault(m.partition(), []).append(int(dict(m.headers())["genesis.offset"]))
    assert by_partition and all(offsets == sorted(offsets) for offsets in by_partition.values())


def test_undecodable_input_is_quarantined_inside_the_transaction(demo, data_dir):
    good = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    topic, out, dead = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("bad", "out", "dead"))
    for name in (topic, out, dead):
        demo.create_topic(name, partitions=1)
    with gs.open(demo.url(topic), "w") as writer:
        for value in (good, good[:-50], good):  # a truncated packet between two good ones
            writer.write(value)
    with gs.pipe(
        demo.url(topic, f"pipe-{uuid.uuid4().hex[:6]}"),
        demo.url(out),
        start_at="earliest",
        on_decode_error="quarantine",
        quarantine=demo.url(dead),
    ) as pipe:
        stats = pipe.run(until_eos=True)
    assert stats.outputs == 2 and stats.quarantined == 1 and stats.alerts == 2
    [bad] = read_topic(demo.bootstrap_servers, dead)
    headers = dict(bad.headers())
    assert bad.value() == good[:-50] and headers["genesis.offset"] == b"1" and b"truncated" in headers["genesis.error"]


def test_a_transaction_aborted_after_the_end_of_the_input_is_done_again(demo, small_set):
    """An abort rewinds the inputs: a pipe that had read to the end of every partition reads them
    again before ``until_eos`` ends it (it stopped with nothing written once: CI, a stuck commit)."""
    out, group = f"redone-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    with gs.pipe(
        demo.url("small", group), demo.url(out), create=True, start_at="earliest", commit_every=10**6, commit_seconds=60
    ) as pipe:
        txn, commit = pipe.transaction, pipe.transaction.commit
        attempts = []

        def abort_the_first(offsets, group_metadata):  # the whole input is in the first transaction
            attempts.append(sum(tp.offset for tp in offsets))
            if len(attempts) == 1:
                txn.abort()
                raise Aborted("aborted by the test")
            commit(offsets, group_metadata)

        txn.commit = abort_the_first
        stats = pipe.run(until_eos=True)
    assert attempts[0] == DEMO_SIZES["small"] and stats.aborted == 1
    assert sorted(candids(read_topic(demo.bootstrap_servers, out))) == sorted(small_set)
    assert stats.alerts == DEMO_SIZES["small"] and sum(demo.committed("small", group).values()) == DEMO_SIZES["small"]


def test_stop_from_another_thread_commits_and_returns(demo):
    out, group = f"stopped-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    with gs.pipe(demo.url("medium", group), demo.url(out), create=True, start_at="earliest") as pipe:
        threading.Timer(3.0, pipe.stop).start()
        stats = pipe.run()  # no end of its own: only stop() ends it
    assert 0 < stats.alerts < DEMO_SIZES["medium"] and stats.outputs == stats.alerts  # one alert per message
    assert len(read_topic(demo.bootstrap_servers, out)) == stats.outputs
    assert sum(demo.committed("medium", group).values()) == stats.alerts


def test_a_cluster_that_cannot_hold_the_transaction_log_says_which_setting(fresh_cluster):
    cluster = fresh_cluster(1, properties={"transaction.state.log.replication.factor": "3"})
    cluster.create_topic("in", partitions=1)
    cluster.create_topic("out", partitions=1)
    started = time.monotonic()
    with pytest.raises(errors.ConfigError, match=r"transaction\.state\.log\.replication\.factor=3"):
        gs.pipe(cluster.url("in", "g"), cluster.url("out"))
    assert time.monotonic() - started < 30  # the bound (a transaction would wait out its timeout)


@pytest.mark.edit_loop
def test_the_sqlite_example_stores_every_alert_once_across_a_crash(demo, small_set, tmp_path):
    import runpy

    example = runpy.run_path(str(ROOT / "docs" / "examples" / "sqlite_exactly_once.py"))
    db = tmp_path / "alerts.db"
    first = example["load"](demo.url("small"), str(db), limit=40)  # a run that stops after 40 alerts
    second = example["load"](demo.url("small"), str(db))
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT candid FROM alerts").fetchall()
    assert first == 40 and second == len(small_set) - 40  # the second run went on from the stored positions
    assert sorted(c for (c,) in rows) == sorted(small_set)


def test_the_command_line_pipe(demo, small_set):
    import json
    import subprocess
    import sys

    out, group = f"cli-{uuid.uuid4().hex[:6]}", f"pipe-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "genesis",
            "pipe",
            demo.url("small", group),
            demo.url(out),
            "--filter",
            "genesis.filters:filter_asteroids",
            "--start-at",
            "earliest",
            "--until-eos",
            "--create",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {c for c, a in small_set.items() if filter_asteroids(a) is not None}
    assert stats["alerts"] == DEMO_SIZES["small"] and stats["outputs"] == len(expected)
    assert sorted(candids(read_topic(demo.bootstrap_servers, out))) == sorted(expected)
    assert stats["started_at_end"] == [] and "had no commits" not in done.stderr


def test_a_new_group_from_the_end_says_so_in_the_stats_and_on_stderr(demo):
    import subprocess
    import sys

    from genesis.demo import PARTITIONS

    out = f"late-{uuid.uuid4().hex[:6]}"
    with gs.pipe(demo.url("small", f"pipe-{uuid.uuid4().hex[:6]}"), demo.url(out), create=True) as pipe:
        stats = pipe.run(until_eos=True)
    assert stats.alerts == 0 and stats.started_at_end == tuple(("small", p) for p in range(PARTITIONS))
    done = subprocess.run(
        [sys.executable, "-m", "genesis", "pipe", demo.url("small", f"pipe-{uuid.uuid4().hex[:6]}"), demo.url(out)]
        + ["--until-eos"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "genesis pipe: the group pipe-" in done.stderr and "--start-at earliest" in done.stderr, done.stderr
