"""From the user's SQL to what runs: the stream it reads, the fields it needs, the DuckDB text.

A query reads one stream, named by a genesis URL in quotes where a table would be
(``FROM 'kafka://localhost/ztf' a``), and may join tables the user passed by name
(``tables={"watchlist": "mylist.csv"}``). sqlglot parses it (DuckDB's dialect) and this module

* finds the stream and replaces it by ``__genesis_alerts``, the Arrow micro-batch of alerts;
* collects the alert's top-level fields the query reads, so the decoder stops there;
* puts ``__genesis_row`` (the alert's position in the batch) first in the select list, so each
  result row is traced to its alert, and keeps it out of ``*``;
* recognises ``JOIN t ON cone(alert ra, alert dec, t.ra, t.dec, t.radius)`` so the engine can
  bucket ``t`` by sky cell (:mod:`genesis.sql._watchlist`) instead of comparing every pair;
* refuses what has no meaning over an endless stream, one batch at a time: aggregates, GROUP BY,
  ORDER BY, DISTINCT, window functions, set operations, two streams.

``CREATE STREAM name AS SELECT ...`` (ksqlDB's persistent query) is recognised here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..errors import QueryError

#: the table name of the alerts of one micro-batch, as the engine registers it
ALERTS = "__genesis_alerts"
#: the column holding an alert's position in its batch
ROW = "__genesis_row"
#: the column of a bucketed table holding a sky cell (see _watchlist)
CELL = "__genesis_cell"

_CREATE = re.compile(r"^\s*CREATE\s+STREAM\s+(\"[^\"]+\"|[A-Za-z0-9._-]+)\s+AS\s+(.*)$", re.IGNORECASE | re.DOTALL)
_SCHEMES = ("kafka://", "file://")
_EXAMPLE = "SELECT objectId FROM 'kafka://localhost/ztf' WHERE ..."
_STREAMLESS = f"the query must read one alert stream, named by its URL in quotes where a table goes: {_EXAMPLE}"


@dataclass(frozen=True)
class Cone:
    """``JOIN table ON cone(alert_ra, alert_dec, ra, dec, radius)``: what the engine buckets."""

    table: str  #: the user's table joined
    alias: str  #: how the query calls it (its alias, or its name)
    ra: str  #: SQL over the table's columns (unqualified) for the position and the radius (arcsec)
    dec: str
    radius: str
    #: the macro the rewritten join calls for the alert's cell; the engine defines it with the bucket size
    cell_macro: str
    bucketed: str  #: the table of the rows copied per sky cell, which the rewritten join reads


@dataclass(frozen=True)
class Plan:
    """What a query runs: its stream, the DuckDB text over a batch, what it reads and returns."""

    source: str  #: the genesis URL in FROM
    sql: str  #: DuckDB SQL over ``__genesis_alerts`` (and tables); its first column is ``__genesis_row``
    #: top-level fields of the alerts DuckDB reads (None: all of them)
    fields: tuple[str, ...] | None
    #: ``SELECT * FROM stream [WHERE ...]`` and nothing else: the rows are the alerts themselves
    star: bool
    tables: tuple[str, ...]  #: the user's tables the query reads
    limit: int | None = None  #: the query's LIMIT: rows over the whole stream, then it ends
    create: str | None = None  #: CREATE STREAM name: the topic to write
    cones: tuple[Cone, ...] = field(default=())
    #: per top-level field read only in parts (``candidate.magpsf``), the members read (lower case):
    #: the Arrow batch holds just those, so a batch does not convert ZTF's 100 candidate fields
    members: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: the user's SELECT as parsed (before it was rewritten over the batch), for translations of the
    #: same text (``genesis.spark.query``); copy it before changing it
    parsed: exp.Select = field(kw_only=True, compare=False, repr=False)


def plan(sql: str, tables: tuple[str, ...] | list[str] = ()) -> Plan:
    """Parse ``sql`` and plan it over one batch of alerts; ``tables``: the names it may join."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError(f"the query is empty: give a SELECT over an alert stream, e.g. {_EXAMPLE}")
    create = None
    m = _CREATE.match(sql)
    if m:
        create, sql = m.group(1).strip('"'), m.group(2)
    tree = _parse(sql)
    _refuse(tree)
    parsed = tree.copy()
    known = {t.lower(): t for t in tables}
    lambdas = {v.name.lower() for v in _lambda_variables(tree)}
    stream, joined = _tables(tree, known)
    alias = stream.alias_or_name if stream.alias else None
    source = stream.name
    star = _only_star(tree) and not tree.args.get("joins")
    read = None if _star_over_stream(tree, alias) and not star else _fields(tree, alias, set(joined), lambdas)
    fields = None if read is None else tuple(read)
    members = () if read is None else tuple((f, tuple(sorted(m))) for f, m in read.items() if m is not None)
    limit = _limit(tree)
    cones = tuple(_bucket(join, cone, joined, i) for i, (join, cone) in enumerate(_cone_joins(tree, joined)) if cone)
    stream.replace(exp.Table(this=exp.to_identifier(ALERTS), alias=stream.args.get("alias")))
    if star:  # the engine needs only which alerts pass; the rows are those alerts
        tree.set("expressions", [])
    _add_row(tree, alias, bool(cones))
    return Plan(
        source=source,
        sql=tree.sql(dialect="duckdb"),
        fields=fields,
        star=star,
        tables=tuple(sorted(set(joined.values()))),
        limit=limit,
        create=create,
        cones=cones,
        members=members,
        parsed=parsed,
    )


