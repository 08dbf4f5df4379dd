"""The astronomy macros of queries, against astropy (the reference), poles and RA 0/360 included."""

import math
from datetime import datetime, timedelta

import duckdb
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis.sql import functions

RA = st.floats(0, 360, exclude_max=True, allow_nan=False)
DEC = st.floats(-90, 90, allow_nan=False)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    functions.install(c)
    yield c
    c.close()


def one(con, sql, *args):
    return con.execute(sql, list(args)).fetchone()[0]


@settings(max_examples=300, deadline=None)
@given(RA, DEC, RA, DEC)
def test_sky_distance_is_astropys_separation(con, ra, dec, ra0, dec0):
    expected = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).arcsec
    got = one(con, "SELECT sky_distance(?, ?, ?, ?)", ra, dec, ra0, dec0)
    assert got == pytest.approx(expected, abs=1e-3, rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(RA, DEC, st.floats(-0.01, 0.01), st.floats(-0.01, 0.01), st.floats(0.1, 30))
def test_cone_near_a_position_agrees_with_astropy(con, ra, dec, dra, ddec, radius):
    ra0, dec0 = (ra + dra) % 360, max(-90.0, min(90.0, dec + ddec))
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(ra0 * u.deg, dec0 * u.deg)).arcsec
    if abs(sep - radius) < 1e-6:
        return  # on the edge to within rounding: either answer is right
    assert one(con, "SELECT cone(?, ?, ?, ?, ?)", ra, dec, ra0, dec0, radius) is bool(sep <= radius)


@pytest.mark.parametrize(
    ("a", "b", "arcsec"),
    [
        ((359.9999, 10.0), (0.0001, 10.0), 0.0002 * 3600 * math.cos(math.radians(10))),  # across RA 0/360
        ((0.0, 89.9999), (180.0, 89.9999), 0.0002 * 3600),  # over the north pole
        ((45.0, -90.0), (300.0, -90.0), 0.0),  # the south pole has every RA
    ],
)
def test_distances_across_ra_zero_and_the_poles(con, a, b, arcsec):
    assert one(con, "SELECT sky_distance(?, ?, ?, ?)", *a, *b) == pytest.approx(arcsec, abs=1e-6)


def test_null_in_null_out(con):
    assert one(con, "SELECT cone(NULL, 1, 2, 3, 4)") is None
    assert one(con, "SELECT galactic_b(NULL, 1)") is None and one(con, "SELECT galactic_l(1, NULL)") is None
    assert one(con, "SELECT jd_to_iso(NULL)") is None


@settings(max_examples=200, deadline=None)
@given(RA, DEC)
def test_galactic_coordinates_are_astropys(con, ra, dec):
    g = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    assert one(con, "SELECT galactic_b(?, ?)", ra, dec) == pytest.approx(g.b.deg, abs=2e-5)
    if abs(g.b.deg) < 89.99:  # longitude is undefined at the Galactic poles
        dl = (one(con, "SELECT galactic_l(?, ?)", ra, dec) - g.l.deg + 180) % 360 - 180
        assert abs(dl) < 2e-5 / max(math.cos(math.radians(g.b.deg)), 1e-3)


@settings(max_examples=200, deadline=None)
@pytest.mark.filterwarnings("ignore:ERFA function")  # dates past the leap-second table: "dubious year"
@given(st.floats(2457754.5, 2470000.0))  # from 2017 on: no leap second in the range
def test_jd_to_iso_is_astropys_isot(con, jd):
    expected = datetime.fromisoformat(Time(jd, format="jd", scale="utc").isot)
    got = datetime.fromisoformat(one(con, "SELECT jd_to_iso(?)", jd))
    assert abs(got - expected) <= timedelta(milliseconds=1)
    mjd = jd - 2400000.5
    assert abs(datetime.fromisoformat(one(con, "SELECT mjd_to_iso(?)", mjd)) - expected) <= timedelta(milliseconds=1)


def test_a_real_ztf_time(con):
    assert one(con, "SELECT jd_to_iso(2458451.7528472)") == "2018-11-29T06:04:05.998"
