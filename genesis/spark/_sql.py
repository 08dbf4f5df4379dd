"""A query's DuckDB SQL as Spark SQL (sqlglot), with genesis' astronomy functions written out.

sqlglot translates most of DuckDB's dialect to Spark's (``list_min`` is ``array_min``,
``regexp_matches`` is ``RLIKE``, ``list_filter(l, lambda p: ...)`` is ``filter(l, p -> ...)``);
three things it does not carry are rewritten here on the parsed tree:

* genesis' functions (``cone``, ``sky_distance``, ``galactic_b``, ...; DuckDB macros) are
  replaced by their bodies, the very SQL of :data:`genesis.sql.functions.MACROS` with the
  arguments put in (the same trigonometry runs in both engines); the time functions, whose
  DuckDB bodies use DuckDB's own date functions, have Spark bodies of their own;
* a list comprehension ``[p.magpsf for p in prv_candidates if p.magpsf IS NOT NULL]`` becomes
  ``transform(filter(prv_candidates, p -> p.magpsf IS NOT NULL), p -> p.magpsf)``;
* ``len(x)`` of a list (DuckDB's ``len`` takes lists and text) becomes ``array_size(x)`` (NULL
  for NULL, as in DuckDB), known from the alert columns' Spark types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp

from ..sql.functions import MACROS

#: Spark bodies of the macros whose DuckDB bodies use DuckDB's date functions (UTC: genesis.spark's
#: session sets spark.sql.session.timeZone; DuckDB's %g is milliseconds)
_SPARK_BODIES = {
    "jd_to_iso": (
        "jd",
        "date_format(timestamp_micros(CAST(round((jd - 2440587.5) * 86400000000) AS BIGINT)), "
        "\"yyyy-MM-dd'T'HH:mm:ss.SSS\")",
    ),
}


def _bodies() -> dict[str, tuple[list[str], exp.Expr]]:
    """name -> (parameter names, body as a sqlglot tree), DuckDB's bodies parsed once."""
    out: dict[str, tuple[list[str], exp.Expr]] = {}
    for name, (params, body) in MACROS.items():
        dialect = "duckdb"
        if name in _SPARK_BODIES:
            params, body = _SPARK_BODIES[name]
            dialect = "spark"
        out[name] = ([p.strip().lower() for p in params.split(",")], sqlglot.parse_one(body, read=dialect))
    return out


_MACROS = _bodies()


def to_spark(tree: exp.Expr, is_list: Callable[[exp.Expr], bool]) -> str:
    """Spark SQL for ``tree`` (a parsed DuckDB query whose tables are already Spark's names);
    ``is_list(e)``: whether the column expression ``e`` is a list (array) in the alert columns."""
    return tree.copy().transform(lambda node: _rewrite(node, is_list)).sql(dialect="spark")


def _rewrite(node: exp.Expr, is_list: Callable[[exp.Expr], bool]) -> exp.Expr:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in _MACROS:
        return _expand(str(node.this).lower(), list(node.expressions), is_list)
    if isinstance(node, exp.Array) and len(node.expressions) == 1:
        (only,) = node.expressions
        if isinstance(only, exp.Comprehension):
            return _comprehension(only)
    if isinstance(node, exp.Length) and (is_list(node.this) or _makes_list(node.this)):
        return exp.Anonymous(this="array_size", expressions=[node.this])
    return node


def _expand(name: str, args: list[exp.Expr], is_list: Callable[[exp.Expr], bool]) -> exp.Expr:
    """The body of macro ``name`` with ``args`` in place of its parameters (macros inside it too)."""
    params, body = _MACROS[name]
    if len(args) != len(params):
        from ..errors import QueryError

        raise QueryError(f"{name}() takes {len(params)} arguments ({', '.join(params)}), not {len(args)}")
    given = dict(zip(params, args, strict=True))

    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in given:
            return exp.Paren(this=given[node.name.lower()].copy())
        return node

    return exp.Paren(this=body.copy().transform(put).transform(lambda n: _rewrite(n, is_list)))


def _comprehension(c: exp.Comprehension) -> exp.Expr:
    """``[expr for v in list if cond]`` as ``transform(filter(list, v -> cond), v -> expr)``."""
    var = c.args["expression"]
    source: exp.Expr = c.args["iterator"]
    condition = c.args.get("condition")
    if condition is not None:
        source = exp.Anonymous(this="filter", expressions=[source, exp.Lambda(this=condition, expressions=[var])])
    return exp.Anonymous(this="transform", expressions=[source, exp.Lambda(this=c.this, expressions=[var.copy()])])


def _makes_list(node: exp.Expr) -> bool:
    """An expression that yields a list whatever its input (a list literal, filter, transform...)."""
    if isinstance(node, (exp.Array, exp.ArrayFilter)):
        return True
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in {"filter", "transform", "array", "list_filter"}


def column_path(node: exp.Expr) -> tuple[str, ...] | None:
    """``a.candidate.magpsf`` -> ``("a", "candidate", "magpsf")``; None if not a column path."""
    if isinstance(node, exp.Column):
        return tuple(p.name for p in node.parts)
    if isinstance(node, exp.Dot):
        left = column_path(node.this)
        return None if left is None else (*left, node.expression.name)
    return None


def is_list_in(schema: Any, aliases: set[str]) -> Callable[[exp.Expr], bool]:
    """``is_list`` for alert columns of Spark type ``schema`` (a StructType), reached as
    ``field...`` or ``alias.field...`` for each of ``aliases``."""
    from pyspark.sql.types import ArrayType, StructType

    def is_list(node: exp.Expr) -> bool:
        path = column_path(node)
        if not path:
            return False
        if len(path) > 1 and path[0].lower() in aliases:
            path = path[1:]
        t: Any = schema
        for part in path:
            if not isinstance(t, StructType):
                return False
            found = next((f for f in t.fields if f.name.lower() == part.lower()), None)
            if found is None:
                return False
            t = found.dataType
        return isinstance(t, ArrayType)

    return is_list
