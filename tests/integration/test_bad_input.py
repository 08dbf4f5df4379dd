"""Bad packets on a real topic: every policy of ``gs.open(..., errors=, quarantine=)``, and the size limit.

One single-partition topic holds, in this order, real alert bytes corrupted here (never
invented alerts): a good ZTF alert, a truncated container, wrong magic bytes, the Confluent
wire format with unknown schema id 4242, a ZTF body labelled with an LSST schema id, an
empty message, a tombstone (no value), JSON garbage, and a second good alert.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer

import genesis.streaming as gs
from genesis import errors
from genesis._codecs import Decoder, SchemaDirectory, encode_container, encode_wire
from genesis.cluster import LocalCluster
from genesis.samples import real_lsst_alerts, real_ztf_alerts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: the broker's message.max.bytes on genesis' local clusters
BROKER_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class Packet:
    what: str
    value: bytes | None
    #: the DecodeError's reason must match this (None: a good alert)
    reason: str | None = None


def packets(data_dir: Path) -> list[Packet]:
    """The topic's messages, offset = index."""
    ztf = real_ztf_alerts(data_dir)
    good_a, good_b = (a.path.read_bytes() for a in (ztf[0], ztf[1]))
    lsst = real_lsst_alerts(data_dir)[0]
    lsst_id = SchemaDirectory(data_dir / "lsst" / "schema").ids()[-1]
    return [
        Packet("good", good_a),
        Packet("truncated container", good_a[: len(good_a) // 2], "truncated Avro container"),
        Packet("wrong magic bytes", b"Obj\x02" + good_a[4:], "unknown message format"),
        Packet("unknown schema id", encode_wire(lsst.record, lsst.schema, 4242), "unknown schema id 4242"),
        Packet("schema does not match", encode_wire(ztf[0].record, ztf[0].schema, lsst_id), "does not match"),
        Packet("empty", b"", "empty message"),
        Packet("tombstone", None, "empty message"),
        Packet("JSON garbage", b'{"candid": 1, "oops', "invalid JSON"),
        Packet("good", good_b),
    ]


#: the packets above that must fail to decode (all but the two good ones)
BAD = 7


@pytest.fixture(scope="module")
def bad_topic(cluster: LocalCluster, data_dir: Path) -> tuple[str, list[Packet]]:
    """A one-partition topic holding :func:`packets` (written with a plain producer: tombstones too)."""
    topic = "bad-" + uuid.uuid4().hex[:8]
    cluster.create_topic(topic, partitions=1)
    produced = packets(data_dir)
    assert sum(p.reason is not None for p in produced) == BAD
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True})
    for i, packet in enumerate(produced):
        producer.produce(topic, packet.value, key=b"k%d" % i, headers=[("source", b"test-%d" % i)])
    assert producer.flush(30) == 0
    return topic, produced


def open_bad(cluster: LocalCluster, topic: str, data_dir: Path, group: str | None = None, **options) -> gs.Stream:
    """A reader of ``topic`` from the start that knows the LSST schemas (so id 4242 is merely unknown)."""
    return gs.open(cluster.url(topic, group), start_at="earliest", schemas=data_dir / "lsst" / "schema", **options)


def good_candids(produced: list[Packet]) -> list[int]:
    """The candids of the good packets, in topic order."""
    return [Decoder().decode(p.value)[0]["candid"] for p in produced if p.reason is None]


# ------------------------------------------------------------------ errors="raise"


def test_raise_names_topic_partition_offset_and_why(cluster, bad_topic, data_dir):
    topic, produced = bad_topic
    group = "bad-" + uuid.uuid4().hex[:8]
    with open_bad(cluster, topic, data_dir, group) as stream:
        got = []
        with pytest.raises(errors.DecodeError) as info:
            for _, alert in stream(timeout=20):
                got.append(alert["candid"])
        stream.commit()
    err = info.value
    assert got == good_candids(produced)[:1]
    assert (err.topic, err.partition, err.offset) == (topic, 0, 1)
    assert "truncated" in err.reason and f"{topic}[0]@1" in str(err) and "on_decode_error='skip'" in str(err)
    assert cluster.committed(topic, group).get(0) == 1  # never past the packet that failed


