"""Sky cells for cone joins: a watchlist of 100,000 positions without 100,000 comparisons per alert.

``JOIN watchlist w ON cone(a.ra, a.dec, w.ra, w.dec, w.radius)`` alone is a nested-loop join:
DuckDB compares every alert of a batch with every row. Instead, the sky is cut into cells:
declination bands of height ``H`` degrees, each band cut in right ascension into as many equal
cells as keep a cell at least ``H`` wide on the sky at the band's pole-most edge (one cell near
the poles). ``H`` is twice the largest radius of the table (at least one arcminute). Each
watchlist row is copied once for every cell its cone touches (usually 1-4) into
``__genesis_bucketed_<i>`` with its cell in ``__genesis_cell``; the rewritten join matches an
alert's cell by equality (a hash join) and then tests ``cone`` exactly, so the result is that
of the plain join, row for row.

A cone's cells are found conservatively: its declination range, widened by a millionth, and in
each band the right-ascension range ``asin(sin r / cos(|dec| + r))`` either side (all of the
band when the cone reaches a pole or wraps the whole circle). Everything is computed by DuckDB,
the cells of the watchlist and of the alerts with the same macros, so no two implementations
of the arithmetic can disagree on a boundary.
"""

from __future__ import annotations

from typing import Protocol

from ._parse import CELL, Cone

#: cells of one band are numbered band * _STRIDE + k
_STRIDE = 10_000_000
#: the smallest band height, degrees
_MIN_HEIGHT = 1 / 60

_MACROS = {
    "__genesis_band": ("dec, h", "least(floor((dec + 90) / h), ceil(180 / h) - 1)::BIGINT"),
    "__genesis_ncell": (
        "b, h",
        "greatest(1, floor(360 * cos(radians(least(90, greatest(abs(-90 + b * h), abs(-90 + (b + 1) * h))))) / h))"
        "::BIGINT",
    ),
    "__genesis_cellid": (
        "ra, dec, h",
        f"__genesis_band(dec, h) * {_STRIDE} + least(__genesis_ncell(__genesis_band(dec, h), h) - 1, "
        "floor((((ra % 360) + 360) % 360) / (360 / __genesis_ncell(__genesis_band(dec, h), h))))::BIGINT",
    ),
}


class Connection(Protocol):
    """What bucketing needs of a DuckDB connection."""

    def execute(self, query: str, parameters: object = ...) -> Connection: ...

    def fetchone(self) -> tuple | None: ...


def bucket(con: Connection, cone: Cone) -> int:
    """Create ``__genesis_bucketed_<i>`` and the alert-cell macro for ``cone``; returns its row count."""
    for name, (params, body) in _MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}({params}) AS {body}")
    table = _ident(cone.table)
    row = con.execute(f"SELECT max(({cone.radius})::DOUBLE) FROM {table}").fetchone()
    largest = float(row[0]) / 3600 if row and row[0] is not None else 0.0
    h = min(180.0, max(_MIN_HEIGHT, 2 * largest))
    con.execute(f"CREATE OR REPLACE MACRO {cone.cell_macro}(ra, dec) AS __genesis_cellid(ra, dec, {h!r})")
    target = _ident(cone.bucketed)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {target} AS
        WITH w AS (
            SELECT *, ((({cone.ra})::DOUBLE % 360) + 360) % 360 AS __g_ra, ({cone.dec})::DOUBLE AS __g_dec,
                   ({cone.radius})::DOUBLE / 3600 * 1.000001 + 1e-9 AS __g_r
            FROM {table}
            WHERE ({cone.ra}) IS NOT NULL AND ({cone.dec}) IS NOT NULL AND ({cone.radius}) IS NOT NULL
        ), b AS (
            SELECT *, unnest(generate_series(__genesis_band(greatest(-90, __g_dec - __g_r), {h!r}),
                                             __genesis_band(least(90, __g_dec + __g_r), {h!r}))) AS __g_b
            FROM w
        ), c AS (
            SELECT *, __genesis_ncell(__g_b, {h!r}) AS __g_n,
                   CASE WHEN abs(__g_dec) + __g_r >= 90 THEN 180.0
                        WHEN sin(radians(__g_r)) >= cos(radians(abs(__g_dec) + __g_r)) THEN 180.0
                        ELSE degrees(asin(sin(radians(__g_r)) / cos(radians(abs(__g_dec) + __g_r)))) END AS __g_dra
            FROM b
        ), k AS (
            SELECT *, unnest(CASE
                WHEN 2 * __g_dra >= 360 - 360 / __g_n THEN generate_series(0, __g_n - 1)
                ELSE list_distinct(list_transform(
                    generate_series(floor((__g_ra - __g_dra) / (360 / __g_n))::BIGINT,
                                    floor((__g_ra + __g_dra) / (360 / __g_n))::BIGINT),
                    lambda x: ((x % __g_n) + __g_n) % __g_n)) END) AS __g_k
            FROM c
        )
        SELECT * EXCLUDE (__g_ra, __g_dec, __g_r, __g_b, __g_n, __g_dra, __g_k),
               __g_b * {_STRIDE} + __g_k AS {CELL}
        FROM k
        """
    )
    counted = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    return int(counted[0]) if counted else 0


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
