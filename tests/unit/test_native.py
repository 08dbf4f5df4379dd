"""genesis._native, the compiled Avro decoder: identical to fastavro on every real alert.

Fidelity (every ``.avro`` of the data directory, Rubin records in the Confluent wire format,
every sample packet of Rubin's ``lsst-alert-packet``), the prefix decoding that declared-field
filters use, pickling, and the wording of the errors. Skipped where the extension is not built.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import load_schema
from helpers import PEAK_RSS, assert_same

from genesis.demo import alert_data_dir

native = pytest.importorskip("genesis._native")

_DATA = alert_data_dir()
ALL_AVRO = sorted(p.relative_to(_DATA).as_posix() for p in _DATA.rglob("*.avro")) if _DATA else []


def native_container(buf: bytes) -> list:
    """All records of a container file, by the native path (read_container + Schema.decode)."""
    schema_json, blocks = native.read_container(buf)
    schema = native.Schema(schema_json)
    records = []
    for count, data, start, end in blocks:
        records += schema.decode(data, start, end, count)
    return records


def schemaless(schema, record) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), record)
    return body.getvalue()


def lsst_packet_dirs() -> list[Path]:
    """Every schema version of lsst-alert-packet that ships sample data."""
    try:
        import lsst.alert.packet
    except ImportError:
        return []
    root = Path(lsst.alert.packet.__file__).parent / "schema"
    return sorted({p.parent.parent for p in root.glob("*/*/sample_data/fakeAlert.avro")})


LSST_PACKETS = lsst_packet_dirs()


# --- fidelity --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_AVRO)
def test_every_real_container_equals_fastavro(data_dir: Path, name: str) -> None:
    buf = (data_dir / name).read_bytes()
    assert_same(native_container(buf), list(fastavro.reader(io.BytesIO(buf))))


def test_null_codec_blocks_are_the_buffer_itself(data_dir: Path) -> None:
    buf = (data_dir / "ztf/raw/fink-client/avro_multi_alerts_other.avro").read_bytes()
    schema_json, blocks = native.read_container(buf)
    assert schema_json == fastavro_header_schema(buf)
    assert blocks and all(data is buf for _, data, _, _ in blocks)
    assert sum(count for count, *_ in blocks) == 3


def fastavro_header_schema(buf: bytes) -> bytes:
    from genesis._codecs._container import read_header

    return read_header(buf)[0]


def rubin_wire_cases(data: Path) -> list[tuple[str, dict, bytes]]:
    """(label, schema, wire message) of the Rubin records of the data directory, each encoded with
    the official schema of its version (lsst/schema/<ver>/, named types inlined by load_schema);
    Fink's v10 records do not fit that schema and travel with their own writer schema."""
    cases = []
    picks = [("9.0", p) for p in sorted((data / "lsst/real_fink/rubin_v9_0").glob("*.avro"))]
    picks += [(v, data / f"lsst/sample_data/{v}/fakeAlert.avro") for v in ("10.0", "11.0")]
    for version, path in picks:
        major, minor = version.split(".")
        schema = load_schema(str(data / f"lsst/schema/{version}/lsst.v{major}_{minor}.alert.avsc"), _write_hint=False)
        names = [f["name"] for f in schema["fields"]]
        with path.open("rb") as fh:
            for i, record in enumerate(fastavro.reader(fh)):
                record = {k: record[k] for k in names}
                wire = b"\x00" + (int(major) * 100).to_bytes(4, "big") + schemaless(schema, record)
                cases.append((f"{path.name}#{i} v{version}", schema, wire))
    fink = data / "lsst/real_fink/part-2-918301.avro"
    with fink.open("rb") as fh:
        reader = fastavro.reader(fh)
        for i, record in enumerate(reader):
            wire = b"\x00\x00\x00\x03\xe8" + schemaless(reader.writer_schema, record)
            cases.append((f"{fink.name}#{i} (own schema)", reader.writer_schema, wire))
    return cases


