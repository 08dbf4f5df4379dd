"""Fuzzing genesis._native: whatever the bytes, only its DecodeError escapes, quickly and without
large allocations. Inputs are random bytes, real alerts (ZTF containers, Rubin wire format)
truncated, bit-flipped or with garbage appended, and hand-made hostile lengths and counts.
"""

from __future__ import annotations

import io
import json
import threading
import time
import tracemalloc
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import load_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis._codecs._avro import write_long
from genesis.demo import alert_data_dir

native = pytest.importorskip("genesis._native")

_FUZZ = settings(
    max_examples=300,
    deadline=1000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _messages(data: Path) -> list[tuple[str, bytes, object]]:
    """(kind, message, schema) of real messages: containers (schema None) and wire format."""
    picks = [
        "ztf/raw/kowalski/20231012/2475433850015015000.avro",
        "ztf/raw/fink-client/avro_multi_alerts_other.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro",
        "ztf/fink_enriched/fink-broker-sample-alert-1.avro",
        "lsst/sample_data/11.0/fakeAlert.avro",
    ]
    out: list[tuple[str, bytes, object]] = [("container", (data / p).read_bytes(), None) for p in picks]
    for path, version in (
        (sorted((data / "lsst/real_fink/rubin_v9_0").glob("*.avro"))[4], "9.0"),
        (data / "lsst/sample_data/11.0/fakeAlert.avro", "11.0"),
    ):
        major, minor = version.split(".")
        schema = load_schema(str(data / f"lsst/schema/{version}/lsst.v{major}_{minor}.alert.avsc"), _write_hint=False)
        with path.open("rb") as fh:
            record = next(fastavro.reader(fh))
        body = io.BytesIO()
        fastavro.schemaless_writer(
            body, fastavro.parse_schema(schema), {f["name"]: record[f["name"]] for f in schema["fields"]}
        )
        out.append(
            (
                "wire",
                b"\x00" + (int(major) * 100).to_bytes(4, "big") + body.getvalue(),
                native.Schema(json.dumps(schema)),
            )
        )
    return out


_DATA = alert_data_dir()
MESSAGES = _messages(_DATA) if _DATA else []
ZTF_SCHEMA = native.Schema(native.read_container(MESSAGES[0][1])[0]) if MESSAGES else None


def decode(kind: str, value: bytes, schema) -> None:
    """Run every native entry point on ``value``; only DecodeError may come out."""
    started = time.process_time()
    try:
        if kind == "container":
            schema_json, blocks = native.read_container(value)
            try:
                compiled = native.Schema(schema_json)
            except native.SchemaError:
                return
            for count, data, start, end in blocks:
                records = compiled.decode(data, start, end, count)
                assert len(records) == count
                if compiled.field_names:
                    compiled.decode_prefix(data, start, end, count, 3)
        else:
            native.wire_schema_id(value)
            [record] = schema.decode(value, 5)
            assert isinstance(record, dict)
            schema.decode_prefix(value, 5, None, 1, 4)
            schema.decode_fields(value, 5, 6)
    except native.DecodeError:
        pass
    assert time.process_time() - started < 1.0


@pytest.fixture(autouse=True)
def _needs_data(data_dir: Path) -> None:
    assert MESSAGES


@_FUZZ
@given(value=st.binary(max_size=3000))
def test_random_bytes(value: bytes) -> None:
    decode("container", b"Obj\x01" + value, None)
    decode("container", value, None)
    for kind, _, schema in MESSAGES[-2:]:
        decode(kind, b"\x00\x00\x00\x03\x84" + value, schema)
    try:
        ZTF_SCHEMA.decode(value)
    except native.DecodeError:
        pass


@_FUZZ
@given(index=st.integers(0, 100), cut=st.floats(0, 1))
def test_truncated_messages(index: int, cut: float) -> None:
    kind, value, schema = MESSAGES[index % len(MESSAGES)]
    decode(kind, value[: int(len(value) * cut)], schema)


@_FUZZ
@given(
    index=st.integers(0, 100), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_corrupted_messages(index: int, flips: list[tuple[float, int]]) -> None:
    kind, value, schema = MESSAGES[index % len(MESSAGES)]
    data = bytearray(value)
    for where, byte in flips:
        data[min(int(where * len(data)), len(data) - 1)] = byte
    decode(kind, bytes(data), schema)


@_FUZZ
@given(index=st.integers(0, 100), garbage=st.binary(min_size=1, max_size=64))
def test_messages_with_garbage_appended(index: int, garbage: bytes) -> None:
    kind, value, schema = MESSAGES[index % len(MESSAGES)]
    decode(kind, value + garbage, schema)


# --- hostile lengths and counts: they fail at once, before allocating anything -------------------


def _fails_fast(schema_json: str, data: bytes, match: str, count: int = 1) -> None:
    schema = native.Schema(schema_json)
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(native.DecodeError, match=match):
            schema.decode(data, 0, None, count)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.process_time() - started < 0.5
    assert peak < 16 << 20


TWO_GB = write_long(2**31)


@pytest.mark.parametrize(
    "schema, data, match",
    [
        ('"string"', TWO_GB + b"abc", r"truncated .*needs 2147483648 bytes, 3 are left"),
        ('"bytes"', TWO_GB + b"abc", r"truncated .*needs 2147483648 bytes"),
        ('{"type": "array", "items": "long"}', TWO_GB + b"\x02", r"truncated .*claims 2147483648 items"),
        ('{"type": "map", "values": "null"}', TWO_GB + b"\x02a", r"truncated .*claims 2147483648 items"),
        (
            '{"type": "array", "items": "null"}',
            write_long(2**62),
            r"corrupt .*claims 4611686018427387904 items of a zero-byte type",
        ),
        ('{"type": "array", "items": "null"}', write_long(-(2**62)) + b"\x02", r"corrupt .*zero-byte type"),
        ('{"type": "array", "items": {"type": "record", "name": "e", "fields": []}}', write_long(2**62), "zero-byte"),
        ('{"type": "array", "items": "double"}', write_long(2**62), r"truncated .*claims 4611686018427387904 items"),
        ('{"type": "array", "items": "null"}', (write_long(2**19) * 3) + b"\x00", "zero-byte type"),
        ('"long"', b"\xff" * 11, r"corrupt .*not a valid varint"),
        ('{"type": "fixed", "name": "f", "size": 2000000000}', b"ab", r"truncated .*needs 2000000000 bytes"),
        ('"string"', write_long(-(2**40)), r"corrupt .*negative length"),
    ],
)
def test_hostile_lengths_fail_at_once(schema: str, data: bytes, match: str) -> None:
    _fails_fast(schema, data, match)


def test_hostile_record_counts_fail_at_once() -> None:
    _fails_fast('"long"', b"\x02" * 10, "claims 4611686018427387904 records in only 10 bytes", count=2**62)
    _fails_fast('"null"', b"", "claims 4611686018427387904 records", count=2**62)


def test_hostile_block_counts_in_containers_fail_at_once(data_dir: Path) -> None:
    buf = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()
    schema_json, [(count, data, start, end)] = native.read_container(buf)
    schema = native.Schema(schema_json)
    with pytest.raises(native.DecodeError, match="claims 4611686018427387904 records"):
        schema.decode(data, start, end, 2**62, what="block 1 of the Avro container")


LINKED = '{"type": "record", "name": "node", "fields": [{"name": "next", "type": ["null", "node"]}]}'


def test_deep_recursion_is_a_decode_error_not_a_crash() -> None:
    deep = b"\x02" * 1_000_000 + b"\x00"
    _fails_fast(LINKED, deep, f"nest deeper than {native.MAX_DEPTH} levels")
    schema = native.Schema(LINKED)
    with pytest.raises(native.DecodeError, match="nest deeper"):
        schema.decode_prefix(deep, 0, None, 1, 0)
    ok = b"\x02" * (native.MAX_DEPTH - 1) + b"\x00"
    [record] = schema.decode(ok)
    depth = 0
    while record["next"] is not None:
        record, depth = record["next"], depth + 1
    assert depth == native.MAX_DEPTH - 1


def test_deep_recursion_in_a_thread() -> None:
    """Threads have their own (smaller, on some systems) stacks: the depth limit holds there too."""
    schema = native.Schema(LINKED)
    results: list = []

    def run() -> None:
        try:
            schema.decode(b"\x02" * (native.MAX_DEPTH - 1) + b"\x00")
            schema.decode(b"\x02" * 100_000 + b"\x00")
        except native.DecodeError as exc:
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(results) == 1 and "nest deeper" in str(results[0])


def test_hostile_container_headers_fail_at_once() -> None:
    sync = b"S" * 16
    for header in (
        b"Obj\x01" + write_long(2**62),  # 2^62 metadata entries
        b"Obj\x01" + write_long(-(2**62)) + write_long(5),
        b"Obj\x01\x02" + TWO_GB + b"avro.schema",
        b"Obj\x01\x02\x16avro.schema" + TWO_GB + b"{}" + b"\x00" + sync,
    ):
        started = time.process_time()
        with pytest.raises(native.DecodeError):
            native.read_container(header)
        assert time.process_time() - started < 0.1
    meta = b'\x02\x16avro.schema\x0c"null"\x00' + sync
    with pytest.raises(native.DecodeError, match="truncated Avro container: expected 2147483648 bytes in block 1"):
        native.read_container(b"Obj\x01" + meta + write_long(1) + TWO_GB + b"abc")
    with pytest.raises(native.DecodeError, match="declares -1 records"):
        native.read_container(b"Obj\x01" + meta + write_long(-1) + write_long(0) + sync)
