"""The parts of genesis.spark that need no Spark job: Kafka options, credentials for the Java
client, column types from Avro schemas, the check of alerts against them, errors made again."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from genesis import Auth, errors
from genesis.spark._options import java_security, sink_options, source_options, start_options
from genesis.streaming import parse_url


def test_scram_over_tls_becomes_the_java_clients_jaas_line_and_a_pem_truststore(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    conf = java_security(Auth("alice", 'se"cret', ca=str(ca)).librdkafka_config())
    assert conf == {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="se\\"cret";',
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": str(ca),
    }


def test_oidc_and_plain_logins_and_untranslatable_settings() -> None:
    oidc = java_security(Auth.oidc("id", "secret", "https://idp.example/token", "kafka").librdkafka_config())
    assert oidc["kafka.sasl.login.callback.handler.class"].endswith("OAuthBearerLoginCallbackHandler")
    assert oidc["kafka.sasl.oauthbearer.token.endpoint.url"] == "https://idp.example/token"
    assert 'clientId="id" clientSecret="secret" scope="kafka"' in oidc["kafka.sasl.jaas.config"]
    plain = java_security(Auth("bob", "pw", mechanism="PLAIN", ssl=False).librdkafka_config())
    assert (
        plain["kafka.security.protocol"] == "SASL_PLAINTEXT" and "PlainLoginModule" in plain["kafka.sasl.jaas.config"]
    )
    with pytest.raises(errors.ConfigError, match="ssl.keystore.location"):
        java_security({"security.protocol": "SSL", "ssl.keystore.location": "/k.pem"})


def test_source_options_read_committed_with_user_prefixed_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENESIS_USERNAME", raising=False)
    monkeypatch.setenv("GENESIS_AUTH_FILE", "/nonexistent/auth.toml")
    opts = source_options(
        parse_url("kafka://h1,h2:9093/ztf"), start_at="earliest", until_eos=False, auth=Auth("alice", "pw", ssl=False)
    )
    assert opts["kafka.isolation.level"] == "read_committed"
    assert opts["groupIdPrefix"] == "alice"  # Spark names groups alice-<uuid>..., as Rubin's ACLs want
    assert opts["kafka.bootstrap.servers"] == "h1:9092,h2:9093" and opts["subscribe"] == "ztf"
    grouped = source_options(parse_url("kafka://mine@h/ztf"), start_at="latest", until_eos=False, auth={})
    assert grouped["kafka.group.id"] == "mine" and "groupIdPrefix" not in grouped
    pattern = source_options(parse_url("kafka://h/^ztf_.*"), start_at="earliest", until_eos=True, auth={})
    assert pattern["subscribePattern"] == "^ztf_.*" and pattern["endingOffsets"] == "latest"


def test_start_at_becomes_spark_offsets() -> None:
    when = datetime(2024, 5, 1, 6, tzinfo=timezone.utc)
    assert start_options(when, False)["startingTimestamp"] == str(int(when.timestamp() * 1000))
    last = start_options(-5, True, {"ztf": {0: 10, 1: 0}})
    assert json.loads(last["startingOffsets"]) == {"ztf": {"0": 10, "1": 0}}
    with pytest.raises(errors.ConfigError, match="would read nothing"):
        start_options("latest", True)
    with pytest.raises(errors.ConfigError, match="not understood"):
        start_options("yesterday", False)


def test_sinks_write_one_topic_with_acks_from_all_replicas() -> None:
    opts = sink_options(parse_url("kafka://h/out"), {})
    assert opts["topic"] == "out" and opts["kafka.acks"] == "all" and opts["kafka.enable.idempotence"] == "true"
    with pytest.raises(errors.ConfigError, match="one topic"):
        sink_options(parse_url("kafka://h/a,b"), {})


# ------------------------------------------------------------------ types (pyspark's type classes, no JVM)


def test_avro_records_become_nested_nullable_structs_and_schemas_merge(data_dir: Path) -> None:
    pytest.importorskip("pyspark", reason="needs pyspark (the extra [spark])")
    from pyspark.sql import types as t

    from genesis import Decoder
    from genesis.spark._types import SchemaMismatch, Shape, avro_to_spark, merge

    def schema(path: str) -> dict:
        return Decoder().writer_schema((data_dir / path).read_bytes())

    new, _ = avro_to_spark(schema("ztf/raw/kowalski/20231012/2475433850015015000.avro"))  # 4.01
    old, _ = avro_to_spark(schema("ztf/raw/ztf-avro-alert/472263571115115000_v3.0.avro"))
    assert isinstance(new["candidate"].dataType, t.StructType) and new["candidate"].nullable
    assert isinstance(new["prv_candidates"].dataType, t.ArrayType)
    assert isinstance(new["candidate"].dataType["magpsf"].dataType, t.FloatType)
    merged = merge([old, new])
    assert merged.fieldNames()[: len(old.fields)] == old.fieldNames() and "fp_hists" in merged.fieldNames()
    assert set(merged["candidate"].dataType.fieldNames()) == set(new["candidate"].dataType.fieldNames())
    shape = Shape.of(old)
    alert = Decoder().decode((data_dir / "ztf/raw/kowalski/20231012/2475433850015015000.avro").read_bytes())[0]
    with pytest.raises(SchemaMismatch) as info:
        shape.fit(alert)
    assert info.value.field in ("fp_hists", "candidate.exptime", "candidate.drb")
    assert Shape.of(merged).fit(alert) is alert


def test_logical_types_and_conflicts() -> None:
    pytest.importorskip("pyspark", reason="needs pyspark (the extra [spark])")
    import uuid

    from pyspark.sql import types as t

    from genesis.spark._types import Shape, avro_to_spark, merge

    record = {
        "type": "record",
        "name": "r",
        "fields": [
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "u", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
            {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
            {"name": "n", "type": ["null", "int", "long"]},
            {"name": "m", "type": {"type": "map", "values": "float"}},
        ],
    }
    struct, converted = avro_to_spark(record)
    assert [type(f.dataType) for f in struct.fields] == [
        t.TimestampType,
        t.StringType,
        t.DecimalType,
        t.LongType,
        t.MapType,
    ]
    assert converted == {("u",)}
    value = {"ts": None, "u": uuid.UUID(int=1), "d": None, "n": 1, "m": {}}
    assert Shape.of(struct, converted).fit(value)["u"] == str(uuid.UUID(int=1))
    other = t.StructType([t.StructField("ts", t.StringType())])
    conflicts: set = set()
    assert isinstance(merge([struct, other], (), conflicts)["ts"].dataType, t.StringType) and conflicts == {("ts",)}
    with pytest.raises(errors.ConfigError, match="union"):
        avro_to_spark({"type": "record", "name": "x", "fields": [{"name": "v", "type": ["int", "string"]}]})


def test_executor_errors_are_made_again_on_the_driver() -> None:
    from genesis.spark import translate

    text = (
        "py4j...\nTraceback (most recent call last):\n  ...\ngenesis.errors.FilterError: the filter m:f raised "
        "RuntimeError: boom on the alert at ztf_2024[3]@1234\n\tat org.apache.spark..."
    )
    err = translate(RuntimeError(text))
    assert isinstance(err, errors.FilterError) and (err.topic, err.partition, err.offset) == ("ztf_2024", 3, 1234)
    mismatch = errors.SchemaMismatchError(
        "does not fit: it holds the field 'x.y', which they do not have", field="x.y", topic="t", partition=0, offset=5
    )
    again = translate(RuntimeError(f"genesis.errors.SchemaMismatchError: {mismatch}"))
    assert isinstance(again, errors.SchemaMismatchError) and str(again) == str(mismatch) and again.field == "x.y"
    decode = errors.DecodeError("truncated", topic="t", partition=1, offset=2)
    back = translate(RuntimeError(f"genesis.errors.DecodeError: {decode}"))
    assert isinstance(back, errors.DecodeError) and str(back) == str(decode) and back.offset == 2
    plain = RuntimeError("something else")
    assert translate(plain) is plain


def test_the_sql_of_gs_query_becomes_spark_sql_with_genesis_functions_written_out() -> None:
    import sqlglot

    from genesis.spark._sql import to_spark

    tree = sqlglot.parse_one(
        "SELECT len(a.prv_candidates) AS n, len(objectId) AS chars, "
        "[p.magpsf for p in a.prv_candidates if p.magpsf IS NOT NULL] AS mags, mjd_to_iso(a.mjd) AS t "
        "FROM v a JOIN w ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, 2.0)",
        read="duckdb",
    )
    text = to_spark(tree, lambda e: "prv_candidates" in e.sql())
    assert "ARRAY_SIZE(a.prv_candidates) AS n" in text and "LENGTH(objectId) AS chars" in text
    assert "TRANSFORM(FILTER(a.prv_candidates, p -> NOT p.magpsf IS NULL), p -> p.magpsf) AS mags" in text
    assert "TIMESTAMP_MICROS" in text and "(((a.mjd) + 2400000.5) - 2440587.5)" in text  # macros in macros
    assert "ASIN(LEAST(1.0, SQRT(" in text and "CONE(" not in text.upper()  # the haversine itself
    with pytest.raises(errors.QueryError, match="takes 5 arguments"):
        to_spark(sqlglot.parse_one("SELECT cone(1, 2) FROM v", read="duckdb"), lambda e: False)