def test_rubin_wire_format_equals_fastavro(data_dir: Path) -> None:
    cases = rubin_wire_cases(data_dir)
    assert len(cases) >= 17
    for label, schema, wire in cases:
        parsed = fastavro.parse_schema(schema)
        want = fastavro.schemaless_reader(io.BytesIO(wire[5:]), parsed)
        schema_id = native.wire_schema_id(wire)
        assert schema_id in (900, 1000, 1100), label
        compiled = native.Schema(json.dumps(schema))
        assert_same(compiled.decode(wire, 5), [want], label)


@pytest.mark.skipif(not LSST_PACKETS, reason="lsst-alert-packet is not installed")
@pytest.mark.parametrize("version", [f"{p.parent.name}.{p.name}" for p in LSST_PACKETS])
def test_every_lsst_alert_packet_sample_equals_fastavro(version: str) -> None:
    """Each version's fakeAlert.avro as a container, and its alert.json in the wire format with
    the version's .avsc schema (lsst-alert-packet ships 3.0 to 11.1)."""
    major, minor = version.split(".")
    folder = next(p for p in LSST_PACKETS if (p.parent.name, p.name) == (major, minor))
    buf = (folder / "sample_data" / "fakeAlert.avro").read_bytes()
    assert_same(native_container(buf), list(fastavro.reader(io.BytesIO(buf))))

    schema = load_schema(str(folder / f"lsst.v{major}_{minor}.alert.avsc"), _write_hint=False)
    compiled = native.Schema(json.dumps(schema))
    records = list(fastavro.reader(io.BytesIO(buf)))
    sample = folder / "sample_data" / "alert.json"
    if sample.exists():
        from fastavro.json_read import reader as json_reader

        try:
            with sample.open() as fh:
                records += list(json_reader(fh, schema))
        except Exception:  # alert.json is plain JSON in some versions, not Avro JSON
            pass
    parsed = fastavro.parse_schema(schema)
    for record in records:
        body = schemaless(parsed, {f["name"]: record.get(f["name"]) for f in schema["fields"]})
        wire = b"\x00" + (int(major) * 100 + int(minor)).to_bytes(4, "big") + body
        want = fastavro.schemaless_reader(io.BytesIO(body), parsed)
        assert_same(compiled.decode(wire, 5), [want])


def test_lsst_alert_packet_ships_every_version() -> None:
    if not LSST_PACKETS:
        pytest.skip("lsst-alert-packet is not installed")
    versions = {f"{p.parent.name}.{p.name}" for p in LSST_PACKETS}
    assert {"3.0", "9.0", "10.0", "11.0", "11.1"} <= versions and len(versions) >= 15


# --- decoding only what a filter reads ---------------------------------------------------------


def real_records(data: Path) -> list[tuple[str, native.Schema, bytes, int, int, int]]:
    """(name, schema, data, start, end, count) of every block of every real container."""
    out = []
    for name in ALL_AVRO:
        buf = (data / name).read_bytes()
        schema_json, blocks = native.read_container(buf)
        schema = native.Schema(schema_json)
        out += [(name, schema, d, s, e, c) for c, d, s, e in blocks]
    return out


def test_prefix_then_rest_equals_full_decode(data_dir: Path) -> None:
    blocks = real_records(data_dir)
    for name, schema, data, start, end, count in blocks:
        full = schema.decode(data, start, end, count)  # equal to fastavro's: see above
        # pickles are equal when values, types (1 vs 1.0, True vs 1) and key orders are, NaN too
        wanted = [pickle.dumps(r) for r in full]
        nfields = len(schema.field_names)
        assert nfields == len(full[0])
        for n in range(nfields + 1):
            prefixes = schema.decode_prefix(data, start, end, count, n)
            assert len(prefixes) == count
            for (record, pos), want in zip(prefixes, wanted):
                assert list(record) == schema.field_names[:n], name
                schema.decode_rest(data, pos, record, n)
                assert pickle.dumps(record) == want, f"{name} nfields={n}"


