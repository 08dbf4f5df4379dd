"""Rubin's schemas built in (lsst-alert-packet, the extra genesis-streaming[rubin]), through real topics.

What genesis yields for a Confluent wire-format message with no schema option is what Rubin's own
package deserializes; topics whose writer schema changes mid-stream decode across each switch,
inline and in pool workers; ``genesis inject --format lsst`` sends Rubin's newest schema.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pytest
from helpers import assert_same
from lsst.alert.packet import Schema, get_schema_path, retrieve_alerts

import genesis.streaming as gs
from genesis import errors
from genesis._codecs import Decoder, encode_container, encode_wire, fit, rubin
from genesis.cli import main as cli
from genesis.samples import real_lsst_alerts

pytestmark = pytest.mark.integration

#: every schema lsst-alert-packet 30.2026.2700 ships (its schema/<major>/<minor>/ directories)
SHIPPED = ["3.0", "4.0", "5.0", "6.0", "6.1", "7.0", "7.1", "7.2", "7.3", "7.4", "8.0", "9.0", "10.0", "11.0", "11.1"]


@pytest.fixture
def topic(cluster):
    name = "rubin-" + uuid.uuid4().hex[:8]
    cluster.create_topic(name, partitions=1)  # one partition: the order written is the order read
    yield name
    cluster.delete_topic(name)


def package_schema(version: str) -> Schema:
    """Rubin's own Schema object for ``version``, loaded the package's way."""
    major, minor = version.split(".")
    return Schema.from_file(str(Path(get_schema_path(int(major), int(minor))) / f"lsst.v{major}_{minor}.alert.avsc"))


def read(cluster, topic: str, **kwargs) -> list:
    with gs.open(cluster.url(topic), start_at="earliest") as stream:
        return list(stream(until_eos=True, metadata=True, **kwargs))


def test_every_sample_packet_of_the_package_decodes_to_what_its_deserializer_gives(cluster, topic) -> None:
    assert list(rubin.versions()) == SHIPPED and rubin.latest() == "11.1"
    sent = []
    with gs.open(cluster.url(topic), "w") as writer:
        for version in SHIPPED:
            schema = package_schema(version)
            with open(
                Path(get_schema_path(*map(int, version.split(".")))) / "sample_data" / "fakeAlert.avro", "rb"
            ) as f:
                _, records = retrieve_alerts(f)
                records = list(records)
            assert records, version
            for record in records:
                schema_id = schema.get_schema_id()  # Rubin's own id: major*100 + minor
                payload = schema.serialize(record)
                writer.write(b"\x00" + schema_id.to_bytes(4, "big") + payload)
                sent.append((schema_id, schema.deserialize(payload)))
    got = read(cluster, topic)
    assert len(got) == len(sent) == len(SHIPPED)
    for (_, alert, meta), (schema_id, expected) in zip(got, sent):
        assert int.from_bytes(meta.value[1:5], "big") == schema_id
        assert_same(alert, expected)
    ids = sorted({schema_id for schema_id, _ in sent})
    print(f"Rubin schema ids decoded: {ids}")
    assert ids == [rubin.schema_id(v) for v in SHIPPED]


@pytest.mark.edit_loop
def test_built_in_schemas_apply_only_without_schemas_or_a_registry(cluster, topic, data_dir) -> None:
    record = rubin.sample("11.1")
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(encode_wire(record, rubin.load("11.1"), 1101))
    # a directory that lacks 1101 is not completed by the built-in schemas: the id is not found there
    with gs.open(cluster.url(topic), start_at="earliest", schemas=data_dir / "lsst" / "schema") as stream:
        with pytest.raises(errors.SchemaNotFoundError, match="unknown schema id 1101: not in .*lsst/schema"):
            list(stream(until_eos=True))


def test_an_id_rubin_never_published_and_a_bad_packet_say_how_the_id_was_read(cluster, topic) -> None:
    good = encode_wire(rubin.sample("11.1"), rubin.load("11.1"), 1101)
    with gs.open(cluster.url(topic), "w") as writer:
        writer.write(b"\x00" + (1250).to_bytes(4, "big") + good[5:])  # no schema 12.50
        writer.write(good[:-40])  # truncated
    with gs.open(cluster.url(topic), start_at="earliest") as stream:
        with pytest.raises(
            errors.SchemaNotFoundError, match=r"1250, read as Rubin's schema 12\.50.*upgrade lsst-alert-packet"
        ):
            list(stream(until_eos=True))
    with gs.open(cluster.url(topic), start_at="earliest", on_decode_error="skip") as stream:
        assert list(stream(until_eos=True)) == []
        assert stream.stats.skipped == 2
    decoder = Decoder()
    with pytest.raises(
        errors.DecodeError, match=r"schema id 1101, read as Rubin's schema 11\.1 from lsst-alert-packet"
    ):
        decoder.decode(good[:-40])


def rubin_switch(data_dir) -> list[tuple[int, bytes]]:
    """The real Rubin alerts of the data (Fink's v9.0 and v10.0 ones), as Rubin would send them in
    10.0, then 11.0, then 11.1 (converted: common fields kept, new ones from the package's sample)."""
    reals = [a.record for a in real_lsst_alerts(data_dir) if "real_fink" in a.path.parts]
    assert len(reals) == 15  # 8 v9.0 + 7 v10.0 (data README)
    messages = []
    for version in ("10.0", "11.0", "11.1"):
        schema = rubin.load(version)
        for record in reals[:5]:
            converted = rubin.convert(record, version)
            assert converted["diaSourceId"] == record["diaSourceId"]
            assert converted["diaSource"]["ra"] == record["diaSource"]["ra"]
            messages.append((rubin.schema_id(version), encode_wire(converted, schema, rubin.schema_id(version))))
    return messages


def ztf_switch(data_dir, ztf_schema) -> list[bytes]:
    """Real ZTF 3.3 alerts as ZTF sent them, then real 4.02 ones (re-published by Fink) in ZTF's official 4.02 schema."""
    old = [p.read_bytes() for p in sorted((data_dir / "ztf/raw/fink-client").glob("ZTF*.avro"))]
    official = ztf_schema("4.02")
    parsed = fastavro.parse_schema(official)
    with open(data_dir / "ztf/fink_enriched/part-3-305711.avro", "rb") as f:
        new = [encode_container(fit(r, parsed), official) for r in list(fastavro.reader(f))[:5]]
    return old + new


@pytest.mark.parametrize("workers", [0, 2])
def test_a_topic_whose_schema_changes_mid_stream_decodes_across_each_switch(
    cluster, topic, data_dir, ztf_schema, workers
) -> None:
    rubin_messages = rubin_switch(data_dir)
    ztf_messages = ztf_switch(data_dir, ztf_schema)
    with gs.open(cluster.url(topic), "w") as writer:
        for _, message in rubin_messages:
            writer.write(message)
        for message in ztf_messages:
            writer.write(message)
    expected = []
    for schema_id, message in rubin_messages:
        expected.append(package_schema(rubin.version_of(schema_id)).deserialize(message[5:]))
    for message in ztf_messages:
        expected += list(fastavro.reader(io.BytesIO(message)))
    if workers:
        with gs.Pool(workers) as pool:
            got = read(cluster, topic, pool=pool)
    else:
        got = read(cluster, topic)
    assert len(got) == len(expected) == 15 + len(ztf_messages)
    for (_, alert, _), want in zip(got, expected):
        assert_same(alert, want)
    assert [
        json.loads(fastavro.reader(io.BytesIO(m)).metadata["avro.schema"]).get("version") for m in ztf_messages[-5:]
    ] == ["4.02"] * 5
    assert {a["schemavsn"] for _, a, _ in got[15:]} >= {"3.3", "4.02"}


def test_inject_sends_rubins_newest_schema_by_default(demo, capsys) -> None:
    url = demo.url("lsst")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert (
        cli(["inject", url, "--format", "lsst", "--rate", "20/1s", "--visits", "1", "--payloads", "4", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["schema_version"] == "11.1" and report["delivered"] == 20
    assert 70_000 < report["mean_bytes"] < 95_000  # ~80 KB with cutouts
    with gs.open(url, start_at=since) as stream:
        rows = [row for row in stream(timeout=10, metadata=True) if row[1].get("diaSourceId", 0) >= report["first_id"]]
    assert len(rows) == 20
    for _, alert, meta in rows:
        assert int.from_bytes(meta.value[1:5], "big") == 1101
        assert len(alert["cutoutScience"]) > 1000 and alert["diaSourceId"] >= 8 * 10**18
        assert abs(len(meta.value) - report["mean_bytes"]) < 10_000
    assert cli(["inject", url, "--format", "lsst", "--schema-version", "12.0", "--visits", "1"]) == 1
    err = capsys.readouterr().err
    assert "Rubin schema 12.0 is not among the schemas of lsst-alert-packet" in err and "11.1" in err
