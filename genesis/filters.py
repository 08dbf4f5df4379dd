"""Ready-made alert filters: importable, picklable, usable with ``stream(filter=..., pool=...)``.

A filter takes an alert (dict) and returns ``None``/``False`` to drop it, ``True``
or the alert to keep it, or any other value to yield that instead. Each one here is a
:class:`genesis.Filter` that declares the top-level fields it reads, so genesis decodes an
alert only as far as those before filtering it (the kept ones are then decoded whole).
"""

from __future__ import annotations

import math
from typing import Any

from ._fields import Filter


def _no_sso(name: Any) -> bool:
    # ZTF writes the string 'null' when no solar-system object is near; history rows use real None.
    return name is None or name == "null"


def _asteroids(alert: dict) -> dict | None:
    """The notebook's asteroid filter: keep alerts with a known solar-system object nearby."""
    if not _no_sso(alert["candidate"]["ssnamenr"]):
        return alert
    return None


filter_asteroids = Filter(_asteroids, fields=("candidate",), name="filter_asteroids")


def _transient(alert: dict) -> dict | None:
    """E. C. Bellm's transient filter from the demo notebook (intentionally pandas-heavy, and slow).

    Keeps positive subtractions with no point-source counterpart, detected at least
    twice at least 30 minutes apart, and not near a known solar-system object.
    """
    import numpy as np
    import pandas as pd

    if alert["prv_candidates"] is None:
        return None
    dflc = pd.DataFrame([alert["candidate"]] + alert["prv_candidates"])
    candidate = dflc.loc[0]

    is_positive_sub = candidate["isdiffpos"] == "t"
    if (candidate["distpsnr1"] is None) or (candidate["distpsnr1"] > 1.5):
        no_pointsource_counterpart = True
    else:
        no_pointsource_counterpart = candidate["sgscore1"] < 0.5

    where_detected = dflc["isdiffpos"] == "t"
    if np.sum(where_detected) >= 2:
        detection_times = dflc.loc[where_detected, "jd"].values
        not_moving = np.max(np.diff(detection_times)) >= 30.0 / (24 * 60)  # 30 minutes in days
    else:
        not_moving = False

    no_ssobject = (candidate["ssdistnr"] is None) or (candidate["ssdistnr"] < 0) or (candidate["ssdistnr"] > 5)

    if is_positive_sub and no_pointsource_counterpart and not_moving and no_ssobject:
        return alert
    return None


is_transient = Filter(_transient, fields=("candidate", "prv_candidates"), name="is_transient")


class brighter_than(Filter):
    """Keep ZTF alerts whose difference magnitude ``candidate.magpsf`` is below ``mag``."""

    def __init__(self, mag: float) -> None:
        self.mag = mag
        super().__init__(self._check, fields=("candidate",), name=type(self).__name__)

    def _check(self, alert: dict) -> dict | None:
        m = alert["candidate"].get("magpsf")
        return alert if m is not None and m < self.mag else None


class real_bogus_above(Filter):
    """Keep ZTF alerts whose real-bogus score (``drb`` where present, else ``rb``) is at least ``score``."""

    def __init__(self, score: float) -> None:
        self.score = score
        super().__init__(self._check, fields=("candidate",), name=type(self).__name__)

    def _check(self, alert: dict) -> dict | None:
        c = alert["candidate"]
        rb = c.get("drb") if c.get("drb") is not None else c.get("rb")
        return alert if rb is not None and rb >= self.score else None


class within(Filter):
    """Keep alerts within ``radius_deg`` of (``ra``, ``dec``) in degrees (ZTF ``candidate`` or LSST ``diaSource``)."""

    def __init__(self, ra: float, dec: float, radius_deg: float) -> None:
        self.ra, self.dec, self.radius = ra, dec, radius_deg
        self._cos_r = math.cos(math.radians(radius_deg))
        super().__init__(self._check, fields=("candidate", "diaSource"), name=type(self).__name__)

    def _check(self, alert: dict) -> dict | None:
        src = alert.get("candidate") or alert.get("diaSource") or {}
        ra, dec = src.get("ra"), src.get("dec")
        if ra is None or dec is None:
            return None
        d1, d2 = math.radians(self.dec), math.radians(dec)
        cos_sep = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(math.radians(ra - self.ra))
        return alert if cos_sep >= self._cos_r else None
