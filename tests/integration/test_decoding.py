"""Every packet format, through a real Kafka topic: what genesis yields is what fastavro reads from the file."""

from __future__ import annotations

import math
import uuid

import fastavro
import pytest

import genesis.streaming as gs
from genesis._codecs import SchemaDirectory, encode_container, encode_wire
from genesis.samples import real_lsst_alerts

pytestmark = pytest.mark.integration


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (real alerts hold NaNs)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


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
    assert len(files) == 71
    expected = []
    with gs.open(cluster.url(topic), "w") as writer:
        for path in files:  # each file as one message, byte for byte (multi-alert files included)
            writer.write(path.read_bytes())
            with path.open("rb") as f:
                expected += list(fastavro.reader(f))
    got = read_all(cluster, topic)
    assert len(got) == len(expected) == 119  # 58 raw ZTF + 44 Fink-enriched + 17 LSST records
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


def test_lsst_confluent_wire_format_with_a_schema_directory(cluster, topic, data_dir):
    schemas, records = lsst_records_and_ids(data_dir)
    assert len(records) == 10
    expected = []
    with gs.open(cluster.url(topic), "w") as writer:
        for record, sid in records:
            message = encode_wire(record, schemas.get(sid), sid)
            assert message[0] == 0 and int.from_bytes(message[1:5], "big") == sid
            writer.write(message)
            from io import BytesIO

            expected.append(fastavro.schemaless_reader(BytesIO(message[5:]), schemas.get(sid), None))
    got = read_all(cluster, topic, schemas=data_dir / "lsst" / "schema")
    assert len(got) == 10 and all(same(g, e) for g, e in zip(got, expected))
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