def test_decode_fields_reads_a_message_cut_right_after_its_last_field(data_dir: Path) -> None:
    """A ZTF alert cut right after `candidate` still yields objectId, candid and candidate."""
    buf = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    schema_json, [(count, data, start, end)] = native.read_container(buf)
    schema = native.Schema(schema_json)
    full = schema.decode(data, start, end, count)[0]
    n = schema.field_names.index("candidate") + 1
    [(prefix, cut)] = schema.decode_prefix(data, start, end, 1, n)
    truncated = data[:cut]
    record, pos = schema.decode_fields(truncated, start, n)
    assert pos == cut == len(truncated)
    assert_same(record, {k: full[k] for k in schema.field_names[:n]})
    assert_same(prefix, record)
    with pytest.raises(native.DecodeError, match="truncated"):
        schema.decode(truncated, start)
    with pytest.raises(native.DecodeError, match="truncated"):
        schema.decode_prefix(truncated, start, None, 1, n)
    # finishing the record from the full message gives the full decode
    schema.decode_rest(data, pos, record, n, end=end)
    assert_same(record, full)


def test_prefix_of_a_non_record_schema_is_refused() -> None:
    schema = native.Schema('{"type": "array", "items": "int"}')
    assert schema.field_names == []
    assert schema.decode(b"\x04\x02\x04\x00") == [[1, 2]]
    with pytest.raises(ValueError, match="record"):
        schema.decode_prefix(b"\x00", 0, None, 1, 0)


def test_nfields_beyond_the_record_is_the_whole_record() -> None:
    schema = native.Schema('{"type": "record", "name": "r", "fields": [{"name": "a", "type": "int"}]}')
    assert schema.decode_prefix(b"\x02\x04", 0, None, 2, 5) == [({"a": 1}, 1), ({"a": 2}, 2)]
    assert schema.decode_fields(b"\x02", 0, 9) == ({"a": 1}, 1)


# --- the Schema object --------------------------------------------------------------------------


def test_schema_pickles_as_its_json(data_dir: Path) -> None:
    buf = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    schema_json, blocks = native.read_container(buf)
    schema = native.Schema(schema_json)
    again = pickle.loads(pickle.dumps(schema))
    assert again.field_names == schema.field_names and again.json == schema_json
    _, data, start, end = blocks[0]
    assert_same(again.decode(data, start, end), schema.decode(data, start, end))
    assert schema.name == "ztf.alert"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '"nosuchtype"',
        '{"type": "record", "name": "r", "fields": [{"name": "a"}]}',
        '{"type": "record", "fields": []}',
        '{"type": "enum", "name": "e", "symbols": ["a", "a"]}',
        '{"type": "enum", "name": "e", "symbols": ["1a"]}',
        '{"type": "record", "name": "r", "fields": [{"name": "a", "type": {"type": "record", "name": "r", "fields": []}}]}',
        '{"type": "fixed", "name": "f", "size": 2, "logicalType": "decimal", "precision": 5}',
        '{"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 3}',
        '{"type": {"type": "int"}}',
        '{"type": "record", "name": "a.r", "fields": [{"name": "x", "type": "r2"}]}',
    ],
)
def test_invalid_schemas_raise_schema_error(text: str) -> None:
    with pytest.raises(native.SchemaError):
        native.Schema(text)
    with pytest.raises(Exception):
        fastavro.parse_schema(json.loads(text))


def test_names_resolve_as_fastavro_resolves_them() -> None:
    schema = {
        "type": "record",
        "name": "outer",
        "namespace": "a.b",
        "aliases": ["old"],
        "fields": [
            {"name": "x", "type": {"type": "fixed", "name": "f", "size": 2}},
            {"name": "y", "type": "f"},
            {"name": "z", "type": "a.b.f"},
            {
                "name": "inner",
                "type": {
                    "type": "record",
                    "name": "c.inner",
                    "fields": [{"name": "e", "type": {"type": "enum", "name": "e", "symbols": ["A", "B"]}}],
                },
            },
            {"name": "w", "type": "c.e"},
            {"name": "self", "type": ["null", "outer"]},
        ],
    }
    record = {"x": b"ab", "y": b"cd", "z": b"ef", "inner": {"e": "B"}, "w": "A", "self": None}
    record = dict(record, self=dict(record))
    body = schemaless(schema, record)
    want = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema))
    assert_same(native.Schema(json.dumps(schema)).decode(body), [want])


