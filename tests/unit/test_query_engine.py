"""The engine over real alerts: DuckDB's answers per batch, schemas mixed, watchlists bucketed."""

import random

import pyarrow as pa
import pytest

from genesis.demo.samples import real_lsst_alerts, real_ztf_alerts
from genesis.errors import ConfigError, QueryError
from genesis.sql import plan
from genesis.sql._engine import Engine

ZTF = "'kafka://localhost/ztf'"


@pytest.fixture(scope="module")
def ztf(data_dir):
    found = real_ztf_alerts(data_dir)
    return [a.record for a in found], [a.schema for a in found]


def run(sql, alerts, schemas, tables=None):
    engine = Engine(plan(sql, tuple(tables or ())), tables)
    try:
        return engine.run(alerts, schemas)
    finally:
        engine.close()


def test_rows_are_what_python_computes_over_the_same_alerts_in_every_schema(ztf):
    alerts, schemas = ztf
    assert len({id(s) for s in schemas}) > 3  # several ZTF schema versions in one batch
    rows = run(
        f"SELECT objectId, candid, candidate.magpsf AS mag FROM {ZTF} "
        "WHERE candidate.magpsf < 19 AND candidate.isdiffpos = 't'",
        alerts,
        schemas,
    )
    expected = [
        (i, {"objectId": a["objectId"], "candid": a["candid"], "mag": a["candidate"]["magpsf"]})
        for i, a in enumerate(alerts)
        if a["candidate"]["magpsf"] < 19 and a["candidate"]["isdiffpos"] == "t"
    ]
    assert rows == expected and rows


def test_history_expressions_of_the_docs(ztf):
    alerts, schemas = ztf
    rows = run(
        f"SELECT candid, len(prv_candidates) AS n, "
        "list_min([p.magpsf for p in prv_candidates if p.magpsf IS NOT NULL]) AS best "
        f"FROM {ZTF} WHERE len(prv_candidates) > 3",
        alerts,
        schemas,
    )
    for i, row in rows:
        history = alerts[i]["prv_candidates"]
        mags = [p["magpsf"] for p in history if p["magpsf"] is not None]
        assert row == {"candid": alerts[i]["candid"], "n": len(history), "best": min(mags) if mags else None}
    assert len(rows) == sum(1 for a in alerts if a["prv_candidates"] and len(a["prv_candidates"]) > 3)


def test_rubin_alerts(data_dir):
    found = real_lsst_alerts(data_dir)
    alerts, schemas = [a.record for a in found], [a.schema for a in found]
    rows = run(
        "SELECT diaSource.diaSourceId AS id FROM 'kafka://localhost/lsst' WHERE diaSource.snr > 5", alerts, schemas
    )
    assert [r["id"] for _, r in rows] == [a["diaSource"]["diaSourceId"] for a in alerts if a["diaSource"]["snr"] > 5]


def test_json_alerts_without_a_schema_are_typed_from_their_values(ztf):
    alerts = [{"objectId": a["objectId"], "candidate": {"magpsf": a["candidate"]["magpsf"]}} for a in ztf[0]]
    rows = run(f"SELECT objectId FROM {ZTF} WHERE candidate.magpsf < 18", alerts, [None] * len(alerts))
    assert [r["objectId"] for _, r in rows] == [a["objectId"] for a in alerts if a["candidate"]["magpsf"] < 18]


def test_a_field_the_schema_lacks_is_a_query_error_naming_it(ztf):
    alerts, schemas = ztf
    with pytest.raises(QueryError, match="no_such_field"):
        run(f"SELECT no_such_field FROM {ZTF}", alerts, schemas)


def test_tables_are_files_or_arrow_and_queries_cannot_read_other_files(ztf, tmp_path):
    alerts, schemas = ztf
    (tmp_path / "names.csv").write_text("objectId,label\n" + f"{alerts[0]['objectId']},first\n")
    rows = run(
        f"SELECT a.candid, n.label FROM {ZTF} a JOIN names n ON a.objectId = n.objectId",
        alerts,
        schemas,
        {"names": tmp_path / "names.csv"},
    )
    assert {r["label"] for _, r in rows} == {"first"} and rows
    with pytest.raises(ConfigError, match="not a file"):
        Engine(
            plan(f"SELECT a.candid FROM {ZTF} a JOIN names n ON a.objectId = n.objectId", ("names",)),
            {"names": tmp_path / "missing.csv"},
        )


