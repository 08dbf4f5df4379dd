"""The demo notebook's cells, and the rest of the reading API, against the real cluster.

``demo`` is the shared cluster with the demo topics ``small`` (100 alerts) and
``medium`` (20,000) loaded from the real alerts, exactly as ``genesis cluster up --demo`` does.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

import genesis.streaming as gs
from genesis import errors
from genesis.filters import filter_asteroids, is_transient

pytestmark = pytest.mark.integration


def group() -> str:
    return "test-" + uuid.uuid4().hex[:10]


# ---------------------------------------------------------------- the notebook's cells


def test_first_cell_waits_for_new_alerts(demo):
    """'If you execute the cell below, it will hang forever': a fresh group starts at the end."""
    with gs.open(demo.url("small")) as stream:
        t0 = time.monotonic()
        got = [a["candid"] for _, a in stream(timeout=3)]
    assert got == []
    assert time.monotonic() - t0 >= 3


def test_earliest_reads_everything(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        alerts = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
    assert len(alerts) == 100 and len(set(alerts)) == 100


def test_commit_sequence_of_the_notebook(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        everything = {a["candid"] for _, a in stream(timeout=10)}

    # as written: no commit, so the second read starts over
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        first = [a["candid"] for _, a in stream(limit=25, progress=True)]
    with gs.open(url, start_at="earliest") as stream:
        again = [a["candid"] for _, a in stream(timeout=10)]
    assert len(first) == 25 and len(again) == 100

    # with stream.commit() uncommented: 25, then the other 75
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        alerts1 = [a["candid"] for _, a in stream(limit=25, progress=True)]
        stream.commit()
    with gs.open(url, start_at="earliest") as stream:
        alerts2 = [a["candid"] for _, a in stream(timeout=10, progress=True)]
        stream.commit()
    assert len(alerts1) == 25 and len(alerts2) == 75
    assert set(alerts1 + alerts2) == everything
    assert sum(demo.committed("small", url.split("@")[0][len("kafka://") :]).values()) == 100


def test_asteroid_filter(demo):
    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        got = [(idx, a) for idx, a in stream(limit=10, timeout=10, filter=filter_asteroids)]
    assert len(got) == 10
    assert all(a["candidate"]["ssnamenr"] != "null" for _, a in got)
    idx = [i for i, _ in got]
    assert idx == sorted(idx) and idx[-1] >= 9  # idx counts filtered-out alerts too


def test_transient_filter_inline_and_with_pools(demo):
    import multiprocessing

    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        inline = [a["candid"] for _, a in stream(limit=10, timeout=10, filter=is_transient)]
    assert len(inline) == 10
    with multiprocessing.Pool(2) as workers:
        with gs.open(demo.url("medium"), start_at="earliest") as stream:
            pooled = [(i, a) for i, a in stream(pool=workers, limit=10, timeout=10, filter=is_transient)]
    assert len(pooled) == 10 and all(is_transient(a) for _, a in pooled)
    with gs.Pool(2) as workers:
        with gs.open(demo.url("medium"), start_at="earliest") as stream:
            gpool = [a["candid"] for _, a in stream(pool=workers, limit=10, timeout=10, filter=is_transient)]
    assert len(gpool) == 10


def test_medium_reads_all_20000(demo):
    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        candids = {alert["candid"] for _, alert in stream(timeout=10, progress=True)}
        stats = stream.stats
    assert len(candids) == 20000
    assert stats.received == 20000 and stats.yielded == 20000 and stats.bytes > 20000 * 30_000


# ---------------------------------------------------------------- the rest of the reading API


def test_limit_leaves_the_rest_of_the_batch_for_the_next_call(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        a = [(i, x["candid"]) for i, x in stream(limit=30)]
        b = [(i, x["candid"]) for i, x in stream(until_eos=True)]
    assert len(a) == 30 and len(b) == 70
    assert [i for i, _ in a + b] == list(range(100))
    assert len({c for _, c in a + b}) == 100


def test_until_eos_and_metadata(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        rows = list(stream(until_eos=True, metadata=True))
    assert len(rows) == 100
    metas = [m for _, _, m in rows]
    assert {m.topic for m in metas} == {"small"} and len({m.partition for m in metas}) == 6
    assert all(m.timestamp is not None and m.timestamp.tzinfo for m in metas)
    for part in {m.partition for m in metas}:
        offs = [m.offset for m in metas if m.partition == part]
        assert offs == sorted(offs)  # order within a partition is kept


def test_start_at_last_n(demo):
    with gs.open(demo.url("small"), start_at=-2) as stream:
        rows = list(stream(until_eos=True, metadata=True))
    assert len(rows) == 12  # the last 2 of each of 6 partitions


def test_start_at_datetime(demo):
    with gs.open(demo.url("small"), start_at=datetime(2000, 1, 1)) as stream:
        assert len(list(stream(until_eos=True))) == 100
    with gs.open(demo.url("small"), start_at=datetime.now(timezone.utc)) as stream:
        assert list(stream(timeout=2)) == []


def test_explicit_start_seeks_even_with_committed_offsets(demo):
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        list(stream(until_eos=True))
        stream.commit()
    with gs.open(url, start_at="earliest") as stream:
        assert list(stream(timeout=3)) == []
    with gs.open(url, start_at=-1) as stream:
        assert len(list(stream(until_eos=True))) == 6


def test_filter_may_transform_and_true_keeps(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        ids = [v for _, v in stream(until_eos=True, filter=lambda a: a["objectId"])]
    assert len(ids) == 100 and all(isinstance(v, str) and v.startswith("ZTF") for v in ids)
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        kept = [a for _, a in stream(until_eos=True, filter=lambda a: a["candid"] % 2 == 0)]
    assert kept and all(isinstance(a, dict) and a["candid"] % 2 == 0 for a in kept)


def test_stop_from_another_thread(demo):
    with gs.open(demo.url("small")) as stream:
        threading.Timer(1.0, stream.stop).start()
        t0 = time.monotonic()
        assert list(stream()) == []
    assert time.monotonic() - t0 < 5


def test_stop_inside_the_loop_ends_it_after_the_current_alert(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        got = []
        for i, alert in stream():
            got.append(alert["candid"])
            if i == 10:
                stream.stop()
        rest = [a["candid"] for _, a in stream(until_eos=True)]  # the next call goes on
    assert len(got) == 11 and len(got) + len(rest) == 100 and not set(got) & set(rest)


def test_ctrl_c_flushes_marked_offsets_and_propagates(demo):
    url = demo.url("small", group=group())
    with pytest.raises(KeyboardInterrupt):
        with gs.open(url, start_at="earliest") as stream:
            for i, _ in stream():
                if i == 9:
                    stream.commit(asynchronous=True)
                if i == 20:
                    raise KeyboardInterrupt
    assert sum(demo.committed("small", url.split("@")[0][len("kafka://") :]).values()) == 10


def test_filter_exception_names_the_message_and_commits_nothing_after(demo):
    url = demo.url("small", group=group())

    def fragile(alert):
        if fragile.n == 30:
            raise ValueError("boom")
        fragile.n += 1
        return alert

    fragile.n = 0

    with gs.open(url, start_at="earliest") as stream:
        with pytest.raises(errors.FilterError, match=r"ValueError: boom.*small\[\d\]@\d+") as info:
            for _ in stream(filter=fragile):
                stream.commit()
    assert isinstance(info.value.__cause__, ValueError)
    assert sum(demo.committed("small", url.split("@")[0][len("kafka://") :]).values()) == 30


# ---------------------------------------------------------------- clear errors


def test_unknown_topic_lists_similar(demo):
    with pytest.raises(errors.UnknownTopicError, match="smal.*Did you mean small"):
        gs.open(demo.url("smal"))


def test_unreachable_broker_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(errors.BrokerUnreachableError, match="127.0.0.1:1"):
        gs.open("kafka://127.0.0.1:1/small", connect_timeout=2)
    assert time.monotonic() - t0 < 10


def test_unknown_option_and_bad_start_at(demo):
    with pytest.raises(errors.ConfigError, match="unknown option.*start_from"):
        gs.open(demo.url("small"), start_from="earliest")
    with pytest.raises(errors.ConfigError, match="start_at"):
        gs.open(demo.url("small"), start_at="yesterday")
