"""Filters that declare the fields they read, and streams asked for some fields only, on every real alert.

Each test runs with both readers (the compiled decoder when it is built, and fastavro): a
declared-fields filter must give the verdicts and outputs of a filter run on the fully decoded
alert, decode no further than its fields (a message cut right after them still gets its verdict),
and refuse to read a field it did not declare.
"""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import load_schema

import genesis.streaming as gs
from genesis import Decoder, Filter, errors, filters
from genesis._codecs import encode_wire
from genesis._processing import Processor

READERS = [pytest.param(False, id="fastavro"), pytest.param(True, id="compiled")]


@pytest.fixture(params=READERS)
def compiled(request: pytest.FixtureRequest) -> bool:
    if request.param and not Decoder().compiled:
        pytest.skip("the compiled decoder is not built here")
    return bool(request.param)


def _lsst_messages(data_dir: Path) -> tuple[list[bytes], dict[int, dict]]:
    """The real Rubin v9.0 alerts (Fink) in the Confluent wire format with the official 9.0 schema."""
    schema = load_schema(str(data_dir / "lsst/schema/9.0/lsst.v9_0.alert.avsc"), _write_hint=False)
    names = [f["name"] for f in schema["fields"]]
    out = []
    for path in sorted((data_dir / "lsst/real_fink/rubin_v9_0").glob("*.avro")):
        for record in fastavro.reader(io.BytesIO(path.read_bytes())):
            out.append(encode_wire({k: record[k] for k in names}, schema, 900))
    return out, {900: schema}


@pytest.fixture(scope="module")
def messages(data_dir: Path) -> tuple[list[bytes], dict[int, dict]]:
    """Every real ZTF and Fink alert file as one message, and the Rubin alerts in the wire format."""
    ztf = [p.read_bytes() for p in sorted((data_dir / "ztf").rglob("*.avro"))]
    lsst, schemas = _lsst_messages(data_dir)
    return ztf + lsst, schemas


def snr_above_20(alert: dict) -> bool:
    return alert["diaSource"]["snr"] is not None and alert["diaSource"]["snr"] > 20


FILTERS = {
    "asteroids": filters.filter_asteroids,
    "transient": filters.is_transient,
    "brighter than 19": filters.brighter_than(19.0),
    "real-bogus 0.5": filters.real_bogus_above(0.5),
    "cone": filters.within(289.89, 61.85, 30.0),
    "Rubin snr": Filter(snr_above_20, fields=("diaSource",)),
}


def _full(flt: Filter):
    """The same filter, reading the whole alert (what declaring fields must not change)."""
    return lambda alert: flt.fn(alert)


@pytest.mark.parametrize("name", FILTERS)
def test_declared_fields_give_the_verdicts_and_outputs_of_a_full_decode(messages, compiled, name):
    values, schemas = messages
    flt = FILTERS[name]
    decoder = Decoder(schemas=schemas, compiled=compiled)
    declared, whole = Processor(decoder, flt), Processor(decoder, _full(flt))
    rubin = name == "Rubin snr"
    applicable = [v for v in values if (v[:1] == b"\0") == rubin]  # each filter reads its survey's fields
    kept = 0
    for value in applicable:
        a, b = declared.process(None, value), whole.process(None, value)
        assert a.decode_error is None and a.filter_error is None, (name, a.filter_error)
        assert a.records == b.records and repr(a.kept) == repr(b.kept)  # repr: NaN equals NaN, key order counts
        kept += len(a.kept)
    assert 0 < kept < sum(len(decoder.decode(v)) for v in applicable), name  # the filter decides something


@pytest.mark.parametrize("name", ["asteroids", "Rubin snr"])
def test_workers_send_the_same_alerts_back(messages, compiled, name):
    """In a pool, alerts kept as decoded may travel as a marker and be decoded again in the parent."""
    values, schemas = messages
    flt = FILTERS[name]
    processor = Processor(Decoder(schemas=schemas, compiled=compiled), flt)
    for value in values:
        inline = processor.process(None, value)
        sent = processor.process(None, value, in_worker=True)
        decoded = processor.decoded(None, value)
        assert repr([(i, decoded[i] if v is None else v) for i, v in sent.kept]) == repr(inline.kept)
        assert all(v is None for _, v in sent.kept) == processor.decode_in_parent or not sent.kept


