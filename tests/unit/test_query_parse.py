"""Planning a query: the stream it reads, the fields it needs, the SQL it runs, what it refuses."""

import pytest

from genesis.errors import ConfigError, QueryError
from genesis.sql import plan

ZTF = "'kafka://localhost/ztf'"


def test_fields_read_drive_the_decoder_and_the_row_column_comes_first():
    p = plan(f"SELECT objectId, candid, candidate.magpsf AS mag FROM {ZTF} WHERE candidate.ssnamenr <> 'null'")
    assert p.source == "kafka://localhost/ztf"
    assert p.fields == ("objectId", "candid", "candidate")
    assert not p.star and p.create is None and p.limit is None
    assert p.sql.startswith("SELECT __genesis_alerts.__genesis_row, objectId, candid") and "__genesis_alerts" in p.sql


def test_select_star_over_the_stream_alone_reads_the_where_fields_and_returns_whole_alerts():
    p = plan(
        f"SELECT * FROM {ZTF} WHERE len(prv_candidates) > 3 AND "
        "list_min([p.magpsf for p in prv_candidates if p.magpsf IS NOT NULL]) < 18"
    )
    assert p.star
    assert p.fields == ("prv_candidates",)  # the comprehension's variable p is not a field
    assert p.sql.startswith("SELECT __genesis_alerts.__genesis_row FROM")


def test_alias_and_lambda_variables_are_not_fields():
    p = plan(f"SELECT a.objectId, list_filter(a.prv_candidates, lambda x: x.magpsf < 18) FROM {ZTF} a")
    assert p.fields == ("objectId", "prv_candidates")
    assert p.sql.startswith("SELECT a.__genesis_row, a.objectId")


def test_limit_is_taken_over_the_whole_stream():
    p = plan(f"SELECT objectId FROM {ZTF} LIMIT 7")
    assert p.limit == 7 and "LIMIT" not in p.sql


def test_create_stream_names_the_output_topic():
    p = plan("CREATE STREAM bright AS SELECT * FROM 'kafka://grp@localhost/ztf' WHERE candidate.magpsf < 16")
    assert p.create == "bright" and p.star and p.source == "kafka://grp@localhost/ztf"


def test_a_cone_join_is_bucketed_and_star_hides_the_helper_columns():
    p = plan(
        f"SELECT *, w.* FROM {ZTF} a JOIN watchlist w ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.r)",
        ["watchlist"],
    )
    (cone,) = p.cones
    assert (cone.table, cone.alias, cone.ra, cone.dec, cone.radius) == ("watchlist", "w", "ra", "dec", "r")
    assert f"JOIN {cone.bucketed} AS w ON w.__genesis_cell = " in p.sql
    assert "* EXCLUDE (__genesis_row, __genesis_cell)" in p.sql and "w.* EXCLUDE (__genesis_cell)" in p.sql
    assert p.fields is None and p.tables == ("watchlist",)


def test_a_join_on_something_else_is_left_as_written():
    p = plan(f"SELECT a.objectId, w.name FROM {ZTF} a JOIN watchlist w ON a.objectId = w.name", ["watchlist"])
    assert p.cones == () and "JOIN watchlist AS w ON a.objectId = w.name" in p.sql


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (f"SELECT count(*) FROM {ZTF}", "aggregate"),
        (f"SELECT objectId, max(candid) FROM {ZTF} GROUP BY objectId", "aggregate"),
        (f"SELECT objectId FROM {ZTF} ORDER BY candid", "ORDER BY"),
        (f"SELECT DISTINCT objectId FROM {ZTF}", "DISTINCT"),
        (f"SELECT objectId, row_number() OVER () FROM {ZTF}", "window"),
        (f"SELECT objectId FROM {ZTF} UNION SELECT objectId FROM {ZTF}", "UNION"),
        (f"SELECT a.objectId FROM {ZTF} a JOIN 'kafka://localhost/lsst' b ON a.objectId = b.objectId", "two streams"),
        ("SELECT objectId FROM alerts", "tables={'alerts'"),
        ("SELECT 1", "one alert stream"),
        ("SELECT * FROM read_csv('secrets.csv')", "reads files"),
        (f"SELECT objectId FROM {ZTF} WHERE (SELECT 1) = 1", "subqueries"),
        (f"SELECT objectId FROM {ZTF} LIMIT 5 OFFSET 2", "OFFSET"),
        ("DELETE FROM x", "a query is a SELECT"),
        ("", "empty"),
    ],
)
def test_what_has_no_meaning_over_a_stream_is_refused_with_a_reason(sql, says):
    with pytest.raises(QueryError, match=None) as info:
        plan(sql)
    assert says in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_a_syntax_error_points_at_the_place():
    with pytest.raises(QueryError) as info:
        plan(f"SELECT objectId FROM {ZTF} WHERE candidate.magpsf <")
    lines = str(info.value).splitlines()
    assert "line 1" in lines[0] and lines[-1].strip() == "^"


def test_members_read_of_a_struct_are_known_so_the_batch_holds_only_those():
    read = plan(
        "SELECT a.candid, a.candidate.magpsf AS mag FROM 'kafka://localhost/ztf' a "
        "WHERE a.candidate.ssnamenr <> 'null' AND len(a.prv_candidates) > 2"
    )
    assert read.fields == ("candid", "candidate", "prv_candidates")
    assert read.members == (("candidate", ("magpsf", "ssnamenr")),)  # candid is a leaf, prv_candidates whole
    whole = plan("SELECT candidate, candidate.magpsf AS m FROM 'kafka://localhost/ztf'")
    assert whole.members == ()  # read whole once: whole