# ------------------------------------------------------------------ a function


def test_callable_sees_every_bad_packet_with_its_reason(cluster, bad_topic, data_dir):
    topic, produced = bad_topic
    seen = []
    with open_bad(cluster, topic, data_dir, errors=lambda meta, raw, err: seen.append((meta, raw, err))) as stream:
        got = [a["candid"] for _, a in stream(until_eos=True)]
        stats = stream.stats
    assert got == good_candids(produced)
    assert [m.offset for m, _, _ in seen] == [i for i, p in enumerate(produced) if p.reason]
    for meta, raw, err in seen:
        packet = produced[meta.offset]
        assert raw == packet.value, packet.what
        assert packet.reason in err.reason, (packet.what, err.reason)
        assert (err.topic, err.partition, err.offset) == (topic, 0, meta.offset)
        assert dict(meta.headers)["source"] == b"test-%d" % meta.offset
    assert isinstance(seen[2][2], errors.SchemaNotFoundError)
    assert stats.skipped == BAD and stats.yielded == 2


def test_a_callable_may_stop_the_stream(cluster, bad_topic, data_dir):
    def refuse(meta, raw, err):
        raise RuntimeError(f"stop at {meta.offset}")

    with open_bad(cluster, bad_topic[0], data_dir, errors=refuse) as stream:
        with pytest.raises(RuntimeError, match="stop at 1"):
            list(stream(timeout=20))


# ------------------------------------------------------------------ errors="skip"


@pytest.mark.edit_loop
@pytest.mark.parametrize("workers", [0, 2])
def test_skip_counts_logs_and_commits_past_bad_packets(cluster, bad_topic, data_dir, caplog, workers):
    topic, produced = bad_topic
    group = "bad-" + uuid.uuid4().hex[:8]
    with caplog.at_level(logging.WARNING, logger="genesis"):
        with open_bad(cluster, topic, data_dir, group, errors="skip") as stream:
            if workers:
                with gs.Pool(workers) as pool:
                    got = [a["candid"] for _, a in stream(until_eos=True, pool=pool)]
            else:
                got = [a["candid"] for _, a in stream(until_eos=True)]
            stream.commit()
            assert stream.stats.skipped == BAD
    assert got == good_candids(produced)
    assert cluster.committed(topic, group).get(0) == len(produced)  # past every skipped packet
    assert caplog.text.count("skipped an undecodable packet") == BAD
    assert f"{topic}[0]@4" in caplog.text


def test_commit_right_after_a_skip_moves_past_it(cluster, data_dir):
    """A topic ending in a bad packet: the stream is not stuck on it, and commit() passes it."""
    topic = "bad-tail-" + uuid.uuid4().hex[:8]
    cluster.create_topic(topic, partitions=1)
    good, bad = packets(data_dir)[0:2]
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(good.value)
        writer.write(bad.value)
    group = "bad-" + uuid.uuid4().hex[:8]
    with gs.open(cluster.url(topic, group), start_at="earliest", errors="skip") as stream:
        assert len(list(stream(until_eos=True))) == 1
        stream.commit()
    assert cluster.committed(topic, group).get(0) == 2


def test_filter_errors_propagate_whatever_the_policy(cluster, bad_topic, data_dir):
    def fragile(alert):
        raise ValueError("my bug")

    with open_bad(cluster, bad_topic[0], data_dir, errors="skip") as stream:
        with pytest.raises(errors.FilterError, match="my bug") as info:
            list(stream(timeout=20, filter=fragile))
    assert isinstance(info.value.__cause__, ValueError) and info.value.offset == 0


# ------------------------------------------------------------------ errors="quarantine"


