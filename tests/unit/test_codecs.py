"""Decoding and encoding of alert packets, on the real ZTF and LSST files only."""

from __future__ import annotations

import json
import math
import pickle
import time
import tracemalloc
from io import BytesIO
from pathlib import Path
from unittest import mock

import fastavro
import pytest
from fastavro.schema import load_schema

from genesis._codecs import Decoder, SchemaDirectory, decode_file, encode_container, encode_wire, load_ztf_schema
from genesis._codecs import _avro, _container
from genesis._paths import alert_data_dir
from genesis.errors import ConfigError, DecodeError, DeliveryError, SchemaNotFoundError

_DATA = alert_data_dir()
#: Every real .avro file, relative to the data directory (collected before fixtures exist).
ALL_AVRO = sorted(p.relative_to(_DATA).as_posix() for p in _DATA.rglob("*.avro")) if _DATA else []


def same(a, b) -> bool:
    """Deep equality where NaN equals NaN and types must match (1 != 1.0, True != 1)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


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


@pytest.fixture(scope="module")
def ztf_messages(data_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((data_dir / "ztf" / "raw").rglob("*.avro"))]


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
    multi = decoder.decode((data_dir / "ztf/raw/fink-client/avro_multi_alerts_other.avro").read_bytes())
    fink = decoder.decode((data_dir / "ztf/fink_enriched/avro_multi_alerts.avro").read_bytes())
    assert len(multi) == 3 and len(fink) == 11
    assert len({r["candid"] for r in fink}) == 11


def test_writer_schema_is_parsed_once_per_distinct_schema(data_dir: Path) -> None:
    files = sorted((data_dir / "ztf/raw/kowalski/20231012").glob("*.avro"))
    decoder = Decoder()
    with mock.patch.object(_avro.fastavro, "parse_schema", wraps=fastavro.parse_schema) as parse:
        for path in files * 2:
            decoder.decode(path.read_bytes())
    assert len(files) == 16 and parse.call_count == 1


def test_schema_cache_is_bounded(data_dir: Path) -> None:
    cache = _avro.SchemaCache("test", size=2)
    for path in (
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.1.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.2.avro",
    ):
        cache.get(_container.read_header((data_dir / path).read_bytes())[0])
    assert len(cache._lru) == 2


@pytest.mark.parametrize("codec", ["deflate", "bzip2", "xz"])
def test_compressed_containers(data_dir: Path, codec: str) -> None:
    records, schema = read_ocf(data_dir / "ztf/fink_enriched/avro_multi_alerts.avro")
    out = BytesIO()
    fastavro.writer(out, schema, records, codec=codec, sync_interval=200_000)  # several blocks
    assert same(Decoder().decode(out.getvalue()), records)
    assert same(Decoder().decode(encode_container(records, schema, codec=codec)), records)


def test_snappy_without_library_says_what_to_install(data_dir: Path) -> None:
    if _has_snappy():
        pytest.skip("a snappy library is installed")
    value = (data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro").read_bytes()
    raw, _, sync, pos = _container.read_header(value)
    snappy_value = _container._header(raw, "snappy", sync) + value[pos:]
    with pytest.raises(DecodeError, match="cramjam"):
        Decoder().decode(snappy_value)


def _has_snappy() -> bool:
    from genesis._codecs._compression import _snappy_module

    return _snappy_module() is not None


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
    start = time.perf_counter()
    with pytest.raises(DecodeError, match="truncated"):
        Decoder(schemas=lsst_dir).decode(value)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 1 and peak < 20_000_000


# --- Confluent wire format (Rubin/LSST) -------------------------------------------------------


def test_lsst_wire_messages_decode_through_schema_directory(data_dir: Path, lsst_dir: SchemaDirectory) -> None:
    decoder = Decoder(schemas=lsst_dir)
    cases = lsst_wire_cases(data_dir)
    assert len(cases) == 10
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
    with pytest.raises(DecodeError, match="pass schemas= .* or schema_registry="):
        Decoder().decode(value)
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


def test_encode_with_official_ztf_schema(data_dir: Path) -> None:
    schema = load_ztf_schema(data_dir / "ztf/schema/4.01")
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


# --- speed ------------------------------------------------------------------------------------


def test_faster_than_fastavro_reader(ztf_messages: list[bytes]) -> None:
    decoder = Decoder()
    decoder.decode(ztf_messages[0])
    ours = theirs = math.inf
    for _ in range(3):  # interleaved best-of-3: robust against a busy machine
        start = time.perf_counter()
        for value in ztf_messages:
            decoder.decode(value)
        ours = min(ours, time.perf_counter() - start)
        start = time.perf_counter()
        for value in ztf_messages:
            list(fastavro.reader(BytesIO(value)))
        theirs = min(theirs, time.perf_counter() - start)
    assert ours < theirs
