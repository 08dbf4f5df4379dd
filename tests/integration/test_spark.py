"""genesis.spark on Spark ``local[2]`` against the real local Kafka cluster (no mock anywhere).

One SparkSession serves the module; the checkpoint test runs its own drivers (``genesis spark``)
in processes it kills. Skipped, with the reason, where pyspark (the extra ``[spark]``) is missing.
"""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark", reason="genesis.spark needs pyspark: pip install 'genesis-streaming[spark]'")

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

import genesis.spark as gsp  # noqa: E402
import genesis.streaming as gs  # noqa: E402
from genesis import errors  # noqa: E402
from genesis._codecs import SchemaDirectory, encode_wire  # noqa: E402
from genesis.filters import filter_asteroids  # noqa: E402
from genesis.samples import real_lsst_alerts  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.spark]

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def spark():
    session = gsp.session(
        "local[2]",
        **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "1g"},
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        _stop_with_its_jvm(session)


def _stop_with_its_jvm(session) -> None:
    """Stop the session and the JVM pyspark started for it (``stop()`` leaves that running until
    Python exits, which then warns "subprocess ... is still running")."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    session.stop()
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None
    if proc is not None:
        proc.stdin.close()  # the JVM ends when its stdin closes
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def messages(bootstrap: str, topic: str) -> dict[tuple[int, int], tuple[str | None, str | None]]:
    """Every message of ``topic``: (partition, offset) -> SHA-256 of (key, value), read with a plain consumer."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t-" + uuid.uuid4().hex, "enable.partition.eof": True}
    )
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        found, ended, deadline = {}, set(), time.monotonic() + 60
        while len(ended) < len(parts) and time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is None:
                continue
            if msg.error() is not None:
                ended.add(msg.partition())
                continue
            found[(msg.partition(), msg.offset())] = (digest(msg.key()), digest(msg.value()))
        assert len(ended) == len(parts), "the topic was not read to its end"
        return found
    finally:
        consumer.close()


def kept_by_genesis(url: str, flt) -> list[int]:
    """The candids ``gs.open`` keeps with ``flt``, sorted (repeats kept: they must match too)."""
    with gs.open(url, start_at="earliest") as stream:
        return sorted(alert["candid"] for _, alert in stream(filter=flt, until_eos=True, timeout=60))


def test_medium_with_the_asteroid_filter_keeps_what_gs_open_keeps(spark, demo):
    url = demo.url("medium")
    want = kept_by_genesis(url, filter_asteroids)
    assert 0 < len(want) < 20_000
    kept = gsp.apply(gsp.read(spark, url, until_eos=True), filter_asteroids)
    value_sha = pyspark.sql.functions.sha2("value", 256).alias("sha")
    rows = kept.select("candid", "candidate.ssnamenr", "partition", "offset", value_sha).collect()
    assert sorted(r.candid for r in rows) == want
    assert all(r.ssnamenr not in (None, "null") for r in rows)
    # survivors keep their message bytes: the very value at their partition and offset
    raw = messages(demo.bootstrap_servers, "medium")
    assert all(raw[(r.partition, r.offset)][1] == r.sha for r in rows)


def test_columns_are_typed_nested_and_older_alerts_get_nulls(spark, demo, small_alerts):
    df = gsp.read(spark, demo.url("small"), until_eos=True)
    types = dict((f.name, f.dataType) for f in df.schema.fields)
    assert types["candidate"].typeName() == "struct" and types["prv_candidates"].typeName() == "array"
    assert types["candidate"]["magpsf"].dataType.typeName() == "float"
    assert {"kafka_topic", "partition", "offset", "kafka_timestamp", "key", "value"} <= set(types)  # Fink's topic field
    rows = {r.candid: r for r in df.select("candid", "candidate", "prv_candidates", "fp_hists").collect()}
    assert set(rows) == set(small_alerts)
    for candid, alert in small_alerts.items():
        row = rows[candid]
        assert row.candidate.magpsf == pytest.approx(alert["candidate"]["magpsf"])
        assert len(row.prv_candidates or []) == len(alert["prv_candidates"] or [])
        assert (row.fp_hists is None) == ("fp_hists" not in alert or alert["fp_hists"] is None)
    assert any(r.fp_hists is None for r in rows.values()) and any(r.fp_hists for r in rows.values())


@pytest.fixture(scope="module")
def small_alerts(demo) -> dict[int, dict]:
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        return {alert["candid"]: alert for _, alert in stream(until_eos=True, timeout=60)}


