"""The demo notebook's cells, and the rest of the reading API, against the real cluster.

``demo`` is the shared cluster with the demo topics ``small`` (100 alerts) and
``medium`` (20,000) loaded from the real alerts, exactly as ``genesis cluster up --demo`` does.
Their sizes come from the sets' definition (``genesis.samples.DEMO_SIZES``), their 6
partitions from ``genesis.demo.PARTITIONS``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest

import genesis.streaming as gs
from genesis import errors
from genesis.demo import PARTITIONS, demo_messages
from genesis.filters import filter_asteroids, is_transient
from genesis.samples import DEMO_SIZES

pytestmark = pytest.mark.integration

SMALL, MEDIUM = DEMO_SIZES["small"], DEMO_SIZES["medium"]


def group() -> str:
    return "test-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def small_rows(demo) -> list[tuple[int, int, int]]:
    """(candid, partition, offset) of every alert of ``small``, read once from the start."""
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        rows = [(a["candid"], m.partition, m.offset) for _, a, m in stream(until_eos=True, metadata=True)]
    assert len(rows) == SMALL and len({c for c, _, _ in rows}) == SMALL
    return rows


def per_partition(rows: list[tuple[int, int, int]]) -> Counter:
    return Counter(p for _, p, _ in rows)


# ---------------------------------------------------------------- the notebook's cells


def test_first_cell_waits_for_new_alerts(demo):
    """'If you execute the cell below, it will hang forever': a fresh group starts at the end."""
    with gs.open(demo.url("small")) as stream:
        t0 = time.monotonic()
        got = [a["candid"] for _, a in stream(timeout=3)]
    assert got == []
    # the spec of timeout=: it waits (at least) 3 idle seconds; a lower bound, never flaky
    assert time.monotonic() - t0 >= 3


def test_earliest_reads_everything(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        alerts = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
    assert len(alerts) == SMALL and len(set(alerts)) == SMALL


def test_commit_sequence_of_the_notebook(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        everything = {a["candid"] for _, a in stream(timeout=10)}

    # as written: no commit, so the second read starts over
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        first = [a["candid"] for _, a in stream(limit=25, progress=True)]
    with gs.open(url, start_at="earliest") as stream:
        again = [a["candid"] for _, a in stream(timeout=10)]
    assert len(first) == 25 and len(again) == SMALL

    # with stream.commit() uncommented: 25, then the other 75
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        alerts1 = [a["candid"] for _, a in stream(limit=25, progress=True)]
        stream.commit()
    with gs.open(url, start_at="earliest") as stream:
        alerts2 = [a["candid"] for _, a in stream(timeout=10, progress=True)]
        stream.commit()
    assert len(alerts1) == 25 and len(alerts2) == SMALL - 25
    assert set(alerts1 + alerts2) == everything
    assert sum(demo.committed("small", url.split("@")[0][len("kafka://") :]).values()) == SMALL


def test_asteroid_filter(demo):
    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        got = [(idx, a) for idx, a in stream(limit=10, timeout=10, filter=filter_asteroids)]
    assert len(got) == 10
    assert all(a["candidate"]["ssnamenr"] != "null" for _, a in got)
    idx = [i for i, _ in got]
    assert idx == sorted(idx) and idx[-1] >= 9  # idx counts filtered-out alerts too


def test_transient_filter_inline_and_with_pools(demo):
    import multiprocessing

    def transients(got: list[dict]) -> None:
        """Ten distinct alerts, each one genesis.filters.is_transient keeps (checked again here, inline)."""
        assert len(got) == 10 and len({a["candid"] for a in got}) == 10
        assert all(is_transient(a) is a for a in got)

    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        transients([a for _, a in stream(limit=10, timeout=10, filter=is_transient)])
    with multiprocessing.Pool(2) as workers:
        with gs.open(demo.url("medium"), start_at="earliest") as stream:
            transients([a for _, a in stream(pool=workers, limit=10, timeout=10, filter=is_transient)])
    with gs.Pool(2) as workers:
        with gs.open(demo.url("medium"), start_at="earliest") as stream:
            transients([a for _, a in stream(pool=workers, limit=10, timeout=10, filter=is_transient)])


def test_medium_reads_all_20000(demo):
    with gs.open(demo.url("medium"), start_at="earliest") as stream:
        candids = {alert["candid"] for _, alert in stream(timeout=10, progress=True)}
        stats = stream.stats
    assert len(candids) == MEDIUM
    assert stats.received == MEDIUM and stats.yielded == MEDIUM
    assert stats.bytes == sum(len(m) for m in demo_messages("medium"))  # the messages loaded, byte for byte


# ---------------------------------------------------------------- the rest of the reading API


def test_limit_leaves_the_rest_of_the_batch_for_the_next_call(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        a = [(i, x["candid"]) for i, x in stream(limit=30)]
        b = [(i, x["candid"]) for i, x in stream(until_eos=True)]
    assert len(a) == 30 and len(b) == SMALL - 30
    assert [i for i, _ in a + b] == list(range(SMALL))
    assert len({c for _, c in a + b}) == SMALL


def test_until_eos_and_metadata(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        rows = list(stream(until_eos=True, metadata=True))
    assert len(rows) == SMALL
    metas = [m for _, _, m in rows]
    assert {m.topic for m in metas} == {"small"} and len({m.partition for m in metas}) == PARTITIONS
    assert all(m.timestamp is not None and m.timestamp.tzinfo for m in metas)
    for part in {m.partition for m in metas}:
        offs = [m.offset for m in metas if m.partition == part]
        assert offs == sorted(offs)  # order within a partition is kept


def test_start_at_last_n(demo, small_rows):
    with gs.open(demo.url("small"), start_at=-2) as stream:
        rows = [(a["candid"], m.partition, m.offset) for _, a, m in stream(until_eos=True, metadata=True)]
    # the last 2 of each partition (12 when all 6 hold two or more)
    expected = {(c, p, o) for c, p, o in small_rows if o >= per_partition(small_rows)[p] - 2}
    assert len(expected) == sum(min(2, n) for n in per_partition(small_rows).values())
    assert sorted(rows) == sorted(expected)


def test_start_at_datetime(demo):
    with gs.open(demo.url("small"), start_at=datetime(2000, 1, 1)) as stream:
        assert len(list(stream(until_eos=True))) == SMALL
    with gs.open(demo.url("small"), start_at=datetime.now(timezone.utc)) as stream:
        assert list(stream(timeout=2)) == []


def test_explicit_start_seeks_even_with_committed_offsets(demo, small_rows):
    url = demo.url("small", group=group())
    with gs.open(url, start_at="earliest") as stream:
        list(stream(until_eos=True))
        stream.commit()
    with gs.open(url, start_at="earliest") as stream:
        assert list(stream(timeout=3)) == []
    with gs.open(url, start_at=-1) as stream:
        assert len(list(stream(until_eos=True))) == len(per_partition(small_rows))  # the last of each partition


def test_filter_may_transform_and_true_keeps(demo, small_rows):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        ids = [v for _, v in stream(until_eos=True, filter=lambda a: a["objectId"])]
    assert len(ids) == SMALL and all(isinstance(v, str) and v.startswith("ZTF") for v in ids)
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        kept = [a for _, a in stream(until_eos=True, filter=lambda a: a["candid"] % 2 == 0)]
    even = {c for c, _, _ in small_rows if c % 2 == 0}
    assert even and sorted(a["candid"] for a in kept) == sorted(even)
    assert all(isinstance(a, dict) for a in kept)  # True keeps the alert itself


@pytest.mark.edit_loop
def test_stop_from_another_thread(demo):
    with gs.open(demo.url("small")) as stream:
        threading.Timer(1.0, stream.stop).start()
        t0 = time.monotonic()
        assert list(stream()) == []  # no timeout, no new alerts: only stop() ends this loop
    # a hang guard: stop() is set after 1 s and the loop looks at it after every fetch (at most
    # 0.25 s); 10 s leaves room for a loaded machine and still fails before pytest's timeout
    assert time.monotonic() - t0 < 10


def test_stop_inside_the_loop_ends_it_after_the_current_alert(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        got = []
        for i, alert in stream():
            got.append(alert["candid"])
            if i == 10:
                stream.stop()
        rest = [a["candid"] for _, a in stream(until_eos=True)]  # the next call goes on
    assert len(got) == 11 and len(got) + len(rest) == SMALL and not set(got) & set(rest)


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


# ---------------------------------------------------------------- several topics in one stream


@pytest.fixture(scope="module")
def topic_family(cluster, data_dir: Path):
    """Three new topics of real alerts, ``<p>-a`` (2 partitions), ``<p>-b`` (3) and ``<p>x-c`` (1),
    each holding its own share of the raw ZTF files, one file per message; and what each holds:
    ``(prefix, {topic: Counter of candids})`` (a candid repeats where the data has one alert in
    several schema versions)."""
    prefix = "fam-" + uuid.uuid4().hex[:8]
    files = sorted((data_dir / "ztf" / "raw").rglob("*.avro"))
    shares = {f"{prefix}-a": (2, files[0::3]), f"{prefix}-b": (3, files[1::3]), f"{prefix}x-c": (1, files[2::3])}
    held = {}
    for topic, (partitions, paths) in shares.items():
        cluster.create_topic(topic, partitions=partitions)
        held[topic] = Counter()
        with gs.open(cluster.url(topic), "w") as writer:
            for path in paths:
                writer.write(path.read_bytes(), key=path.name)  # keyed: spread over the partitions
                with path.open("rb") as f:
                    held[topic].update(r["candid"] for r in fastavro.reader(f))
        assert held[topic]
    try:
        yield prefix, held
    finally:
        for topic in shares:
            cluster.delete_topic(topic)


def read_topics(url: str) -> dict[str, Counter]:
    """Every alert of ``url`` from the start, as {topic: Counter of candids}: equal to what the
    topics hold means each alert arrived once (a file of 3 alerts is one message of 3)."""
    got: dict[str, Counter] = {}
    with gs.open(url, start_at="earliest") as stream:
        for _, alert, meta in stream(until_eos=True, timeout=30, metadata=True):
            got.setdefault(meta.topic, Counter())[alert["candid"]] += 1
    return got


def test_several_topics_in_the_url_each_alert_of_each_once(cluster, topic_family):
    prefix, held = topic_family
    a, b = f"{prefix}-a", f"{prefix}-b"
    got = read_topics(cluster.url(f"{a},{b}"))
    assert got == {a: held[a], b: held[b]}


def test_a_topic_pattern_reads_every_matching_topic_and_no_other(cluster, topic_family):
    prefix, held = topic_family
    got = read_topics(cluster.url(f"^{prefix}-.*"))
    matching = {t for t in held if t.startswith(f"{prefix}-")}
    assert matching == {f"{prefix}-a", f"{prefix}-b"}  # not {prefix}x-c: the pattern is anchored
    assert got == {t: held[t] for t in matching}


def test_a_pattern_and_a_name_together(cluster, topic_family):
    prefix, held = topic_family
    c = f"{prefix}x-c"
    got = read_topics(cluster.url(f"^{prefix}-b$,{c}"))
    assert got == {f"{prefix}-b": held[f"{prefix}-b"], c: held[c]}


# ---------------------------------------------------------------- clear errors


def test_unknown_topic_lists_similar(demo):
    with pytest.raises(errors.UnknownTopicError, match="smal.*Did you mean small"):
        gs.open(demo.url("smal"))


def test_unreachable_broker_fails_within_connect_timeout():
    t0 = time.monotonic()
    with pytest.raises(errors.BrokerUnreachableError, match="127.0.0.1:1.*within 2 s"):
        gs.open("kafka://127.0.0.1:1/small", connect_timeout=2)
    # the spec: it raises once connect_timeout (2 s) has passed; 5 s more for making and closing
    # the client on a busy machine (librdkafka alone would retry for minutes)
    assert time.monotonic() - t0 < 2 + 5


def test_unknown_option_and_bad_start_at(demo):
    with pytest.raises(errors.ConfigError, match="unknown option.*start_from"):
        gs.open(demo.url("small"), start_from="earliest")
    with pytest.raises(errors.ConfigError, match="start_at"):
        gs.open(demo.url("small"), start_at="yesterday")


def test_alerts_deleted_before_they_were_read_are_a_warning_naming_the_partition(demo, caplog):
    """A group whose committed offset Kafka no longer holds (retention deleted the alerts; here
    ``delete_records``, what retention does) goes on at the oldest alert left, and says so."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    topic, name = f"retained-{uuid.uuid4().hex[:6]}", group()
    demo.create_topic(topic, partitions=1)
    producer = Producer({"bootstrap.servers": demo.bootstrap_servers})
    for message in list(demo_messages("small"))[:50]:
        producer.produce(topic, message, partition=0)
    assert producer.flush(30) == 0
    committer = Consumer({"bootstrap.servers": demo.bootstrap_servers, "group.id": name})
    committer.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)  # read up to 10, then away
    committer.close()
    admin = AdminClient({"bootstrap.servers": demo.bootstrap_servers})
    for future in admin.delete_records([TopicPartition(topic, 0, 30)]).values():
        future.result(timeout=30)
    with caplog.at_level("WARNING", logger="genesis"), gs.open(demo.url(topic, name), start_at="earliest") as stream:
        offsets = [m.offset for _, _, m in stream(until_eos=True, metadata=True)]
    assert offsets == list(range(30, 50))
    [warning] = [r.getMessage() for r in caplog.records if "no longer in Kafka" in r.getMessage()]
    assert f"{topic} [0]: offset 10, where this reader was" in warning and "oldest alert" in warning
    assert "retention.ms" in warning
