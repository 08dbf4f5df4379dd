"""A SIMULATOR of ZTF alerts, for machines without the real alert packets.

Nothing here is real data. :func:`simulated_alerts` invents schema-valid ZTF alerts so the demo
topics can be filled where ``genesis.demo.samples`` finds no real alerts (it then warns). Prefer
the real-derived sets of :mod:`genesis.demo.samples` whenever the data directory is present.

The alerts carry :data:`SCHEMA`, a faithful subset of the official ZTF 4.02 schema (``ztf.alert``):
the same names, types, unions and field order, minus the fields the simulator does not fill
(``fp_hists`` and most image-quality columns). Every simulated record validates against it.

What is simulated, per object:

- **asteroids** (``asteroid_fraction``, 30% by default, close to the real data): one detection,
  ``ssnamenr`` a minor-planet number, ``ssdistnr`` under 3 arcsec; the history holds only upper
  limits (a moving object is seen once at a place);
- **transients** (about half of the rest): a supernova-like rise and decline over tens of days
  in g and r, detections with magnitude errors, non-detections (upper limits, ``candid``,
  ``magpsf`` and ``isdiffpos`` null) before the rise and on bad nights; no star underneath;
- **variable stars**: a sinusoidal light curve on top of a catalogued point source
  (``distpsnr1`` < 1 arcsec, ``sgscore1`` ~ 1), positive and negative subtractions.

Non-asteroids have ``ssnamenr == 'null'`` (the string, as ZTF writes it). Cutouts are 63x63
float32 images (a Gaussian source on noise) as gzipped FITS, written by hand (a FITS file is
2880-byte blocks of 80-character header cards followed by big-endian data), so no astropy is
needed. Identifiers follow ZTF's layout (``pid`` from the exposure time, ``candid`` = ``pid``
followed by 6 digits) and ``objectId`` is ``ZTF`` + year + 7 letters starting with ``s`` (never a
real name), distinct for up to 26**6 alerts. Deterministic given ``seed``.
"""

from __future__ import annotations

import gzip
import math
import random
import struct
from collections.abc import Collection, Iterator
from typing import Any

__all__ = ["SCHEMA", "simulated_alerts", "fits_image"]

Record = dict[str, Any]

_NULL_FLOAT = ["null", "float"]
_NULL_DOUBLE = ["null", "double"]
_NULL_INT = ["null", "int"]
_NULL_LONG = ["null", "long"]
_NULL_STRING = ["null", "string"]

# (name, type) in ZTF 4.02 order; a field with a union type defaults to null, as in 4.02.
_CANDIDATE = [
    ("jd", "double"),
    ("fid", "int"),
    ("pid", "long"),
    ("diffmaglim", _NULL_FLOAT),
    ("programid", "int"),
    ("candid", "long"),
    ("isdiffpos", "string"),
    ("nid", _NULL_INT),
    ("rcid", _NULL_INT),
    ("field", _NULL_INT),
    ("ra", "double"),
    ("dec", "double"),
    ("magpsf", "float"),
    ("sigmapsf", "float"),
    ("distnr", _NULL_FLOAT),
    ("magnr", _NULL_FLOAT),
    ("sigmagnr", _NULL_FLOAT),
    ("rb", _NULL_FLOAT),
    ("ssdistnr", _NULL_FLOAT),
    ("ssmagnr", _NULL_FLOAT),
    ("ssnamenr", _NULL_STRING),
    ("ranr", "double"),
    ("decnr", "double"),
    ("sgscore1", _NULL_FLOAT),
    ("distpsnr1", _NULL_FLOAT),
    ("ndethist", "int"),
    ("ncovhist", "int"),
    ("jdstarthist", _NULL_DOUBLE),
    ("jdendhist", _NULL_DOUBLE),
    ("nmtchps", "int"),
    ("rfid", "long"),
    ("jdstartref", "double"),
    ("jdendref", "double"),
    ("nframesref", "int"),
    ("rbversion", "string"),
    ("nmatches", "int"),
    ("drb", _NULL_FLOAT),
    ("drbversion", "string"),
]
_PRV_CANDIDATE = [
    ("jd", "double"),
    ("fid", "int"),
    ("pid", "long"),
    ("diffmaglim", _NULL_FLOAT),
    ("programid", "int"),
    ("candid", _NULL_LONG),
    ("isdiffpos", _NULL_STRING),
    ("nid", _NULL_INT),
    ("rcid", _NULL_INT),
    ("field", _NULL_INT),
    ("ra", _NULL_DOUBLE),
    ("dec", _NULL_DOUBLE),
    ("magpsf", _NULL_FLOAT),
    ("sigmapsf", _NULL_FLOAT),
    ("rb", _NULL_FLOAT),
    ("ssnamenr", _NULL_STRING),
    ("rbversion", "string"),
]
# prv_candidate fields the official schema declares as unions without a default
_NO_DEFAULT = {"candid", "isdiffpos", "ra", "dec", "magpsf", "sigmapsf"}


