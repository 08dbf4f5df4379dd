"""Astronomy functions for queries, as DuckDB macros (SQL, so DuckDB vectorises them).

=================================================  ==========================================
``cone(ra, dec, ra0, dec0, radius_arcsec)``        true when (ra, dec) lies within the radius
                                                   of (ra0, dec0): great-circle distance
                                                   (haversine, exact at the poles and across
                                                   RA 0/360); degrees in, arcseconds radius
``sky_distance(ra, dec, ra0, dec0)``               that distance, in arcseconds
``galactic_b(ra, dec)``                            Galactic latitude (degrees) of ICRS ra, dec
``galactic_l(ra, dec)``                            Galactic longitude (degrees, 0..360)
``jd_to_iso(jd)``                                  a Julian date (UTC) as ISO 8601 text,
                                                   ``2019-06-27T04:50:21.997``
``mjd_to_iso(mjd)``                                the same for a modified Julian date (Rubin)
=================================================  ==========================================

Every function returns NULL when an argument is NULL (so ``WHERE cone(...)`` drops the alert).
Each is tested against astropy in ``tests/unit/test_query_functions.py``. The same definitions
exist for Spark in :mod:`genesis.spark` (Spark SQL has the same trigonometry).
"""

from __future__ import annotations

from typing import Protocol

#: the ICRS position of the north Galactic pole and the Galactic longitude of the north celestial
#: pole (IAU 1958 system in ICRS, as astropy's Galactic frame defines it)
NGP_RA, NGP_DEC, NCP_L = 192.85948, 27.12825, 122.93192

_HAVERSINE = (
    "2 * asin(least(1.0, sqrt(pow(sin(radians(dec0 - dec) / 2), 2) "
    "+ cos(radians(dec)) * cos(radians(dec0)) * pow(sin(radians(ra0 - ra) / 2), 2))))"
)


def _strict(params: str, body: str) -> tuple[str, str]:
    """A macro that is NULL when any argument is (DuckDB's least/greatest would skip a NULL)."""
    nulls = " OR ".join(f"{p.strip()} IS NULL" for p in params.split(","))
    return params, f"CASE WHEN {nulls} THEN NULL ELSE {body} END"


#: name -> (parameters, SQL body)
MACROS: dict[str, tuple[str, str]] = {
    "sky_distance": _strict("ra, dec, ra0, dec0", f"degrees({_HAVERSINE}) * 3600"),
    "cone": _strict("ra, dec, ra0, dec0, radius_arcsec", f"{_HAVERSINE} <= radians(radius_arcsec / 3600)"),
    "galactic_b": _strict(
        "ra, dec",
        f"degrees(asin(least(1.0, greatest(-1.0, sin(radians(dec)) * sin(radians({NGP_DEC})) "
        f"+ cos(radians(dec)) * cos(radians({NGP_DEC})) * cos(radians(ra - {NGP_RA}))))))",
    ),
    "galactic_l": _strict(
        "ra, dec",
        f"(({NCP_L} - degrees(atan2("
        f"cos(radians(dec)) * sin(radians(ra - {NGP_RA})), "
        f"sin(radians(dec)) * cos(radians({NGP_DEC})) - cos(radians(dec)) * sin(radians({NGP_DEC})) "
        f"* cos(radians(ra - {NGP_RA}))))) + 720) % 360",
    ),
    "jd_to_iso": (
        "jd",
        "strftime(make_timestamp(round((jd - 2440587.5) * 86400000000)::BIGINT), '%Y-%m-%dT%H:%M:%S.%g')",
    ),
    "mjd_to_iso": ("mjd", "jd_to_iso(mjd + 2400000.5)"),
}


class Connection(Protocol):
    """What :func:`install` needs of a DuckDB connection."""

    def execute(self, query: str) -> object: ...


def install(con: Connection) -> None:
    """Define the macros in ``con`` (in dependency order: ``mjd_to_iso`` uses ``jd_to_iso``)."""
    for name, (params, body) in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}({params}) AS {body}")