def test_rubin_wire_format_alerts_decode(spark, cluster, data_dir):
    schemas = SchemaDirectory(data_dir / "lsst" / "schema")
    records = []
    for alert in real_lsst_alerts(data_dir):
        path = str(alert.path)
        sid = (
            900
            if "rubin_v9_0" in path
            else 1000
            if "sample_data/10.0" in path
            else 1100
            if "sample_data/11.0" in path
            else None
        )
        if sid is not None:
            records.append((alert.record, sid))
    assert {sid for _, sid in records} == {900, 1000, 1100}
    topic = "spark-lsst-" + uuid.uuid4().hex[:6]
    cluster.create_topic(topic, partitions=2)
    with gs.open(cluster.url(topic), "w") as writer:
        for record, sid in records:
            writer.write(encode_wire(record, schemas.get(sid), sid))
    df = gsp.read(spark, cluster.url(topic), until_eos=True, schemas=data_dir / "lsst" / "schema")
    rows = {r.diaSourceId: r for r in df.collect()}
    want = {r["diaSourceId"]: r for r, _ in records}
    assert set(rows) == set(want)
    for key, record in want.items():
        row = rows[key]
        assert row.diaSource.ra == pytest.approx(record["diaSource"]["ra"])
        assert row.diaSource.midpointMjdTai == pytest.approx(record["diaSource"]["midpointMjdTai"])
        assert row.cutoutDifference == record.get("cutoutDifference")
        # 9.0 has MPCORB, 10.0 and 11.0 mpc_orbits: each is null where the alert's schema lacks it
        assert (row.MPCORB is None) == (record.get("MPCORB") is None)
        assert (row.mpc_orbits is None) == (record.get("mpc_orbits") is None)


@pytest.mark.edit_loop
def test_an_unknown_field_fails_the_query_naming_it(spark, demo, tmp_path):
    df = gsp.read(spark, demo.url("small"), until_eos=True, schema="objectId string, candid bigint")
    with pytest.raises(errors.SchemaMismatchError, match=r"holds the field '\w+', which they do not have") as info:
        gsp.write(df, str(tmp_path / "out"))
    assert info.value.topic == "small" and info.value.offset is not None
    assert info.value.field and info.value.field not in ("objectId", "candid") and info.value.field in str(info.value)


def test_a_filter_that_raises_fails_the_query_with_its_alert(spark, demo, tmp_path):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        _, alert, meta = next(iter(stream(metadata=True, limit=1, timeout=60)))
    bad = alert["candid"]

    def raise_on_one(alert):  # defined here, as in a notebook: it travels to the executors by value
        if alert["candid"] == bad:
            raise RuntimeError(f"boom on {bad}")
        return True

    kept = gsp.apply(gsp.read(spark, demo.url("small"), until_eos=True), raise_on_one)
    with pytest.raises(errors.FilterError, match="boom on") as info:
        gsp.write(kept, str(tmp_path / "out"))
    assert (info.value.topic, info.value.partition, info.value.offset) == (meta.topic, meta.partition, meta.offset)
    assert f"small[{meta.partition}]@{meta.offset}" in str(info.value)


def test_kafka_output_forwards_survivors_byte_for_byte(spark, demo, cluster):
    out = "spark-out-" + uuid.uuid4().hex[:6]
    cluster.create_topic(out, partitions=3)
    kept = gsp.apply(gsp.read(spark, demo.url("small"), until_eos=True), filter_asteroids)
    gsp.write(kept, cluster.url(out))
    source = messages(demo.bootstrap_servers, "small")
    forwarded = sorted(messages(demo.bootstrap_servers, out).values(), key=repr)
    want = kept_by_genesis(demo.url("small"), filter_asteroids)
    assert len(forwarded) == len(want)
    assert all(message in source.values() for message in forwarded)  # key and value unchanged
    assert kept_by_genesis(cluster.url(out), None) == want


# ---------------------------------------------------------------- a killed driver, restarted


def _job(out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genesis",
        "spark",
        url,
        "--filter",
        "spark_filters:slow_asteroids",
        "--output",
        str(out),
        "--until-eos",
        "--max-per-batch",
        "40",  # small's 100 alerts in 3 micro-batches: one committed, one killed, one after the restart
        "--master",
        "local[2]",
    ]


def _committed_files(out: Path) -> set[str]:
    """The data files the Parquet sink's log lists (what readers of the directory see)."""
    names = set()
    for log in (out / "_spark_metadata").glob("[0-9]*"):
        names |= {
            Path(line.split('"path":"', 1)[1].split('"', 1)[0]).name
            for line in log.read_text().splitlines()
            if '"path"' in line
        }
    return names


def _batches(directory: Path) -> set[int]:
    return {int(p.name) for p in directory.glob("[0-9]*")} if directory.is_dir() else set()