def test_a_message_cut_after_the_declared_field_still_gets_its_verdict(data_dir, compiled):
    # a ZTF alert in the wire format (no framing after the record), cut right after `candidate`
    path = data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro"
    reader = fastavro.reader(io.BytesIO(path.read_bytes()))
    schema, record = reader.writer_schema, next(reader)
    names = [f["name"] for f in schema["fields"]]
    head = fastavro.parse_schema({**schema, "fields": schema["fields"][: names.index("candidate") + 1]})
    whole = encode_wire(record, schema, 7)
    prefix = io.BytesIO()
    fastavro.schemaless_writer(prefix, head, record)
    cut = whole[: 5 + len(prefix.getvalue())]  # the wire header, then objectId .. candidate only
    assert len(cut) < len(whole) / 2  # the history and the cutouts are gone
    decoder = Decoder(schemas={7: schema}, compiled=compiled)
    with pytest.raises(errors.DecodeError):
        decoder.decode(cut)  # a full decode cannot read it
    drop = Processor(decoder, Filter(lambda a: False, fields=("candidate",))).process(None, cut)
    assert drop.decode_error is None and drop.records == 1 and drop.kept == []
    magnitude = Processor(decoder, Filter(lambda a: a["candidate"]["magpsf"], fields=("candidate",)))
    assert magnitude.process(None, cut).kept == [(0, record["candidate"]["magpsf"])]  # read from the cut bytes
    kept = Processor(decoder, Filter(lambda a: True, fields=("candidate",))).process(None, cut)
    assert kept.decode_error is not None  # a kept alert is decoded to its end: the missing tail shows then


def test_reading_an_undeclared_field_is_an_error_naming_it(messages, compiled):
    values, schemas = messages
    sneaky = Filter(lambda a: a["prv_candidates"] is not None, fields=("candidate",))
    out = Processor(Decoder(schemas=schemas, compiled=compiled), sneaky).process(None, values[0])
    assert isinstance(out.filter_error, errors.UndeclaredFieldError)
    assert "'prv_candidates'" in str(out.filter_error) and "fields=('candidate',)" in str(out.filter_error)
    for peek in (lambda a: "prv_candidates" in a, lambda a: a.get("objectId")):  # `in` and .get too
        out = Processor(Decoder(compiled=compiled), Filter(peek, fields=("candidate",))).process(None, values[0])
        assert isinstance(out.filter_error, errors.UndeclaredFieldError)


def test_a_declared_field_the_schema_lacks_is_just_absent(messages, compiled):
    values, schemas = messages
    seen = []
    flt = Filter(
        lambda a: seen.append(("diaSource" in a, a.get("diaSource"), "candidate" in a)) or True,
        fields=("candidate", "diaSource"),
    )
    out = Processor(Decoder(schemas=schemas, compiled=compiled), flt).process(None, values[0])
    assert out.filter_error is None and seen == [(False, None, True)] * out.records


def test_stream_fields_yield_exactly_those_fields(data_dir, compiled):
    folder = data_dir / "ztf/raw/kowalski/20231012"
    full = {a["candid"]: a for p in sorted(folder.glob("*.avro")) for a in Decoder().decode(p.read_bytes())}
    with gs.open(f"file://{folder}") as stream:
        stream.decoder = Decoder(compiled=compiled)
        got = [a for _, a in stream(fields=("objectId", "candidate"))]
    with gs.Pool(2) as workers, gs.open(f"file://{folder}") as stream:  # the workers decode too
        stream.decoder = Decoder(compiled=compiled)
        kept = [a for _, a in stream(fields=("candidate",), filter=filters.filter_asteroids, pool=workers)]
    assert len(got) == len(full) and all(list(a) == ["objectId", "candidate"] for a in got)
    assert all(a["candidate"] == full[a["candidate"]["candid"]]["candidate"] for a in got)
    asteroids = {c for c, a in full.items() if filters.filter_asteroids(a) is not None}
    assert asteroids and {a["candidate"]["candid"] for a in kept} == asteroids
    assert all(list(a) == ["candidate"] for a in kept)


def test_fields_are_checked():
    with pytest.raises(errors.ConfigError):
        Filter(lambda a: True, fields=())
    with pytest.raises(errors.ConfigError):
        Filter("not a function", fields=("candidate",))  # type: ignore[arg-type]
    assert Filter(len, fields="candidate").fields == ("candidate",)
