"""Every packet format, through a real Kafka topic: what genesis yields is what fastavro reads from the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from io import BytesIO

import fastavro
import fastavro.schema
import pytest
import zstandard
from helpers import PEAK_RSS, same

import genesis.streaming as gs
from genesis import errors
from genesis._codecs import SchemaDirectory, encode_container, encode_wire
from genesis.samples import real_lsst_alerts

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(cluster):
    name = "dec-" + uuid.uuid4().hex[:8]
    cluster.create_topic(name, partitions=1)
    yield name
    cluster.delete_topic(name)


def read_all(cluster, topic, **options):
    with gs.open(cluster.url(topic), start_at="earliest", **options) as stream:
        return [a for _, a in stream(until_eos=True)]


def test_every_alert_file_decodes_to_what_fastavro_reads(cluster, topic, data_dir):
    files = sorted(data_dir.rglob("*.avro"))
    assert len(files) == 71  # every .avro file of the data set (data README: "71 Avro files")
    expected = []
    with gs.open(cluster.url(topic), "w") as writer:
        for path in files:  # each file as one message, byte for byte (multi-alert files included)
            writer.write(path.read_bytes())
            with path.open("rb") as f:
                expected += list(fastavro.reader(f))
    got = read_all(cluster, topic)
    # 119: 58 raw ZTF + 44 Fink-enriched + 17 LSST records (data README, "Summary")
    assert len(got) == len(expected) == 58 + 44 + 17
    assert all(same(g, e) for g, e in zip(got, expected))


def test_a_message_is_committed_only_when_all_its_alerts_were_handed_over(cluster, topic, data_dir):
    multi = data_dir / "ztf" / "raw" / "fink-client" / "avro_multi_alerts_other.avro"
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(multi.read_bytes())  # one message, 3 alerts
    group = "g-" + uuid.uuid4().hex[:8]
    url = cluster.url(topic, group=group)
    with gs.open(url, start_at="earliest") as stream:
        got = [a["candid"] for _, a in stream(limit=2)]
        stream.commit()
    assert len(got) == 2
    assert cluster.committed(topic, group) == {}
    with gs.open(url, start_at="earliest") as stream:
        again = [a["candid"] for _, a in stream(until_eos=True)]
        stream.commit()
    assert again[:2] == got and len(again) == 3
    assert cluster.committed(topic, group) == {0: 1}


def lsst_records_and_ids(data_dir):
    """Real Rubin v9.0 alerts (Fink) and the synthetic 10.0/11.0 samples, with the schema id each belongs to."""
    schemas = SchemaDirectory(data_dir / "lsst" / "schema")
    out = []
    for alert in real_lsst_alerts(data_dir):
        path = str(alert.path)
        if "rubin_v9_0" in path:
            out.append((alert.record, 900))
        elif "sample_data/10.0" in path:
            out.append((alert.record, 1000))
        elif "sample_data/11.0" in path:
            out.append((alert.record, 1100))
    return schemas, out


@pytest.mark.edit_loop
def test_lsst_confluent_wire_format_with_a_schema_directory(cluster, topic, data_dir):
    schemas, records = lsst_records_and_ids(data_dir)
    assert len(records) == 8 + 1 + 1  # the Rubin v9.0 alerts (8 files) and the 10.0 and 11.0 fakeAlerts
    expected = []
    with gs.open(cluster.url(topic), "w") as writer:
        for record, sid in records:
            message = encode_wire(record, schemas.get(sid), sid)
            assert message[0] == 0 and int.from_bytes(message[1:5], "big") == sid
            writer.write(message)
            from io import BytesIO

            expected.append(fastavro.schemaless_reader(BytesIO(message[5:]), schemas.get(sid), None))
    got = read_all(cluster, topic, schemas=data_dir / "lsst" / "schema")
    assert len(got) == len(records) and all(same(g, e) for g, e in zip(got, expected))
    assert {g["diaSourceId"] for g in got} == {r["diaSourceId"] for r, _ in records}


def test_writer_encodes_dicts_as_ztf_containers_or_wire_format(cluster, topic, data_dir):
    path = data_dir / "ztf" / "raw" / "kowalski" / "20231012" / "2475433850015015000.avro"
    with path.open("rb") as f:
        reader = fastavro.reader(f)
        schema, record = reader.writer_schema, next(reader)
    schemas, lsst = lsst_records_and_ids(data_dir)
    with gs.open(cluster.url(topic), "w", schema=schema) as writer:
        writer.write(record, key=b"k", headers={"genesis.test": b"1"})
        writer.write(encode_container([record, record], schema))
    with gs.open(cluster.url(topic), "w", schema=schemas.schema(900), schema_id=900) as writer:
        writer.write(lsst[0][0])
    with gs.open(cluster.url(topic), start_at="earliest", schemas=data_dir / "lsst" / "schema") as stream:
        rows = list(stream(until_eos=True, metadata=True))
    assert [same(a, record) for _, a, _ in rows[:3]] == [True, True, True]
    assert rows[0][2].key == b"k" and ("genesis.test", b"1") in rows[0][2].headers
    assert rows[3][1]["diaSourceId"] == lsst[0][0]["diaSourceId"]
    assert rows[0][2].value[:4] == b"Obj\x01"


def test_schema_in_the_key_and_json_messages(cluster, topic, data_dir):
    """Fink publishes the Avro schema in the message key; other brokers send JSON."""
    import json
    from io import BytesIO

    schemas, records = lsst_records_and_ids(data_dir)
    record, sid = records[0]
    body = BytesIO()
    fastavro.schemaless_writer(body, schemas.get(sid), record)
    key = json.dumps(schemas.schema(sid)).encode()
    alert_json = json.loads((data_dir / "lsst" / "sample_data" / "11.0" / "alert.json").read_text())
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(body.getvalue(), key=key)
        writer.write(alert_json)
    got = read_all(cluster, topic)
    assert got[0]["diaSourceId"] == record["diaSourceId"] and got[1] == alert_json


# ---------------------------------------------------------------- compressed containers through Kafka


def fastavro_container(records: list[dict], schema: dict, codec: str) -> bytes:
    """``records`` in one Avro container written by fastavro with ``codec``, in several blocks."""
    out = BytesIO()
    fastavro.writer(out, schema, records, codec=codec, sync_interval=200_000)
    return out.getvalue()


@pytest.mark.parametrize("codec", ["snappy", "zstandard"])
def test_snappy_and_zstandard_containers_read_back_as_fastavro_reads_them(cluster, topic, data_dir, codec):
    """Real alerts re-encoded by fastavro with the codec, one message per file (multi-alert ones too)."""
    files = [
        data_dir / "ztf/fink_enriched/avro_multi_alerts.avro",  # 11 Fink alerts: several blocks
        data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro",
        data_dir / "lsst/real_fink/rubin_v9_0/169298432645136561_169298432645136561.avro",
    ]
    messages, expected = [], []
    for path in files:
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            records, schema = list(reader), reader.writer_schema
        value = fastavro_container(records, schema, codec)
        assert fastavro.reader(BytesIO(value)).codec == codec
        messages.append(value)
        expected += list(fastavro.reader(BytesIO(value)))  # the reference: fastavro reading the message
    with gs.open(cluster.url(topic), "w") as writer:
        for value in messages:
            writer.write(value)
    got = read_all(cluster, topic)
    assert len(got) == len(expected) > len(files)
    assert all(same(g, e) for g, e in zip(got, expected))


#: genesis refuses to inflate a container block beyond this (genesis/_codecs: 128 MiB, documented)
BLOCK_LIMIT = 128 * 1024 * 1024
#: what the hostile blocks below inflate to (or claim to): far beyond the limit
BOMB = 1024**3


def container_parts(record: dict, schema: dict, codec: str) -> tuple[bytes, int, bytes]:
    """A one-alert container by fastavro, taken apart: (header, record count, block data).

    The header is what fastavro writes for no records with the same sync marker; it ends
    with that marker, which also closes each block."""
    marker = os.urandom(16)
    empty, full = BytesIO(), BytesIO()
    fastavro.writer(empty, schema, [], codec=codec, sync_marker=marker)
    fastavro.writer(full, schema, [record], codec=codec, sync_marker=marker)
    header, value = empty.getvalue(), full.getvalue()
    assert value.startswith(header) and header.endswith(marker) and value.endswith(marker)
    count, pos = read_long(value, len(header))
    size, pos = read_long(value, pos)
    return header, count, value[pos : pos + size]


def with_block(header: bytes, count: int, data: bytes) -> bytes:
    """A container of one block: ``count`` records in ``data``, closed by the header's sync marker."""
    return header + write_long(count) + write_long(len(data)) + data + header[-16:]