def test_a_killed_driver_restarted_from_its_checkpoint_loses_and_repeats_nothing(spark, demo, tmp_path):
    out, ckpt = tmp_path / "asteroids", tmp_path / "asteroids" / "_checkpoint"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env["SPARK_TEST_DELAY"] = "0.15"
    with (tmp_path / "driver1.log").open("w") as log:
        driver = subprocess.Popen(
            _job(out, demo.url("small")), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    killed_in = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            committed = _batches(ckpt / "commits")
            started = _batches(ckpt / "offsets") - committed
            orphans = {p.name for p in out.glob("part-*")} - _committed_files(out)
            if committed and started and orphans:  # a batch after a committed one is being written
                killed_in = max(started)
                os.killpg(driver.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if driver.poll() is None and killed_in is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    assert killed_in is not None, (tmp_path / "driver1.log").read_text()[-3000:]
    assert killed_in not in _batches(ckpt / "commits")
    left_behind = {p.name for p in out.glob("part-*")} - _committed_files(out)
    assert left_behind, "the killed batch left no file behind: it was not being written"

    env["SPARK_TEST_DELAY"] = "0"
    again = subprocess.run(_job(out, demo.url("small")), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert max(_batches(ckpt / "commits")) > killed_in  # the cut batch was redone, and more came after
    got = sorted(r.candid for r in spark.read.parquet(str(out)).select("candid").collect())
    want = kept_by_genesis(demo.url("small"), filter_asteroids)
    assert collections.Counter(got) == collections.Counter(want)  # nothing lost, nothing twice
    assert left_behind - _committed_files(out) == left_behind  # the cut batch's files stay out of the log


def test_the_cli_prints_the_spark_submit_line(tmp_path, demo):
    """``genesis spark --submit-line`` prints a runnable spark-submit line (no Spark started)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "genesis",
            "spark",
            demo.url("small"),
            "--filter",
            "genesis.filters:filter_asteroids",
            "--output",
            str(tmp_path / "o"),
            "--submit-line",
            "--executor-python",
            "/opt/env/bin/python",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.lstrip().startswith("spark-submit --master spark://HOST:7077 --packages " + gsp.package())
    assert "spark.pyspark.python=/opt/env/bin/python" in line and "genesis/spark/__main__.py" in line


# ---------------------------------------------------------------------- the same SQL as gs.query


def _rounded(row: dict) -> tuple:
    """A row as comparable values: floats to 9 significant digits (the JVM's and C's libm may differ
    in the last bit of a sine), lists as tuples."""

    def fix(v):
        if isinstance(v, float):
            return float(f"{v:.9g}")
        if isinstance(v, list):
            return tuple(fix(x) for x in v)
        return v

    return tuple(sorted((k, fix(v)) for k, v in row.items()))


SQL_ON_BOTH = [
    "SELECT objectId, candid, candidate.magpsf AS mag FROM '{url}' "
    "WHERE candidate.ssnamenr <> 'null' AND candidate.magpsf < 19",
    "SELECT candid, len(prv_candidates) AS n, "
    "list_min([p.magpsf for p in prv_candidates if p.magpsf IS NOT NULL]) AS best, "
    "[p.jd for p in prv_candidates] AS jds, jd_to_iso(candidate.jd) AS t, galactic_b(candidate.ra, candidate.dec) AS b, "
    "CASE WHEN candidate.isdiffpos = 't' THEN 'positive' ELSE 'negative' END AS sign "
    "FROM '{url}' WHERE len(prv_candidates) > 3 AND regexp_matches(objectId, '^ZTF')",
]


@pytest.mark.parametrize("sql", SQL_ON_BOTH, ids=["asteroids", "history-lists-functions"])
def test_the_same_sql_selects_the_same_rows_as_gs_query(spark, demo, sql):
    text = sql.format(url=demo.url("medium"))
    with gs.query(text, start_at="earliest") as q:
        want = sorted(_rounded(r) for _, r in q(until_eos=True))
    got = sorted(_rounded(r.asDict(recursive=True)) for r in gsp.query(spark, text, until_eos=True).collect())
    assert want and got == want


def test_a_watchlist_join_on_spark_and_as_a_stream(spark, demo, tmp_path):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        alerts = [a for _, a in stream(until_eos=True, fields=("candid", "candidate"))]
    wl = tmp_path / "mylist.csv"
    wl.write_text(
        "name,ra,dec,radius\n"
        + "".join(
            f"s{a['candid']},{a['candidate']['ra'] + 0.5 / 3600},{a['candidate']['dec']},2.0\n" for a in alerts[::7]
        )
    )
    sql = (
        f"SELECT a.candid, w.name FROM '{demo.url('small')}' a JOIN watchlist w "
        "ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)"
    )
    with gs.query(sql, tables={"watchlist": str(wl)}, start_at="earliest") as q:
        want = sorted((r["candid"], r["name"]) for _, r in q(until_eos=True))
    assert want
    streaming = gsp.query(spark, sql, tables={"watchlist": str(wl)})
    assert streaming.isStreaming
    out = tmp_path / "matches"
    gsp.write(streaming, str(out), checkpoint=str(tmp_path / "ckpt"), trigger="available_now", block=True)
    got = sorted((r.candid, r.name) for r in spark.read.parquet(str(out)).collect())
    assert got == want
    with pytest.raises(errors.QueryError, match="aggregate"):
        gsp.query(spark, f"SELECT count(*) FROM '{demo.url('small')}'")
