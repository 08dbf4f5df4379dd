"""Fuzzing Decoder.decode: whatever the bytes, only genesis errors escape, and nothing hangs.

Inputs are random bytes and real messages (ZTF containers, LSST wire format, Fink
key + schemaless value) truncated, bit-flipped or with garbage appended.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis._codecs import Decoder, SchemaDirectory, encode_wire
from genesis._codecs._container import read_header
from genesis.demo import alert_data_dir
from genesis.errors import GenesisError

_FUZZ = settings(
    max_examples=300,
    # a hang guard per example, not a speed check: an input of at most 2 KB (or one real alert,
    # ~80 KB) decodes or fails in milliseconds; one that takes 10 s means a loop or allocation
    # proportional to a length the input only claims (a busy 2-core machine stays far below it)
    deadline=10_000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _messages(data: Path) -> list[tuple[bytes, bytes | None]]:
    """(value, key) of real messages in each framing genesis decodes."""
    picks = [
        "ztf/raw/kowalski/20231012/2475433850015015000.avro",
        "ztf/raw/fink-client/avro_multi_alerts_other.avro",
        "ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro",
        "lsst/sample_data/11.0/fakeAlert.avro",
    ]
    messages: list[tuple[bytes, bytes | None]] = [((data / p).read_bytes(), None) for p in picks]
    lsst = SchemaDirectory(data / "lsst/schema")
    for path, schema_id in (
        (sorted((data / "lsst/real_fink/rubin_v9_0").glob("*.avro"))[4], 900),
        (data / "lsst/sample_data/11.0/fakeAlert.avro", 1100),
    ):
        with path.open("rb") as fh:
            record = next(fastavro.reader(fh))
        messages.append((encode_wire(record, lsst.schema(schema_id), schema_id), None))
    fink = (data / "ztf/fink_enriched/fink-broker-sample-alert-1.avro").read_bytes()
    with BytesIO(fink) as fh:
        reader = fastavro.reader(fh)
        record, schema = next(reader), reader.writer_schema
    body = BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    messages.append((body.getvalue(), read_header(fink)[0]))
    messages.append(((data / "lsst/sample_data/11.0/alert.json").read_bytes(), None))
    return messages


_DATA = alert_data_dir()
MESSAGES = _messages(_DATA) if _DATA else []
DECODER = Decoder(schemas=_DATA / "lsst/schema") if _DATA else None


def _decode(value: bytes, key: bytes | None) -> None:
    try:
        records = DECODER.decode(value, key)
    except GenesisError:
        return
    assert isinstance(records, list) and all(isinstance(r, dict) for r in records)


@pytest.fixture(autouse=True)
def _needs_data(data_dir: Path) -> None:
    assert MESSAGES


@_FUZZ
@given(value=st.binary(max_size=2000), key=st.none() | st.binary(max_size=50))
def test_random_bytes(value: bytes, key: bytes | None) -> None:
    _decode(value, key)


@_FUZZ
@given(
    value=st.binary(max_size=600).map(lambda b: b"Obj\x01" + b),
    schema_id=st.sampled_from([b"\x00\x00\x00\x03\x84", b"\x00\x00\x00\x04\x4c"]),
)
def test_random_bodies_behind_real_magic(value: bytes, schema_id: bytes) -> None:
    _decode(value, None)
    _decode(schema_id + value[4:], None)  # LSST 900 and 1100 wire headers


@_FUZZ
@given(index=st.integers(0, len(MESSAGES) - 1), cut=st.floats(0, 1, exclude_max=True))
def test_truncated(index: int, cut: float) -> None:
    value, key = MESSAGES[index]
    _decode(value[: int(len(value) * cut)], key)


@_FUZZ
@given(
    index=st.integers(0, len(MESSAGES) - 1),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flips(index: int, flips: list[tuple[float, int]]) -> None:
    value, key = MESSAGES[index]
    mutated = bytearray(value)
    for where, bit in flips:
        mutated[int(len(value) * where)] ^= 1 << bit
    _decode(bytes(mutated), key)


@_FUZZ
@given(index=st.integers(0, len(MESSAGES) - 1), garbage=st.binary(min_size=1, max_size=64))
def test_garbage_appended(index: int, garbage: bytes) -> None:
    value, key = MESSAGES[index]
    _decode(value + garbage, key)