# --- errors: the same reasons and wording as the pure-Python path ---------------------------------

REC = '{"type": "record", "name": "r", "fields": [{"name": "s", "type": "string"}, {"name": "u", "type": ["null", "long"]}]}'


@pytest.mark.parametrize(
    "data, count, match",
    [
        (
            b"\x06ab",
            1,
            r"^truncated Avro data: record 1 of 1 ends early \(the length of a string at byte 0 needs 3 bytes",
        ),
        (b"\x02a\x02\x02\x00", 1, r"^Avro data has 1 bytes of trailing garbage after its record$"),
        (b"\x02a\x00\x02b\x00\x00\x00", 2, r"^Avro data has 2 bytes of trailing garbage after its 2 records$"),
        (b"\x02\xff\x00", 1, r"does not match its schema r: a string is not valid UTF-8"),
        (b"\x02a\x04", 1, r"does not match its schema r: a union or enum index is out of range"),
        (b"\x02a\x01", 1, r"a union or enum index is out of range \(union index -1 of 2"),
        (b"\x02a\x02" + b"\xff" * 10 + b"\x01", 1, r"^corrupt Avro data: the long at byte 3 is not a valid varint"),
        (b"\x01", 1, r"^corrupt Avro data: negative length -1 of the length of a string at byte 0"),
        (b"\x02a\x00", 3, r"^corrupt Avro data: it claims 3 records in only 3 bytes$"),
    ],
)
def test_decode_errors(data: bytes, count: int, match: str) -> None:
    with pytest.raises(native.DecodeError, match=match):
        native.Schema(REC).decode(data, 0, None, count)


def test_what_names_the_data_in_messages() -> None:
    with pytest.raises(native.DecodeError, match=r"^truncated block 2 of the Avro container: record 1 of 1"):
        native.Schema(REC).decode(b"\x06", what="block 2 of the Avro container")


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(native.DecodeError, ValueError) and issubclass(native.SchemaError, ValueError)
    assert native.DecodeError.__module__ == "genesis._native"


def test_wire_schema_id() -> None:
    assert native.wire_schema_id(b"\x00\x00\x00\x04\x4c\x02") == 1100
    with pytest.raises(native.DecodeError, match="truncated Confluent wire-format message"):
        native.wire_schema_id(b"\x00\x00")
    with pytest.raises(native.DecodeError, match="magic byte"):
        native.wire_schema_id(b"\x05\x00\x00\x00\x01")


@pytest.mark.parametrize(
    "logical, value",
    [
        ({"type": "long", "logicalType": "timestamp-millis"}, 253402300800000),
        ({"type": "long", "logicalType": "timestamp-micros"}, -62135596800000001),
        ({"type": "long", "logicalType": "local-timestamp-micros"}, 2**62),
        ({"type": "int", "logicalType": "date"}, 2932897),
        ({"type": "int", "logicalType": "time-millis"}, 86400000),
        ({"type": "long", "logicalType": "time-micros"}, -3600000001),
    ],
)
def test_logical_values_out_of_range_fail_as_in_fastavro(logical: dict, value: int) -> None:
    body = schemaless(logical["type"], value)
    with pytest.raises((ValueError, OverflowError)):
        fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(logical))
    with pytest.raises(native.DecodeError, match="cannot be converted"):
        native.Schema(json.dumps(logical)).decode(body)