# ------------------------------------------------------------------ parsing and refusals
def _parse(sql: str) -> exp.Select:
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except ParseError as exc:
        raise QueryError(_syntax_message(sql, exc)) from None
    found = [t for t in trees if t is not None]
    if len(found) != 1:
        raise QueryError(f"give one query, not {len(found)} (separated by ';')")
    tree = found[0]
    if isinstance(tree, exp.SetOperation):
        raise QueryError(
            f"{type(tree).__name__.upper()} combines queries; a query reads one stream: run one query per part"
        )
    if not isinstance(tree, exp.Select):
        raise QueryError(f"a query is a SELECT (or CREATE STREAM name AS SELECT ...), not {tree.key.upper()}")
    return tree


def _syntax_message(sql: str, exc: ParseError) -> str:
    err = exc.errors[0] if exc.errors else {}
    line, col = err.get("line"), err.get("col")
    text = str(err.get("description") or exc).splitlines()[0]
    if not line or not col:
        return f"the SQL does not parse: {text}"
    lines = sql.splitlines() or [sql]
    where = lines[min(line, len(lines)) - 1]
    return f"the SQL does not parse at line {line}, column {col}: {text}\n  {where}\n  {' ' * max(col - 1, 0)}^"


#: clause -> (how the user wrote it, why a stream query cannot run it)
_NO_MEANING = {
    "group": ("GROUP BY", "GROUP BY aggregates over the whole stream, which never ends"),
    "having": ("HAVING", "HAVING filters aggregates, which have no end over a stream"),
    "order": ("ORDER BY", "ORDER BY sorts the whole stream, which never ends; rows come in the stream's order"),
    "distinct": ("DISTINCT", "DISTINCT needs the whole stream; drop duplicates with gs.dedup on the rows"),
    "qualify": ("QUALIFY", "QUALIFY filters window functions, which a stream query does not run"),
    "with": ("WITH", "WITH (common table expressions) is not supported; put the expression in the query"),
}


