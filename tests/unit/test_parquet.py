"""Parquet files from real alerts, without Kafka: Arrow types from the Avro writer schemas, batches,
one file per writer schema, ``.part`` while open, and what a user without pyarrow is told."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genesis import errors
from genesis._codecs import Decoder, arrow_schema, encode_wire, rubin
from genesis.parquet import ParquetSink


def real_messages(data_dir: Path, survey: str = "ztf") -> list[bytes]:
    """Every real alert of the data as the message its survey sends (one container per ZTF alert)."""
    decoder = Decoder()
    return [m for path in sorted((data_dir / survey).rglob("*.avro")) for m in decoder.split(path.read_bytes())]


def test_arrow_types_keep_the_nesting_and_nullability(data_dir: Path) -> None:
    decoder = Decoder()
    message = (data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes()  # 4.01
    schema = arrow_schema(decoder.writer_schema(message))
    candidate = schema.field("candidate").type
    assert pa.types.is_struct(candidate) and candidate.field("magpsf").type == pa.float32()
    assert candidate.field("candid").type == pa.int64() and candidate.field("ssnamenr").nullable
    assert pa.types.is_list(schema.field("fp_hists").type) and schema.field("fp_hists").nullable
    assert schema.field("cutoutScience").type.field("stampData").type == pa.binary()
    slim = arrow_schema(decoder.writer_schema(message), drop_bytes=True, fields=("candid", "cutoutScience", "x"))
    assert slim.names == ["candid", "cutoutScience"] and slim.field("cutoutScience").type.names == ["fileName"]
    lsst = arrow_schema(rubin.load("11.1"), drop_bytes=True)
    assert "cutoutScience" not in lsst.names and pa.types.is_list(lsst.field("prvDiaSources").type)


def test_a_union_of_two_types_is_refused_with_a_way_out() -> None:
    schema = {"type": "record", "name": "r", "fields": [{"name": "v", "type": ["null", "int", "string"]}]}
    with pytest.raises(errors.ConfigError, match="field 'v' is a union of int, string.*--fields"):
        arrow_schema(schema)


def test_batches_close_together_and_each_file_has_one_writer_schema(data_dir: Path, tmp_path: Path) -> None:
    decoder = Decoder()
    messages = real_messages(data_dir)
    sink = ParquetSink(tmp_path, alerts_per_file=40, prefix="ztf")
    closed_at = []
    for i, message in enumerate(messages, 1):
        (alert,) = decoder.decode(message)
        if sink.write(alert, decoder.writer_schema(message)):
            closed_at.append(i)
            assert not sink.open_files and not list(tmp_path.glob("_*.part"))
        else:
            assert sink.open_files and all(p.name.startswith("_") and p.exists() for p in sink.open_files)
    assert closed_at == list(range(40, len(messages) + 1, 40))
    files = sink.close()
    assert sink.written == len(messages) == sum(pq.read_metadata(f).num_rows for f in files)
    assert not list(tmp_path.glob("_*.part")) and sorted(tmp_path.glob("*.parquet")) == sorted(files)
    candids = [c for f in files for c in pq.read_table(f, columns=["candid"]).column("candid").to_pylist()]
    assert sorted(candids) == sorted(decoder.decode(m)[0]["candid"] for m in messages)
    labels = {f.name.split("-", 5)[5] for f in files}  # <prefix>-<time>-p<pid>-<batch>-<n>-<schema>.parquet
    assert {"ztf.alert-3.3.parquet", "ztf.alert-4.01.parquet"} <= labels


def test_a_schema_switch_mid_stream_starts_a_new_file(tmp_path: Path) -> None:
    decoder = Decoder()
    sink = ParquetSink(tmp_path, alerts_per_file=1000, prefix="lsst")
    for version in ("10.0", "11.0", "11.1"):
        message = encode_wire(rubin.sample(version), rubin.load(version), rubin.schema_id(version))
        sink.write(decoder.decode(message)[0], decoder.writer_schema(message))
    files = sink.close()
    assert [f.name.rsplit("-", 1)[1] for f in files] == [
        "lsst.v10_0.alert.parquet",
        "lsst.v11_0.alert.parquet",
        "lsst.v11_1.alert.parquet",
    ]


def test_abort_leaves_no_file(data_dir: Path, tmp_path: Path) -> None:
    decoder = Decoder()
    sink = ParquetSink(tmp_path)
    message = real_messages(data_dir)[0]
    sink.write(decoder.decode(message)[0], decoder.writer_schema(message))
    assert len(list(tmp_path.glob("_*.part"))) == 1
    sink.abort()
    assert list(tmp_path.iterdir()) == []


WITHOUT_PYARROW = """
import sys
sys.modules["pyarrow"] = None  # as where pyarrow is missing (a broken install)
from genesis.cli import main
sys.exit(main(["consume", "kafka://127.0.0.1:1/small", "--format", "parquet", "--output", sys.argv[1]]))
"""


def test_format_parquet_without_pyarrow_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYARROW, str(tmp_path / "out")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "Parquet files need pyarrow" in done.stderr and "reinstall it (pip install genesis-streaming)" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
