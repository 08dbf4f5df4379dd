"""Decoding and encoding of alert packets, on the real ZTF and LSST files only."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import tracemalloc
from io import BytesIO
from pathlib import Path
from unittest import mock

import fastavro
import pytest
from fastavro.schema import load_schema
from helpers import same

from genesis._codecs import Decoder, SchemaDirectory, _avro, _container, decode_file, encode_container, encode_wire
from genesis.demo import alert_data_dir
from genesis.errors import ConfigError, DecodeError, DeliveryError, SchemaNotFoundError

_DATA = alert_data_dir()
#: Every real .avro file, relative to the data directory (collected before fixtures exist).
ALL_AVRO = sorted(p.relative_to(_DATA).as_posix() for p in _DATA.rglob("*.avro")) if _DATA else []


def read_ocf(path: Path) -> tuple[list[dict], dict]:
    """The records and writer schema of a file, by fastavro.reader (the reference)."""
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        return list(reader), reader.writer_schema


def project(record: dict, schema: dict) -> dict:
    """The top-level fields of ``record`` that ``schema`` declares (Fink adds its own)."""
    return {f["name"]: record[f["name"]] for f in schema["fields"]}


@pytest.fixture(scope="module")
def lsst_dir(data_dir: Path) -> SchemaDirectory:
    return SchemaDirectory(data_dir / "lsst" / "schema")


def lsst_wire_cases(data_dir: Path) -> list[tuple[str, int, dict]]:
    """(file, schema id, record) for every LSST record that validates: v9.0 Fink files and fakeAlerts."""
    cases = []
    for path in sorted((data_dir / "lsst" / "real_fink" / "rubin_v9_0").glob("*.avro")):
        cases += [(path.name, 900, r) for r in read_ocf(path)[0]]
    for version, schema_id in (("10.0", 1000), ("11.0", 1100)):
        path = data_dir / "lsst" / "sample_data" / version / "fakeAlert.avro"
        cases += [(f"{version}/fakeAlert.avro", schema_id, r) for r in read_ocf(path)[0]]
    return cases


# --- Avro containers (ZTF framing) ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_AVRO)
def test_container_equals_fastavro_reader(data_dir: Path, name: str) -> None:
    value = (data_dir / name).read_bytes()
    assert same(Decoder().decode(value), list(fastavro.reader(BytesIO(value))))


def test_multi_record_containers_return_every_record(data_dir: Path) -> None:
    decoder = Decoder()
    for name in ("ztf/raw/fink-client/avro_multi_alerts_other.avro", "ztf/fink_enriched/avro_multi_alerts.avro"):
        expected, _ = read_ocf(data_dir / name)
        assert len(expected) > 1, name  # 3 and 11 records (data README, "files with several alerts")
        got = decoder.decode((data_dir / name).read_bytes())
        assert [r["candid"] for r in got] == [r["candid"] for r in expected]
        assert len({r["candid"] for r in got}) == len(got)


def test_writer_schema_is_compiled_once_per_distinct_schema(data_dir: Path) -> None:
    files = sorted((data_dir / "ztf/raw/kowalski/20231012").glob("*.avro"))
    distinct = {_container.read_header(path.read_bytes())[0] for path in files}
    assert len(files) > len(distinct)  # 16 alerts written by ZTF with one schema (4.01)
    compiled = []
    reader = type(Decoder()._reader)  # the compiled decoder's, or fastavro's: both compile once
    original = reader.compile

    def counting(self, raw, where):
        compiled.append(raw)
        return original(self, raw, where)

    with mock.patch.object(reader, "compile", counting):
        decoder = Decoder()
        for path in files * 2:
            decoder.decode(path.read_bytes())
    assert len(compiled) == len(distinct)


def test_writer_schema_after_a_decode_is_that_messages_own(data_dir: Path) -> None:
    """writer_schema() reuses the header the decoder has just read only for that very message."""
    old = (data_dir / "ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro").read_bytes()
    new = (data_dir / "ztf/raw/ztf-avro-alert/472263571115115000_v3.1.avro").read_bytes()
    fresh = Decoder()
    expected = {"old": fresh.writer_schema(old), "new": fresh.writer_schema(new)}
    assert expected["old"] != expected["new"]
    decoder = Decoder()
    decoder.decode(old)
    assert decoder.writer_schema(new) == expected["new"]  # not the header of the last decoded
    assert decoder.writer_schema(old) == expected["old"]
    decoder.decode(new)
    assert decoder.writer_schema(bytes(new)) == expected["new"] == decoder.writer_schema(new)


def test_schema_cache_is_bounded(data_dir: Path) -> None:
    cache = _avro.SchemaCache("test", size=2)
    for path in (
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.1.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.2.avro",
    ):
        cache.get(_container.read_header((data_dir / path).read_bytes())[0])
    assert len(cache._lru) == 2


@pytest.mark.parametrize("codec", ["deflate", "bzip2", "xz", "snappy", "zstandard"])
def test_compressed_containers(data_dir: Path, codec: str) -> None:
    records, schema = read_ocf(data_dir / "ztf/fink_enriched/avro_multi_alerts.avro")
    out = BytesIO()
    fastavro.writer(out, schema, records, codec=codec, sync_interval=200_000)  # several blocks
    assert same(Decoder().decode(out.getvalue()), records)
    assert same(Decoder().decode(encode_container(records, schema, codec=codec)), records)


def test_snappy_without_library_says_what_to_install(data_dir: Path, tmp_path: Path) -> None:
    """Without cramjam (and python-snappy), the pure-Python path says what to install; the compiled
    decoder reads snappy by itself.

    The test extra installs cramjam, so the missing library is simulated in a process of its
    own, where importing either fails as it would when it is not installed."""
    records, schema = read_ocf(data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro")
    path = tmp_path / "snappy.avro"
    with path.open("wb") as out:
        fastavro.writer(out, schema, records, codec="snappy")
    code = (
        "import sys\n"
        "class NotInstalled:  # import fails, as when neither is installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('cramjam', 'snappy'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "import genesis.streaming as gs\n"
        "from genesis.errors import DecodeError\n"
        "try:\n"
        f"    print(len(list(gs.open('file://{path}')())), 'alerts')\n"
        "except DecodeError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "GENESIS_NATIVE": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "snappy codec" in done.stdout and "pip install cramjam" in done.stdout
    if Decoder().compiled:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == f"{len(records)} alerts", done.stdout + done.stderr


def test_container_errors_are_clear(data_dir: Path) -> None:
    value = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    decoder = Decoder()
    _, _, sync, first_block = _container.read_header(value)
    cases = {
        value[:-100]: r"truncated Avro container: expected \d+ bytes in block 1, got \d+",
        value[:-5]: "sync marker after block 1 is cut off",
        value[:first_block]: "header but no data block",
        value[:300]: "truncated Avro container",
        value[:-16] + bytes(16): "sync marker after block 1 differs",
        value + b"\x02": "truncated",
        b"Obj\x01": "truncated",
    }
    for bad, reason in cases.items():
        with pytest.raises(DecodeError, match=reason):
            decoder.decode(bad)


def test_garbage_and_empty_messages() -> None:
    decoder = Decoder()
    for value, reason in (
        (b"", "empty message"),
        (None, "empty message"),
        (b"\x7fELF\x02", "unknown message format"),
        ("text", "must be bytes"),
    ):
        with pytest.raises(DecodeError, match=reason) as info:
            decoder.decode(value)
        assert info.value.topic is None
        assert "at t[3]@7" in str(info.value.located("t", 3, 7))


def test_absurd_string_length_fails_fast(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    # lsst.v11_0.alert starts with diaSourceId (long), then observation_reason ["null", "string"]
    value = b"\x00" + (1100).to_bytes(4, "big") + b"\x02" + b"\x02" + _avro.write_long(2**31) + b"ab"
    tracemalloc.start()
    start = time.monotonic()
    with pytest.raises(DecodeError, match="truncated"):
        Decoder(schemas=lsst_dir).decode(value)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the property: nothing near the claimed 2 GiB is allocated before the length is checked
    assert peak < 20_000_000
    # a hang guard, not a speed check: a decoder that walked the claimed 2 GiB would take
    # minutes; checking the length against what is there takes microseconds
    assert time.monotonic() - start < 10


# --- Confluent wire format (Rubin/LSST) -------------------------------------------------------


def test_lsst_wire_messages_decode_through_schema_directory(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    decoder = Decoder(schemas=lsst_dir)
    cases = lsst_wire_cases(data_dir)
    # the 8 one-record files of lsst/real_fink/rubin_v9_0 and the 10.0 and 11.0 fakeAlert.avro
    # (data README, "Layout"): the records lsst_wire_cases keeps, those that validate
    assert len(cases) == 8 + 2
    for name, schema_id, record in cases:
        schema = load_schema(str(lsst_dir.file(schema_id)))
        value = encode_wire(record, schema, schema_id)
        expected = fastavro.schemaless_reader(BytesIO(value[5:]), schema)
        decoded = decoder.decode(value)
        assert same(decoded, [expected]), name
        assert same(decoded[0], project(record, schema)), name


def test_wire_errors(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    _, schema_id, record = lsst_wire_cases(data_dir)[0]
    value = encode_wire(record, lsst_dir.schema(schema_id), schema_id)
    # no schema source: Rubin's own schemas (lsst-alert-packet) read id 900 as its schema 9.0
    # (without that package: tests/unit/test_rubin.py)
    assert same(Decoder().decode(value), Decoder(schemas=lsst_dir).decode(value))
    with pytest.raises(SchemaNotFoundError, match=f"unknown schema id 901: not in {lsst_dir.path}"):
        Decoder(schemas=lsst_dir).decode(b"\x00" + (901).to_bytes(4, "big") + value[5:])
    with pytest.raises(DecodeError, match="12 bytes of trailing garbage"):
        Decoder(schemas=lsst_dir).decode(value + b"x" * 12)
    with pytest.raises(DecodeError, match="truncated Confluent wire-format message"):
        Decoder(schemas=lsst_dir).decode(value[:-50])
    with pytest.raises(DecodeError, match="header needs 5 bytes"):
        Decoder(schemas=lsst_dir).decode(value[:3])
    with pytest.raises(DecodeError, match="does not match its schema|truncated"):  # 9.0 data, 11.0 schema
        Decoder(schemas=lsst_dir).decode(b"\x00" + (1100).to_bytes(4, "big") + value[5:])


def test_schemas_as_mapping(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    _, schema_id, record = lsst_wire_cases(data_dir)[-1]
    text = json.dumps(lsst_dir.schema(schema_id))
    value = encode_wire(record, text, 7)
    assert same(Decoder(schemas={7: text}).decode(value), [record])


# --- schema in the key (Fink) and JSON --------------------------------------------------------


def test_schema_in_key(data_dir: Path) -> None:
    decoder = Decoder()
    for path in sorted((data_dir / "ztf/fink_enriched").glob("*.avro")):
        records, schema = read_ocf(path)
        key = _container.read_header(path.read_bytes())[0]
        for record in records:
            body = BytesIO()
            fastavro.schemaless_writer(body, schema, record)
            assert same(decoder.decode(body.getvalue(), key=key), [record])


def test_non_schema_keys_are_ignored(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    _, schema_id, record = lsst_wire_cases(data_dir)[0]
    value = encode_wire(record, lsst_dir.schema(schema_id), schema_id)
    decoder = Decoder(schemas=lsst_dir)
    for key in (b'{"objectId": "ZTF19acihgng"}', b"ZTF19acihgng", b"[1, 2]", b"{not json"):
        assert decoder.decode(value, key=key)[0]["diaSourceId"] == record["diaSourceId"]


def test_json_messages(data_dir: Path) -> None:
    texts = [(data_dir / "lsst/sample_data" / v / "alert.json").read_bytes() for v in ("10.0", "11.0")]
    docs = [json.loads(t) for t in texts]
    decoder = Decoder()
    assert decoder.decode(texts[0]) == [docs[0]]
    assert decoder.decode(json.dumps(docs).encode()) == docs
    assert decode_file(data_dir / "lsst/sample_data/11.0/alert.json") == [docs[1]]
    for bad, reason in ((texts[0][:-10], "invalid JSON"), (b"[1, 2]", "array of objects"), (b"{\xff}", "invalid JSON")):
        with pytest.raises(DecodeError, match=reason):
            decoder.decode(bad)


# --- pickling ---------------------------------------------------------------------------------


def test_decoder_pickles_without_caches(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    decoder = Decoder(schemas=lsst_dir)
    _, schema_id, record = lsst_wire_cases(data_dir)[0]
    value = encode_wire(record, lsst_dir.schema(schema_id), schema_id)
    ztf = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    expected = decoder.decode(value) + decoder.decode(ztf)
    blob = pickle.dumps(decoder)
    assert len(blob) < 1000  # configuration only, no parsed schemas
    clone = pickle.loads(blob)
    assert same(clone.decode(value) + clone.decode(ztf), expected)
    assert len(pickle.dumps(Decoder(schemas=str(lsst_dir.path), schema_registry="http://localhost:1"))) < 1000


# --- encoders: round trips --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_AVRO)
def test_round_trip_with_writer_schema(data_dir: Path, name: str) -> None:
    records, schema = read_ocf(data_dir / name)
    decoder = Decoder(schemas={42: schema})
    assert same(decoder.decode(encode_container(records, schema)), records)
    for record in records:
        assert same(decoder.decode(encode_wire(record, schema, 42)), [record])


def test_encode_with_official_ztf_schema(data_dir: Path, ztf_schema) -> None:
    schema = ztf_schema("4.01")
    decoder = Decoder()
    for path in sorted((data_dir / "ztf/raw/kowalski/20231012").glob("*.avro"))[:4]:
        records, _ = read_ocf(path)
        value = encode_container(records[0], schema)
        assert same(decoder.decode(value), records)
        assert fastavro.reader(BytesIO(value)).writer_schema["name"] == "ztf.alert"


def test_encode_errors(data_dir: Path) -> None:
    records, schema = read_ocf(data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro")
    with pytest.raises(DeliveryError, match="does not fit the schema ztf.alert"):
        encode_container({**records[0], "candid": "not a long"}, schema)
    with pytest.raises(ConfigError, match="unknown Avro codec"):
        encode_container(records, schema, codec="gzip")
    with pytest.raises(ConfigError, match="not a valid Avro schema"):
        encode_wire(records[0], {"type": "record", "name": "x", "fields": [{"name": "a"}]}, 1)