def _refuse(tree: exp.Select) -> None:
    for key, (clause, why) in _NO_MEANING.items():
        if tree.args.get(key):
            raise QueryError(f"{clause} is not supported in a stream query: {why}")
    for node in tree.walk():
        if isinstance(node, exp.Window):
            raise QueryError(
                "window functions (OVER ...) are not supported in a stream query: they need the whole stream"
            )
        if isinstance(node, exp.AggFunc) and not _inside_list_function(node):
            raise QueryError(
                f"the aggregate {node.sql(dialect='duckdb')} is not supported in a stream query: a stream has no end "
                "to aggregate to; for lists inside an alert use list_min, list_max, list_avg, len, ..."
            )
        if isinstance(node, exp.Subquery) or (isinstance(node, exp.Select) and node is not tree):
            raise QueryError("subqueries are not supported in a stream query; join the table instead")


def _inside_list_function(node: exp.Expr) -> bool:
    # sqlglot parses DuckDB's list_min/list_max/... as their aggregates over a list argument
    name = node.sql(dialect="duckdb").split("(")[0].upper()
    return name.startswith("LIST_") or name.startswith("ARRAY_")


# ------------------------------------------------------------------ the stream and the tables
def _tables(tree: exp.Select, known: dict[str, str]) -> tuple[exp.Table, dict[str, str]]:
    """The stream's Table node, and {alias or name: table name} of the user's tables joined."""
    streams: list[exp.Table] = []
    joined: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        name = table.name
        if not isinstance(table.this, exp.Identifier):
            raise QueryError(
                f"{table.sql(dialect='duckdb')} reads files from the query; pass them as tables instead "
                "(tables={'name': 'path.csv'} or --table name=path.csv) and join them by name"
            )
        if name.startswith(_SCHEMES):
            streams.append(table)
        elif name.lower() in known:
            joined[table.alias_or_name.lower()] = known[name.lower()]
        elif "://" in name or "/" in name or "." in name:
            raise QueryError(f"{name!r} is not a stream URL: FROM takes kafka://[group@]host/topic or file:///path")
        else:
            have = ", ".join(sorted(known.values())) or "none were given"
            raise QueryError(
                f"the query reads a table {name!r} it was not given (tables: {have}); pass "
                f"tables={{'{name}': 'path.csv'}} in Python or --table {name}=path.csv on the command line"
            )
    if not streams:
        raise QueryError(_STREAMLESS)
    if len(streams) > 1:
        raise QueryError("a query reads one stream; joining two streams needs a window, which is not supported")
    return streams[0], joined


def _lambda_variables(tree: exp.Expr) -> list[exp.Expr]:
    found: list[exp.Expr] = []
    for node in tree.find_all(exp.Comprehension, exp.Lambda):
        if isinstance(node, exp.Comprehension):
            found.append(node.args["expression"])
        else:
            found.extend(node.expressions)
    return found


def _only_star(tree: exp.Select) -> bool:
    cols = tree.expressions
    return len(cols) == 1 and (isinstance(cols[0], exp.Star) or (isinstance(cols[0], exp.Column) and cols[0].is_star))


def _star_over_stream(tree: exp.Select, alias: str | None) -> bool:
    """A ``*`` that returns the stream's columns: all fields must be in the batch."""
    for col in tree.expressions:
        if isinstance(col, exp.Star):
            return True
        if (
            isinstance(col, exp.Column)
            and col.is_star
            and (not col.table or (alias and col.table.lower() == alias.lower()))
        ):
            return True
    return False


def _fields(
    tree: exp.Select, alias: str | None, others: set[str], lambdas: set[str]
) -> dict[str, frozenset[str] | None]:
    """The top-level alert fields referenced, in order of appearance, each with the names of its
    members the query reads (``candidate.magpsf``: ``magpsf``), or None where it reads it whole."""
    out: dict[str, frozenset[str] | None] = {}
    for col in tree.find_all(exp.Column):
        parts = [p.name for p in col.parts]
        if not parts or isinstance(col.this, exp.Star):
            continue
        head = parts[0].lower()
        if head in lambdas or head in others:
            continue
        if alias and head == alias.lower():
            parts = parts[1:]
        if not parts:
            continue
        member = frozenset([parts[1].lower()]) if len(parts) > 1 else None
        if parts[0] not in out:
            out[parts[0]] = member
        elif out[parts[0]] is not None:
            seen = out[parts[0]]
            out[parts[0]] = None if member is None or seen is None else seen | member
    return out


