"""CREATE STREAM without Kafka: the pipe's step over batches of real ZTF messages, and the Avro it writes."""

from __future__ import annotations

import fastavro
import pyarrow as pa
import pytest

from genesis import Decoder
from genesis._codecs import encode_container
from genesis._models import Metadata, Processed
from genesis.demo.samples import real_ztf_alerts
from genesis.errors import QueryError
from genesis.sql import persistent_query, plan
from genesis.sql._avro import ResultSchema
from genesis.sql._engine import Engine
from genesis.sql._persistent import SqlStep

FROM = "'kafka://grp@localhost:9092/ztf'"


@pytest.fixture(scope="module")
def messages(data_dir):
    """Each real ZTF alert as the message ZTF sends (an Avro container with its writer schema)."""
    return [(a.record, encode_container(a.record, a.schema)) for a in real_ztf_alerts(data_dir)]


def processed(messages, decoder, fields=None):
    """The messages as the pipe hands them to a step: every alert kept, decoded on demand."""
    out = []
    for offset, (_, value) in enumerate(messages):
        meta = Metadata("ztf", 0, offset, None, None, (), value)
        decode = lambda key, value: (
            [{k: a[k] for k in fields} for a in decoder.decode(value, key)] if fields else decoder.decode(value, key)
        )
        out.append(Processed(meta, 1, ((0, None),), decode))
    return out


def step_over(sql, messages, tables=None):
    the_plan = plan(sql, tuple(tables or ()))
    step = SqlStep(the_plan, Engine(the_plan, tables))
    decoder = Decoder()
    try:
        return step(processed(messages, decoder, step.fields), decoder), step
    finally:
        step.close()


def test_select_star_keeps_the_messages_that_pass_and_reads_only_the_where_fields(messages):
    outputs, step = step_over(f"CREATE STREAM bright AS SELECT * FROM {FROM} WHERE candidate.magpsf < 17", messages)
    assert step.fields == ("candidate",)
    expected = [a["candidate"]["magpsf"] < 17 for a, _ in messages]
    assert 0 < sum(expected) < len(messages)
    assert [out is not None for out in outputs] == expected
    for out in outputs:
        if out is not None:
            assert isinstance(out, Processed) and out.unchanged  # written byte for byte


def test_a_projection_is_one_avro_container_per_message_with_a_schema_from_the_result(messages):
    sql = (
        f"CREATE STREAM faint AS SELECT objectId, candid, candidate.magpsf AS mag, "
        f"len(prv_candidates) AS history, [p.jd for p in prv_candidates] AS jds, "
        f"{{'ra': candidate.ra, 'dec': candidate.dec}} AS pos, jd_to_iso(candidate.jd) AS t "
        f"FROM {FROM} WHERE candidate.magpsf >= 17"
    )
    outputs, step = step_over(sql, messages)
    assert set(step.fields) == {"objectId", "candid", "candidate", "prv_candidates"}
    got = 0
    for (alert, _), out in zip(messages, outputs, strict=True):
        if alert["candidate"]["magpsf"] < 17:
            assert out is None
            continue
        got += 1
        reader = fastavro.reader(__import__("io").BytesIO(out))  # any Avro reader: the schema travels
        (row,) = list(reader)
        prv = alert["prv_candidates"] or []
        assert row["objectId"] == alert["objectId"] and row["candid"] == alert["candid"]
        assert row["mag"] == pytest.approx(alert["candidate"]["magpsf"])
        assert row["history"] == (len(prv) if alert["prv_candidates"] is not None else None)
        assert row["jds"] == ([p["jd"] for p in prv] if alert["prv_candidates"] is not None else None)
        assert row["pos"] == {"ra": alert["candidate"]["ra"], "dec": alert["candidate"]["dec"]}
        assert row["t"].startswith("20")
        assert reader.writer_schema["name"] == "genesis.query.faint"
        assert Decoder().decode(out)[0] == row  # and genesis' own decoder reads it the same
    assert got > 0


def test_a_join_writes_every_row_of_an_alert_in_its_message(messages):
    first = messages[0][0]["candidate"]
    watchlist = pa.table(
        {
            "name": ["a", "b", "far"],
            "ra": [first["ra"], first["ra"] + 0.5 / 3600, (first["ra"] + 90) % 360],
            "dec": [first["dec"], first["dec"], first["dec"]],
            "radius": [2.0, 2.0, 2.0],
        }
    )
    sql = (
        f"CREATE STREAM matches AS SELECT a.candid, w.name FROM {FROM} a JOIN watchlist w "
        "ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)"
    )
    outputs, _ = step_over(sql, messages, {"watchlist": watchlist})
    rows = Decoder().decode(outputs[0])
    assert sorted(r["name"] for r in rows) == ["a", "b"]


def test_types_become_avro_types_every_field_nullable():
    arrow = pa.schema(
        [
            ("__genesis_row", pa.int64()),
            ("n", pa.int32()),
            ("big", pa.int64()),
            ("x", pa.float64()),
            ("flag", pa.bool_()),
            ("s", pa.string()),
            ("b", pa.binary()),
            ("when", pa.timestamp("us")),
            ("day", pa.date32()),
            ("d", pa.decimal128(5, 2)),
            ("m", pa.map_(pa.string(), pa.int32())),
            ("nothing", pa.null()),
        ]
    )
    result = ResultSchema(arrow, "my-stream")
    types = {f["name"]: f["type"] for f in result.avro["fields"]}
    assert "__genesis_row" not in types
    assert types["n"] == ["null", "int"] and types["big"] == ["null", "long"] and types["x"] == ["null", "double"]
    assert types["when"] == ["null", {"type": "long", "logicalType": "timestamp-micros"}]
    assert types["m"] == ["null", {"type": "map", "values": ["null", "int"]}]
    assert types["nothing"] == "null"
    assert result.avro["name"] == "my_stream"
    fastavro.parse_schema(result.avro)  # a valid schema
    rows = result.rows([{"m": [("a", 1)], "n": 1}])
    assert rows == [{"m": {"a": 1}, "n": 1}]


@pytest.mark.parametrize(
    ("arrow", "says"),
    [
        (pa.schema([("(candidate.magpsf < 19)", pa.bool_())]), "name it with AS, e.g. ... AS candidate_magpsf_19"),
        (pa.schema([("x", pa.month_day_nano_interval())]), "cast it"),
        (pa.schema([("x", pa.int64()), ("x", pa.int64())]), "appear more than once"),
        (pa.schema([("m", pa.map_(pa.int32(), pa.int32()))]), "Avro maps have text keys"),
    ],
)
def test_what_avro_cannot_hold_is_a_query_error_that_says_what_to_write(arrow, says):
    with pytest.raises(QueryError, match="CREATE STREAM s") as err:
        ResultSchema(arrow, "s")
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (f"SELECT * FROM {FROM}", "begins with CREATE STREAM"),
        ("CREATE STREAM s AS SELECT * FROM 'kafka://localhost:9092/ztf'", "FROM 'kafka://GROUP@host/topic'"),
        ("CREATE STREAM s AS SELECT * FROM 'file:///tmp/x.avro'", "reads a Kafka topic as a consumer group"),
        (f"CREATE STREAM s AS SELECT * FROM {FROM} LIMIT 5", "run(limit=N)"),
    ],
)
def test_persistent_query_refuses_what_cannot_run_exactly_once(sql, says):
    with pytest.raises(QueryError) as err:
        persistent_query(sql)
    assert says in str(err.value)