def test_quarantine_to_a_directory(cluster, bad_topic, data_dir, tmp_path):
    topic, produced = bad_topic
    with open_bad(cluster, topic, data_dir, errors="quarantine", quarantine=tmp_path / "q") as stream:
        got = [a["candid"] for _, a in stream(until_eos=True)]
        assert stream.stats.skipped == BAD
    assert got == good_candids(produced)
    kept = sorted((tmp_path / "q").glob("*.json"))
    assert len(kept) == BAD
    for i, packet in enumerate(produced):
        if packet.reason is None:
            continue
        info = json.loads((tmp_path / "q" / f"{topic}-0-{i}.json").read_text())
        assert (tmp_path / "q" / f"{topic}-0-{i}.bin").read_bytes() == (packet.value or b"")
        assert packet.reason in info["error"] and info["key"] == (b"k%d" % i).hex()
        assert ["source", (b"test-%d" % i).hex()] in info["headers"]


def test_quarantine_to_a_dead_letter_topic(cluster, bad_topic, data_dir):
    topic, produced = bad_topic
    dead = "dead-" + uuid.uuid4().hex[:8]
    cluster.create_topic(dead, partitions=1)
    with open_bad(cluster, topic, data_dir, errors="quarantine", quarantine=cluster.url(dead)) as stream:
        assert len(list(stream(until_eos=True))) == 2
    # the dead-letter topic holds the bad bytes: read it back with a function policy
    kept = []
    with gs.open(cluster.url(dead), start_at="earliest", errors=lambda m, raw, e: kept.append((m, raw))) as stream:
        assert list(stream(until_eos=True)) == []
    assert len(kept) == BAD
    bad = [(i, p) for i, p in enumerate(produced) if p.reason]
    for (meta, raw), (i, packet) in zip(kept, bad):
        headers = {k: v.decode() for k, v in meta.headers}
        assert raw == (packet.value or b"") and meta.key == b"k%d" % i
        assert headers["source"] == f"test-{i}"  # the original headers travel along
        assert (headers["genesis.topic"], headers["genesis.partition"], headers["genesis.offset"]) == (
            topic,
            "0",
            str(i),
        )
        assert packet.reason in headers["genesis.error"]


def test_quarantine_to_a_missing_topic_fails_at_open(cluster, bad_topic, data_dir):
    with pytest.raises(errors.UnknownTopicError):
        open_bad(cluster, bad_topic[0], data_dir, errors="quarantine", quarantine=cluster.url("no-such-dead-letters"))


# ------------------------------------------------------------------ the size limit


def padded(data_dir: Path, size: int) -> tuple[int, bytes]:
    """A real ZTF alert whose science cutout is padded so the encoded message is ``size`` bytes."""
    alert = real_ztf_alerts(data_dir)[0]
    record = dict(alert.record)
    cutout = dict(record["cutoutScience"])
    record["cutoutScience"] = cutout
    base = len(encode_container(record, alert.schema))
    stamp = cutout["stampData"]
    # the length prefix of the bytes grows by a few bytes with the size: converge in two steps
    for _ in range(3):
        cutout["stampData"] = stamp + b"\0" * (len(cutout["stampData"]) - len(stamp) + size - base)
        base = len(encode_container(record, alert.schema))
    assert base == size
    return record["candid"], encode_container(record, alert.schema)


def test_alert_just_under_the_broker_limit_arrives_whole(cluster, data_dir):
    topic = "big-" + uuid.uuid4().hex[:8]
    cluster.create_topic(topic, partitions=1)
    candid, value = padded(data_dir, BROKER_LIMIT - 4096)
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(value)
    with gs.open(cluster.url(topic), start_at="earliest") as stream:
        ((_, alert, meta),) = list(stream(until_eos=True, metadata=True))
    assert alert["candid"] == candid and meta.value == value


def test_alert_over_the_broker_limit_is_refused_with_a_delivery_error(cluster, data_dir):
    topic = "big-" + uuid.uuid4().hex[:8]
    cluster.create_topic(topic, partitions=1)
    _, value = padded(data_dir, BROKER_LIMIT + 1024)
    writer = gs.open(cluster.url(topic), "w")
    writer.write(value)
    with pytest.raises(errors.DeliveryError, match="larger than the broker accepts"):
        writer.flush(timeout=60)
    good = packets(data_dir)[0].value
    writer.write(good)  # the writer is still usable after the refusal
    writer.close()
    with gs.open(cluster.url(topic), start_at="earliest") as stream:
        assert len(list(stream(until_eos=True))) == 1