def _limit(tree: exp.Select) -> int | None:
    node = tree.args.get("limit")
    if node is None:
        return None
    value = node.expression
    if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
        raise QueryError(f"LIMIT takes a whole number of rows, not {value.sql(dialect='duckdb')}")
    if tree.args.get("offset"):
        raise QueryError("OFFSET is not supported in a stream query; use --start-at / start_at= to say where to begin")
    tree.set("limit", None)
    return int(value.this)


def _add_row(tree: exp.Select, alias: str | None, bucketed: bool) -> None:
    """Put ``__genesis_row`` first and keep it (and bucket cells) out of every ``*``."""
    hidden = [ROW] + ([CELL] if bucketed else [])
    for col in tree.expressions:
        star = col if isinstance(col, exp.Star) else (col.this if isinstance(col, exp.Column) and col.is_star else None)
        if star is None:
            continue
        if isinstance(col, exp.Column) and col.table:
            names = [ROW] if alias and col.table.lower() == alias.lower() else [CELL] if bucketed else []
        else:
            names = hidden
        if names:
            star.set("except_", [exp.column(n) for n in names])
    qualifier = alias or ALERTS
    tree.set("expressions", [exp.column(ROW, table=qualifier), *tree.expressions])


# ------------------------------------------------------------------ cone joins
def _cone_joins(tree: exp.Select, joined: dict[str, str]) -> list[tuple[exp.Join, exp.Anonymous | None]]:
    out: list[tuple[exp.Join, exp.Anonymous | None]] = []
    for join in tree.args.get("joins") or []:
        target = join.this
        name = target.alias_or_name.lower() if isinstance(target, exp.Table) else None
        cone = None
        on = join.args.get("on")
        if name in joined and on is not None:
            for term in _conjuncts(on):
                if isinstance(term, exp.Anonymous) and term.name.lower() == "cone" and len(term.expressions) == 5:
                    args = term.expressions
                    if (
                        all(_refers_only_to(a, name) for a in args[2:4])
                        and not any(_refers_to(a, name) for a in args[:2])
                        and _refers_only_to(args[4], name, literal_ok=True)
                    ):
                        cone = term
                        break
        out.append((join, cone))
    return out


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _refers_to(node: exp.Expr, name: str) -> bool:
    return any(c.table.lower() == name for c in node.find_all(exp.Column))


def _refers_only_to(node: exp.Expr, name: str, literal_ok: bool = False) -> bool:
    cols = list(node.find_all(exp.Column))
    if not cols:
        return literal_ok
    return all(c.table.lower() == name for c in cols)


def _bucket(join: exp.Join, cone: exp.Anonymous, joined: dict[str, str], i: int) -> Cone:
    """Join the bucketed copy of the table instead, on the alert's sky cell and then the cone."""
    target = join.this
    name = target.alias_or_name
    args = cone.expressions

    def bare(node: exp.Expr) -> str:
        node = node.copy()
        for c in node.find_all(exp.Column):
            c.set("table", None)
        return node.sql(dialect="duckdb")

    macro, bucketed_name = f"__genesis_cell_{i}", f"__genesis_bucketed_{i}"
    found = Cone(
        table=joined[name.lower()],
        alias=name,
        ra=bare(args[2]),
        dec=bare(args[3]),
        radius=bare(args[4]),
        cell_macro=macro,
        bucketed=bucketed_name,
    )
    bucketed = exp.Table(this=exp.to_identifier(bucketed_name), alias=exp.TableAlias(this=exp.to_identifier(name)))
    target.replace(bucketed)
    cell = exp.EQ(
        this=exp.column(CELL, table=name),
        expression=exp.Anonymous(this=macro, expressions=[args[0].copy(), args[1].copy()]),
    )
    join.set("on", exp.And(this=cell, expression=join.args["on"].copy()))
    return found