@pytest.mark.parametrize(
    "logical, value",
    [
        ({"type": "long", "logicalType": "timestamp-millis"}, 253402300799999),
        ({"type": "long", "logicalType": "timestamp-micros"}, -62135596800000000),
        ({"type": "long", "logicalType": "local-timestamp-millis"}, -1),
        ({"type": "long", "logicalType": "timestamp-nanos"}, 2**62),
        ({"type": "int", "logicalType": "date"}, -719162),
        ({"type": "int", "logicalType": "time-millis"}, -1),
        ({"type": "long", "logicalType": "time-micros"}, -100000000),
        ({"type": "int", "logicalType": "timestamp-millis"}, 5),
        ({"type": "string", "logicalType": "uuid"}, "{12345678-1234-5678-1234-567812345678}"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 2}, b"\x30\x39"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 3}, b""),
        (
            {"type": "fixed", "name": "f", "size": 3, "logicalType": "decimal", "precision": 4, "scale": 1},
            b"\xff\x39\x00",
        ),
        ({"type": "fixed", "name": "u", "size": 4, "logicalType": "uuid"}, b"abcd"),
        ("boolean", b"\x02"),
    ],
)
def test_logical_edge_values_as_fastavro(logical, value) -> None:
    if isinstance(logical, dict) and logical["type"] in ("long", "int", "string", "bytes"):
        body = schemaless(logical["type"], value)
    elif isinstance(value, bytes) and logical == "boolean":
        body = value
    else:
        body = value
    want = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(logical))
    assert_same(native.Schema(json.dumps(logical)).decode(body), [want])


# --- containers ----------------------------------------------------------------------------------


def container(records: list, schema, codec: str = "null", **kw) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec=codec, **kw)
    return out.getvalue()


def recompress(buf: bytes, codec: str) -> bytes:
    """The container ``buf`` (null codec) with every block compressed by genesis' ``codec``
    compressor (fastavro writes zstandard only with backports.zstd, genesis uses zstandard)."""
    from genesis._codecs._avro import write_long
    from genesis._codecs._compression import COMPRESS
    from genesis._codecs._container import read_header

    schema_json, _, sync, pos = read_header(buf)
    meta = [(b"avro.schema", schema_json), (b"avro.codec", codec.encode())]
    out = [b"Obj\x01", write_long(len(meta))]
    for key, value in meta:
        out += [write_long(len(key)), key, write_long(len(value)), value]
    out += [b"\x00", sync]
    for count, data, start, end in native.read_container(buf)[1]:
        block = COMPRESS[codec](data[start:end])
        out += [write_long(count), write_long(len(block)), block, sync]
    return b"".join(out)


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy", "zstandard", "bzip2", "xz"])
def test_every_codec(data_dir: Path, codec: str) -> None:
    src = (data_dir / "ztf/raw/fink-client/avro_multi_alerts_other.avro").read_bytes()
    reader = fastavro.reader(io.BytesIO(src))
    records = list(reader)
    if codec == "zstandard":
        buf = recompress(container(records, reader.writer_schema, "null", sync_interval=1000), codec)
    else:
        buf = container(records, reader.writer_schema, codec, sync_interval=1000)
    _, blocks = native.read_container(buf)
    assert [count for count, *_ in blocks] == [1, 1, 1]
    assert all((data is buf) == (codec == "null") for _, data, _, _ in blocks)
    assert_same(native_container(buf), records)


def _block_container(codec: bytes, payload: bytes, count: int = 1) -> bytes:
    from genesis._codecs._avro import write_long

    sync = b"S" * 16
    meta = [(b"avro.schema", b'"bytes"'), (b"avro.codec", codec)]
    head = b"Obj\x01" + write_long(len(meta))
    for k, v in meta:
        head += write_long(len(k)) + k + write_long(len(v)) + v
    return head + b"\x00" + sync + write_long(count) + write_long(len(payload)) + payload + sync


#: bz2.compress(bytes(129 << 20), 9): 114 bytes that inflate to 129 MiB (computing it takes seconds)
BZIP2_BOMB = bytes.fromhex(
    "425a68393141592653590e09e2df015f8e4000c0000008200030804d4642a025a90a80973141592653590e09e2df01"
    "5f8e4000c0000008200030804d4642a025a90a8097314159265359f032d332014cef6000c00004000008200030cc09a"
    "a69a08514b6a0428a5e2ee48a70a121a80d3be0"
)

BOMB_CHECK = (
    PEAK_RSS
    + """
import sys
from genesis import _native
base = peak_rss()
for path in sys.argv[1:]:
    try:
        _native.read_container(open(path, "rb").read())
    except _native.DecodeError as exc:
        assert "128 MiB: corrupt data" in str(exc), exc
    else:
        raise AssertionError(path + " decoded")
print((peak_rss() - base) // 1024)
"""
)