def _fields(table: list[tuple[str, Any]], *, required: Collection[str] = ()) -> list[dict[str, Any]]:
    fields = []
    for name, kind in table:
        field: dict[str, Any] = {"name": name, "type": kind}
        if isinstance(kind, list) and name not in required:
            field["default"] = None
        fields.append(field)
    return fields


#: Writer schema of simulated alerts: a subset of ZTF 4.02 ``ztf.alert`` (see the module docstring).
SCHEMA: dict[str, Any] = {
    "namespace": "ztf",
    "type": "record",
    "name": "alert",
    "doc": "SIMULATED alerts (genesis.simulate): a subset of the ZTF 4.02 alert schema",
    "version": "4.02",
    "fields": [
        {"name": "schemavsn", "type": "string"},
        {"name": "publisher", "type": "string"},
        {"name": "objectId", "type": "string"},
        {"name": "candid", "type": "long"},
        {
            "name": "candidate",
            "type": {"type": "record", "name": "candidate", "namespace": "ztf.alert", "fields": _fields(_CANDIDATE)},
        },
        {
            "name": "prv_candidates",
            "type": [
                "null",
                {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "prv_candidate",
                        "namespace": "ztf.alert",
                        "fields": _fields(_PRV_CANDIDATE, required=_NO_DEFAULT),
                    },
                },
            ],
            "default": None,
        },
        {
            "name": "cutoutScience",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "cutout",
                    "namespace": "ztf.alert",
                    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
                },
            ],
            "default": None,
        },
        {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
        {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
    ],
}

_ZTF_EPOCH_JD = 2457754.5  # 2017-01-01: ZTF pids count 1e-5 day ticks from here
_START_JD = 2460676.5  # 2025-01-01
_FILTERS = (1, 2, 3)  # g, r, i
_FILTER_WEIGHTS = (0.45, 0.45, 0.10)
_CUTOUT_SIDE = 63