def zstandard_bomb(record: dict, schema: dict, size_in_frame: bool = False) -> bytes:
    """A container whose one zstandard block inflates to 1 GiB: a real alert's Avro body, repeated.

    Compressed as a stream (the 1 GiB never exists here). Without ``size_in_frame`` the frame
    does not state its size, so only decompressing finds out how big it is; with it, the
    frame header declares the 1 GiB, as a one-shot ``zstd`` compression (and fastavro) writes
    it, and the block says it holds one record."""
    header, _, _ = container_parts(record, schema, "zstandard")
    body = BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    copies = BOMB // len(body.getvalue()) + 1
    compressor = zstandard.ZstdCompressor().compressobj(size=copies * len(body.getvalue()) if size_in_frame else -1)
    block = b"".join([compressor.compress(body.getvalue()) for _ in range(copies)] + [compressor.flush()])
    assert (zstandard.frame_content_size(block) > BOMB) if size_in_frame else zstandard.frame_content_size(block) == -1
    return with_block(header, 1 if size_in_frame else copies, block)


def snappy_bomb(record: dict, schema: dict) -> bytes:
    """A container whose snappy block says it inflates to 1 GiB: a real alert's block behind a
    length preamble (raw snappy starts with the uncompressed length) that claims so."""
    header, count, data = container_parts(record, schema, "snappy")
    _, preamble = read_varint(data, 0)
    return with_block(header, count, write_varint(BOMB) + data[preamble:])