def test_decompression_bombs_fail_without_allocating_more_than_the_bound(tmp_path: Path) -> None:
    """Blocks inflating to 129 MiB with every codec fail, and the process never holds much more
    than the 128 MiB bound (measured in a fresh process: its peak RSS)."""
    import bz2
    import lzma
    import subprocess
    import sys
    import zlib

    import cramjam
    import zstandard

    assert len(bz2.decompress(BZIP2_BOMB)) == 129 << 20
    big = bytes(129 << 20)
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    payloads = {
        "deflate": deflate.compress(big) + deflate.flush(),
        "snappy": bytes(cramjam.snappy.compress_raw(big)) + zlib.crc32(big).to_bytes(4, "big"),
        "zstandard": zstandard.ZstdCompressor(level=1).compress(big),
        "bzip2": BZIP2_BOMB,
        "xz": lzma.compress(big, preset=0),
    }
    del big
    files = []
    for codec, payload in payloads.items():
        files.append(tmp_path / f"{codec}.avro")
        files[-1].write_bytes(_block_container(codec.encode(), payload))
    out = subprocess.run(
        [sys.executable, "-c", BOMB_CHECK, *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    grown_kib = int(out.stdout)
    assert grown_kib < (128 + 40) * 1024, f"peak RSS grew by {grown_kib} KiB"


@pytest.mark.parametrize("codec", ["deflate", "zstandard", "bzip2", "xz"])
def test_truncated_compressed_blocks(codec: str) -> None:
    import bz2
    import lzma
    import zlib

    import zstandard

    data = bytes(range(256)) * 400
    payload = {
        "deflate": lambda: zlib.compressobj(9, zlib.DEFLATED, -15).compress(data),  # no flush: cut off
        "zstandard": lambda: zstandard.ZstdCompressor().compress(data)[:-20],
        "bzip2": lambda: bz2.compress(data)[:-20],
        "xz": lambda: lzma.compress(data)[:-20],
    }[codec]()
    with pytest.raises(
        native.DecodeError,
        match=rf"truncated Avro container: the {codec} stream of a block is cut off|corrupt {codec} block",
    ):
        native.read_container(_block_container(codec.encode(), payload))


def test_snappy_crc_is_checked() -> None:
    import zlib

    import cramjam

    data = b"hello world" * 10
    good = bytes(cramjam.snappy.compress_raw(data))
    crc = zlib.crc32(data).to_bytes(4, "big")
    _, [(count, block, start, end)] = native.read_container(_block_container(b"snappy", good + crc))
    assert block[start:end] == data
    with pytest.raises(native.DecodeError, match="CRC of a snappy block does not match"):
        native.read_container(_block_container(b"snappy", good + bytes(4)))
    with pytest.raises(native.DecodeError, match="lacks its 4-byte CRC"):
        native.read_container(_block_container(b"snappy", b"\x01"))
    with pytest.raises(native.DecodeError, match=r"^snappy block claims 4294967295 bytes, beyond 128 MiB"):
        native.read_container(_block_container(b"snappy", b"\xff\xff\xff\xff\x0f" + crc))


def test_container_errors_read_as_the_python_path(data_dir: Path) -> None:
    from genesis._codecs import _container
    from genesis._codecs._avro import SchemaCache
    from genesis.errors import DecodeError

    buf = (data_dir / "ztf/raw/fink-client/avro_multi_alerts_other.avro").read_bytes()
    schema_json, codec, sync, first = _container.read_header(buf)
    cases = [
        b"Obj\x02" + buf[4:],
        buf[: first - 3],
        buf[:first],
        buf[: len(buf) - 5],
        buf[:-1] + bytes([buf[-1] ^ 1]),
        buf[:first] + b"\x01" + buf[first + 1 :],
        buf[:6],
        _block_container(b"lz4", b"x"),
        buf.replace(b"avro.schema", b"avro.schemX"),
    ]
    for case in cases:
        with pytest.raises(DecodeError) as python_error:
            _container.decode_container(case, SchemaCache("test"))
        with pytest.raises(native.DecodeError) as native_error:
            native.read_container(case)
        assert str(native_error.value) == str(python_error.value), case[:40]


def test_blocks_claiming_more_records_than_bytes() -> None:
    schema = native.Schema('"long"')
    with pytest.raises(native.DecodeError, match="claims 1000 records in only 3 bytes"):
        schema.decode(b"\x02\x02\x02", 0, 3, 1000)
    empty = native.Schema('{"type": "record", "name": "e", "fields": []}')
    assert empty.decode(b"", 0, 0, 1000) == [{}] * 1000
    with pytest.raises(native.DecodeError, match="claims"):
        empty.decode(b"", 0, 0, 2**62)


# --- reference counting -----------------------------------------------------------------------------


def test_no_references_leak_on_success_or_failure(data_dir: Path) -> None:
    """Decoding, prefix decoding and every kind of failure (truncation, garbage, bad UTF-8, a bad
    logical value) leave no object behind: memory and None's reference count stay flat."""
    import gc
    import sys
    import tracemalloc

    buf = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    schema_json, [(count, data, start, end)] = native.read_container(buf)
    schema = native.Schema(schema_json)
    n = schema.field_names.index("candidate") + 1
    logical = native.Schema(
        '{"type": "record", "name": "r", "fields": [{"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}}, {"name": "u", "type": {"type": "string", "logicalType": "uuid"}}, {"name": "s", "type": "string"}]}'
    )
    good = schemaless({"type": "long"}, 1) + schemaless("string", "12345678-1234-5678-1234-567812345678") + b"\x02a"
    bad = [
        good[:-1] + b"\xff",  # invalid UTF-8
        schemaless({"type": "long"}, 2**62) + good[1:],  # timestamp out of range
        good[:1] + schemaless("string", "not a uuid") + b"\x02a",
    ]

    def work() -> None:
        schema.decode(data, start, end, count)
        [(record, pos)] = schema.decode_prefix(data, start, end, count, n)
        schema.decode_rest(data, pos, record, n)
        schema.decode_fields(data[:pos], start, n)
        native.read_container(buf)
        logical.decode(good)
        for cut in (start + (end - start) // 3, end - 1):
            with pytest.raises(native.DecodeError):
                schema.decode(data[:cut], start)
        with pytest.raises(native.DecodeError):
            schema.decode(data + b"x", start)
        for case in bad:
            with pytest.raises(native.DecodeError):
                logical.decode(case)

    for _ in range(20):
        work()
    gc.collect()
    nones = sys.getrefcount(None)
    tracemalloc.start()
    try:
        for _ in range(100):
            work()
        gc.collect()
        leaked = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert leaked < 64 * 1024 and abs(sys.getrefcount(None) - nones) < 10


@pytest.mark.parametrize("check", ["CHECK_NONE", "CHECK_CRC32", "CHECK_CRC64"])
def test_xz_blocks_are_sized_from_their_chunk_headers_and_decoded_whole(check: str) -> None:
    """xz blocks are measured from their LZMA2 chunk headers before lzma-rs inflates them (it
    holds a whole block in memory): blocks of one byte to several chunks, with every integrity
    check, decode to what was compressed; mostly incompressible data makes stored chunks too."""
    import lzma
    import random

    rng = random.Random(7)
    for size in (1, 1000, 70_000, 3 << 20):
        payload = bytes(rng.getrandbits(8) for _ in range(size // 2)) + bytes(size - size // 2)
        block = lzma.compress(payload, check=getattr(lzma, check))
        _, [(count, data, start, end)] = native.read_container(_block_container(b"xz", block))
        assert (count, bytes(data[start:end])) == (1, payload)
    with pytest.raises(native.DecodeError, match="truncated"):
        native.read_container(_block_container(b"xz", lzma.compress(b"x" * 5000)[:-30]))


def test_an_xz_block_with_a_sha256_check_is_a_clear_decode_error() -> None:
    """lzma-rs has no SHA-256 check (fastavro and Python's lzma write CRC64): a DecodeError naming it."""
    import lzma

    block = lzma.compress(b"x" * 5000, check=lzma.CHECK_SHA256)
    with pytest.raises(native.DecodeError, match="SHA-256"):
        native.read_container(_block_container(b"xz", block))