def fits_image(pixels: list[float], side: int) -> bytes:
    """A minimal FITS file holding one ``side`` x ``side`` float32 image (row-major ``pixels``)."""
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                  -32",
        "NAXIS   =                    2",
        f"NAXIS1  = {side:>20}",
        f"NAXIS2  = {side:>20}",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).encode("ascii")
    data = struct.pack(f">{side * side}f", *pixels)
    return header.ljust(-(-len(header) // 2880) * 2880, b" ") + data.ljust(-(-len(data) // 2880) * 2880, b"\0")


def _gaussian(width: float) -> list[float]:
    centre = (_CUTOUT_SIDE - 1) / 2
    return [
        math.exp(-((x - centre) ** 2 + (y - centre) ** 2) / (2 * width**2))
        for y in range(_CUTOUT_SIDE)
        for x in range(_CUTOUT_SIDE)
    ]


class _Stamps:
    """Cutouts from a few precomputed source profiles and noise fields (per-pixel random numbers are slow)."""

    def __init__(self, rng: random.Random) -> None:
        self.profiles = [_gaussian(width) for width in (1.2, 1.5, 1.8, 2.2)]
        self.noise = [[rng.gauss(0, 5) for _ in range(_CUTOUT_SIDE**2)] for _ in range(8)]

    def cutout(self, rng: random.Random, name: str, flux: float) -> dict[str, Any]:
        profile, noise = rng.choice(self.profiles), rng.choice(self.noise)
        pixels = [flux * p + n for p, n in zip(profile, noise)]
        return {
            "fileName": name,
            "stampData": gzip.compress(fits_image(pixels, _CUTOUT_SIDE), compresslevel=1, mtime=0),
        }


def _light_curve(kind: str, rng: random.Random, t: float, peak_jd: float, base: float, period: float) -> float:
    """Magnitude at time ``t`` (smaller is brighter)."""
    if kind == "transient":
        days = t - peak_jd
        return base + (0.02 * days**2 if days < 0 else 0.03 * days)
    return base + 0.4 * math.sin(2 * math.pi * t / period)


class _Simulator:
    def __init__(self, seed: int, asteroid_fraction: float) -> None:
        self.rng = random.Random(seed)
        self.asteroid_fraction = asteroid_fraction
        self.jd = _START_JD + 0.15
        self.stamps = _Stamps(self.rng)

    def ids(self, jd: float, rcid: int, serial: int) -> tuple[int, int]:
        pid = int((jd - _ZTF_EPOCH_JD) * 1e5) * 10**4 + rcid * 100 + 15
        return pid, pid * 10**6 + serial

    def row(
        self,
        jd: float,
        fid: int,
        rcid: int,
        serial: int,
        mag: float | None,
        limit: float,
        ra: float,
        dec: float,
        ssnamenr: str | None,
    ) -> Record:
        pid, candid = self.ids(jd, rcid, serial)
        detected = mag is not None and mag < limit
        return {
            "jd": jd,
            "fid": fid,
            "pid": pid,
            "diffmaglim": limit,
            "programid": 1,
            "candid": candid if detected else None,
            "isdiffpos": ("t" if detected else None),
            "nid": int(jd - _ZTF_EPOCH_JD),
            "rcid": rcid,
            "field": 600 + rcid,
            "ra": ra if detected else None,
            "dec": dec if detected else None,
            "magpsf": mag if detected else None,
            "sigmapsf": self.sigma(mag, limit) if detected and mag is not None else None,
            "rb": self.rng.uniform(0.6, 1.0) if detected else None,
            "ssnamenr": ssnamenr if detected else None,
            "rbversion": "t17_f5_c3",
        }

    def sigma(self, mag: float, limit: float) -> float:
        return max(0.02, 0.2 * 10 ** (0.4 * (mag - limit + 1.5)))

    def alert(self, index: int) -> Record:
        rng = self.rng
        self.jd += rng.uniform(1, 60) / 86400  # alerts arrive seconds apart
        kind = "asteroid" if rng.random() < self.asteroid_fraction else rng.choice(("transient", "variable"))
        ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-0.5, 1)))
        rcid, fid = rng.randrange(64), rng.choices(_FILTERS, _FILTER_WEIGHTS)[0]
        base, period = rng.uniform(15.5, 19.5), rng.uniform(0.3, 30)
        peak = self.jd + rng.uniform(-30, 15)
        ssnamenr = str(rng.randrange(1, 600_000)) if kind == "asteroid" else None

        history = []
        for night in sorted(rng.sample(range(1, 31), rng.randrange(3, 20)), reverse=True):
            jd = self.jd - night + rng.uniform(-0.05, 0.05)
            limit = rng.gauss(20.3, 0.4)
            mag = None if kind == "asteroid" or rng.random() < 0.1 else _light_curve(kind, rng, jd, peak, base, period)
            history.append(
                self.row(jd, rng.choice(_FILTERS[:2]), rcid, rng.randrange(10**6), mag, limit, ra, dec, None)
            )
        limit = rng.gauss(20.5, 0.3)
        mag = min(_light_curve(kind, rng, self.jd, peak, base, period), limit - 0.5)
        now = self.row(self.jd, fid, rcid, index % 10**6, mag, limit, ra, dec, ssnamenr)
        detections = [row["jd"] for row in history if row["candid"] is not None] + [self.jd]
        star = kind == "variable"
        candidate = {
            **now,
            "isdiffpos": "t" if kind != "variable" or rng.random() < 0.5 else "f",
            "distnr": rng.uniform(0, 0.5) if star else None,
            "magnr": base + 0.5 if star else None,
            "sigmagnr": 0.03 if star else None,
            "ssdistnr": rng.uniform(0, 3) if ssnamenr else -999.0,
            "ssmagnr": mag + rng.gauss(0, 0.2) if ssnamenr else -999.0,
            "ssnamenr": ssnamenr or "null",
            "ranr": ra,
            "decnr": dec,
            "sgscore1": rng.uniform(0.9, 1) if star else rng.uniform(0, 0.3),
            "distpsnr1": rng.uniform(0, 0.8) if star else rng.uniform(2, 30),
            "ndethist": len(detections),
            "ncovhist": len(history) + 1,
            "jdstarthist": min(detections),
            "jdendhist": max(detections),
            "nmtchps": rng.randrange(1, 12),
            "rfid": 600_000_000 + rcid,
            "jdstartref": 2458150.5,
            "jdendref": 2458300.5,
            "nframesref": 15,
            "nmatches": rng.randrange(100, 2000),
            "drb": rng.uniform(0.7, 1.0),
            "drbversion": "d6_m7",
        }
        for key in ("programid", "candid", "isdiffpos", "rb", "rbversion"):
            candidate.setdefault(key, now[key])
        flux = 10 ** (0.4 * (22 - mag))
        letters = "".join("abcdefghijklmnopqrstuvwxyz"[(index * 7919) // 26**k % 26] for k in range(5, -1, -1))
        year = 2025 + int((self.jd - _START_JD) // 365.25)
        return {
            "schemavsn": "4.02",
            "publisher": "genesis.simulate (SIMULATED)",
            "objectId": f"ZTF{year % 100:02d}s" + letters,
            "candid": candidate["candid"],
            "candidate": candidate,
            "prv_candidates": history,
            "cutoutScience": self.stamps.cutout(rng, f"candid{candidate['candid']}_sci.fits.gz", flux + 300),
            "cutoutTemplate": self.stamps.cutout(rng, f"candid{candidate['candid']}_ref.fits.gz", 300 if star else 0),
            "cutoutDifference": self.stamps.cutout(rng, f"candid{candidate['candid']}_diff.fits.gz", flux),
        }


def simulated_alerts(
    n: int, *, seed: int = 0, asteroid_fraction: float = 0.3
) -> Iterator[tuple[dict[str, Any], Record]]:
    """Yield ``n`` SIMULATED ZTF alerts as ``(SCHEMA, record)`` pairs, deterministic given ``seed``.

    Distinct ``candid`` values (the serial part counts alerts); see the module docstring for the
    light curves, asteroid share and cutouts.
    """
    if n > 10**6:
        raise ValueError("at most 10**6 simulated alerts per run (candid serial digits)")
    simulator = _Simulator(seed, asteroid_fraction)
    for index in range(n):
        yield SCHEMA, simulator.alert(index)