def write_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def write_long(n: int) -> bytes:
    """An Avro long: zig-zag, then varint."""
    return write_varint((n << 1) ^ (n >> 63))


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, pos


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_varint(buf, pos)
    return (n >> 1) ^ -(n & 1), pos


@pytest.mark.parametrize(
    "bomb",
    [
        zstandard_bomb,
        lambda record, schema: zstandard_bomb(record, schema, size_in_frame=True),
        snappy_bomb,
    ],
    ids=["zstandard", "zstandard-size-in-frame", "snappy"],
)
def test_a_block_inflating_beyond_the_limit_is_a_decode_error_not_memory(cluster, topic, data_dir, bomb):
    """Between two good alerts, a container whose block inflates (or claims to) to 1 GiB: the
    stream reports it as a DecodeError at its offset and goes on, and the reader's memory
    stays near the 128 MiB limit instead of the 1 GiB a decoder without a bound would take."""
    path = data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro"
    good = path.read_bytes()
    with path.open("rb") as f:
        reader = fastavro.reader(f)
        record, schema = next(reader), reader.writer_schema
    hostile = bomb(record, schema)
    assert len(hostile) < 1024**2  # a small message
    with gs.open(cluster.url(topic), "w") as writer:
        for value in (good, hostile, good):
            writer.write(value)
    del hostile
    # read in a fresh process: its peak RSS counts every allocation, the compiled decoder's
    # (Rust, outside Python's allocator) included (helpers.PEAK_RSS)
    code = (
        "import json, sys\n"
        "import genesis.streaming as gs\n"
        f"{PEAK_RSS}\n"
        "failures = []\n"
        f"with gs.open({cluster.url(topic)!r}, start_at='earliest', "
        "on_decode_error=lambda meta, raw, err: failures.append([meta.offset, err.offset, type(err).__name__])"
        ") as stream:\n"
        "    got = [a['candid'] for _, a in stream(until_eos=True)]\n"
        "print(json.dumps({'got': got, 'failures': failures, "
        "'peak': peak_rss()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["got"] == [record["candid"]] * 2
    assert result["failures"] == [[1, 1, "DecodeError"]]
    # the decompressors may hold up to the limit, and zlib-style ones briefly twice that, beside
    # the interpreter and librdkafka (~150 MB); 1 GiB would be the block inflated in full
    assert result["peak"] < 2 * BLOCK_LIMIT + 300 * 1024**2, f"peak RSS {result['peak'] / 2**20:.0f} MiB"


# ---------------------------------------------------------------- the writer's schema_registry= path


def test_writer_registers_its_schema_and_readers_find_it_in_the_registry(cluster, topic, data_dir, registry_server):
    """``gs.open(url, "w", schema=, schema_registry=)`` registers the schema under ``<topic>-value``
    and writes the Confluent wire format with the id it got; a reader with ``schema_registry=``
    (and nothing else) decodes the messages as fastavro does with that schema."""
    avsc = data_dir / "lsst/schema/9.0/lsst.v9_0.alert.avsc"  # its named types are in the sibling files
    schema = json.loads(fastavro.schema.to_parsing_canonical_form(fastavro.schema.load_schema(str(avsc))))
    records = [a.record for a in real_lsst_alerts(data_dir) if "rubin_v9_0" in a.path.parts]
    assert records  # the 8 real Rubin v9.0 alerts
    with gs.open(cluster.url(topic), "w", schema=schema, schema_registry=registry_server.url) as writer:
        for record in records:
            writer.write(record)
    [registered] = registry_server.schemas
    assert registered["subject"] == f"{topic}-value"
    assert json.loads(registered["schema"]) == schema
    parsed = fastavro.parse_schema(schema)
    with gs.open(cluster.url(topic), start_at="earliest", schema_registry=registry_server.url) as stream:
        rows = list(stream(until_eos=True, metadata=True))
    assert len(rows) == len(records)
    for (_, alert, meta), record in zip(rows, records):
        assert meta.value[0] == 0 and int.from_bytes(meta.value[1:5], "big") == 1  # wire format, id 1
        assert same(alert, fastavro.schemaless_reader(BytesIO(meta.value[5:]), parsed, None))
        assert alert["diaSourceId"] == record["diaSourceId"]
    with gs.open(cluster.url(topic), start_at="earliest") as stream:  # no registry: says what is missing
        with pytest.raises(errors.DecodeError, match="schema_registry="):
            list(stream(until_eos=True))