def _watchlist(alerts, n, seed=1):
    """n positions: one within 1.5" of each alert, the rest spread over the sky (poles and RA 0/360 too)."""
    rng = random.Random(seed)
    ras, decs, names = [], [], []
    for i, a in enumerate(alerts):
        ras.append((a["candidate"]["ra"] + rng.uniform(-1, 1) / 3600) % 360)
        decs.append(a["candidate"]["dec"] + rng.uniform(-1, 1) / 3600)
        names.append(f"near-{i}")
    for i in range(n - len(alerts)):
        ras.append(rng.choice([rng.uniform(0, 360), rng.uniform(359.999, 360) % 360, rng.uniform(0, 0.001)]))
        decs.append(rng.choice([rng.uniform(-90, 90), rng.uniform(89.99, 90), rng.uniform(-90, -89.99)]))
        names.append(f"far-{i}")
    radius = [rng.choice([2.0, 5.0, 30.0]) for _ in names]
    return pa.table({"name": names, "ra": ras, "dec": decs, "radius": radius})


def test_a_bucketed_cone_join_gives_the_plain_joins_rows(ztf):
    alerts, schemas = ztf
    # every alert also near the poles and across RA 0: the cells must hold there too
    moved = []
    for ra, dec in ((None, None), (359.99995, None), (0.00004, 89.9995), (180.0, -89.9999)):
        for a in alerts:
            c = dict(
                a["candidate"],
                ra=ra if ra is not None else a["candidate"]["ra"],
                dec=dec if dec is not None else a["candidate"]["dec"],
            )
            moved.append(dict(a, candidate=c))
    all_schemas = schemas * 4
    wl = _watchlist(moved, 20_000)
    sql = (
        f"SELECT a.candid, w.name FROM {ZTF} a JOIN watchlist w "
        "ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)"
    )
    bucketed = run(sql, moved, all_schemas, {"watchlist": wl})
    plain_sql = sql.replace("ON cone(", "ON 1 = 1 AND sky_distance(").replace(", w.radius)", ") <= w.radius")
    plain = run(plain_sql, moved, all_schemas, {"watchlist": wl})
    assert plan(plain_sql, ("watchlist",)).cones == ()
    key = lambda r: (r[0], r[1]["name"])
    assert sorted(bucketed, key=key) == sorted(plain, key=key)
    assert len(bucketed) >= len(moved)  # every alert has its near position


def test_watchlist_rows_per_cell_stay_few(ztf):
    alerts, schemas = ztf
    wl = _watchlist(alerts, 100_000)
    engine = Engine(
        plan(
            f"SELECT a.candid, w.name FROM {ZTF} a JOIN watchlist w "
            "ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)",
            ("watchlist",),
        ),
        {"watchlist": wl},
    )
    try:
        # each position is copied into the few cells its cone touches, not into thousands
        assert 100_000 <= engine.bucketed["watchlist"] < 100_000 * 4
        assert {r["name"] for _, r in engine.run(alerts, schemas)} >= {f"near-{i}" for i in range(len(alerts))}
    finally:
        engine.close()


def test_one_query_reads_one_schema_family_and_says_so_when_topics_mix_them(ztf, data_dir):
    alerts, schemas = ztf
    lsst = real_lsst_alerts(data_dir)
    engine = Engine(plan(f"SELECT objectId FROM {ZTF}"))
    try:
        assert len(engine.run(alerts, schemas)) == len(alerts)  # every ZTF schema version, Fink's too
        with pytest.raises(QueryError, match="holds ZTF alerts and Rubin alerts: a query reads one schema family"):
            engine.run([a.record for a in lsst], [a.schema for a in lsst])
    finally:
        engine.close()


def test_schema_versions_that_differ_only_in_what_the_query_skips_share_one_table(ztf):
    """ZTF's schema versions (and Fink's Spark-written ones) differ in nullability and field order,
    not in the three columns a projection reads: one table and one DuckDB query per batch."""
    alerts, schemas = ztf
    engine = Engine(plan(f"SELECT candid, objectId, candidate.magpsf AS mag FROM {ZTF}", ()))
    try:
        tables = engine.run_arrow(alerts, schemas)
        rows = engine.run(alerts, schemas)
    finally:
        engine.close()
    assert len({id(s) for s in schemas}) > 3 and len(tables) == 1
    assert rows == [
        (i, {"candid": a["candid"], "objectId": a["objectId"], "mag": a["candidate"]["magpsf"]})
        for i, a in enumerate(alerts)
    ]


def test_select_star_over_a_multi_alert_container_decodes_it_once(data_dir, monkeypatch):
    """SELECT * rows are whole alerts; the rows of one 11-alert container cost one whole decode."""
    import genesis.streaming as gs
    from genesis import Decoder, decode_file

    path = data_dir / "ztf/fink_enriched/avro_multi_alerts.avro"
    alerts = decode_file(path)
    assert len(alerts) > 3
    whole = []
    original = Decoder.decode

    def counting(self, value, key=None):
        whole.append(len(value))
        return original(self, value, key)

    monkeypatch.setattr(Decoder, "decode", counting)
    with gs.query(f"SELECT * FROM 'file://{path}' WHERE candidate.magpsf < 99") as q:
        rows = [row for _, row in q(until_eos=True)]
    assert rows == alerts and len(whole) == 1
