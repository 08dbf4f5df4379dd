"""Looking at one alert, whatever the survey: its light curve, cutouts and a one-line summary.

Works on the plain dicts genesis yields, for ZTF (``candidate`` + ``prv_candidates``) and
Rubin/LSST (``diaSource`` + ``prvDiaSources`` + ``prvDiaForcedSources``) packets::

    from genesis import alerts

    print(alerts.summary(alert))            # one line a human can scan
    df = alerts.lightcurve(alert)           # pandas DataFrame, one row per measurement
    alerts.plot_lightcurve(alert)           # matplotlib figure
    alerts.plot_cutouts(alert)              # science, template, difference
    images = alerts.cutouts(alert)          # {"science": ndarray, ...}

pandas, numpy, matplotlib and astropy are imported inside the functions that need them,
so ``import genesis`` stays light for consumers that never draw anything.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import numpy as np
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "survey",
    "alert_id",
    "alert_mjd",
    "lightcurve",
    "cutouts",
    "plot_lightcurve",
    "plot_cutouts",
    "summary",
    "key_fields",
    "jsonable",
    "to_json",
    "LSST_ZEROPOINT",
    "LIGHTCURVE_COLUMNS",
]

#: AB magnitude of a flux of 1 nJy: m = 31.4 - 2.5 log10(flux / nJy)
LSST_ZEROPOINT = 31.4
#: signal to noise below which an LSST forced measurement counts as an upper limit (at 5 sigma)
FORCED_DETECTION_SNR = 5.0
ZTF_FILTERS = {1: "g", 2: "r", 3: "i"}
#: colours of the filters in plots (ZTF g, r, i; LSST u, g, r, i, z, y)
FILTER_COLORS = {"u": "#56b4e9", "g": "#009e73", "r": "#d55e00", "i": "#e69f00", "z": "#cc79a7", "y": "#444444"}
CUTOUTS = ("science", "template", "difference")

LIGHTCURVE_COLUMNS = [
    "mjd",
    "days_ago",
    "filter",
    "mag",
    "mag_err",
    "is_upper_limit",
    "source",
    "id",
    "flux",
    "flux_err",
]
_JD_MINUS_MJD = 2400000.5
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)
# Rubin times are TAI; TAI - UTC has been 37 s since 2017 (no leap second announced since).
_TAI_MINUS_UTC = timedelta(seconds=37)
_MAG_PER_LN = 2.5 / math.log(10)


# ---------------------------------------------------------------------------------------- identity
def survey(alert: dict) -> str:
    """``"ztf"`` or ``"lsst"``, from the packet's shape (``candidate`` or ``diaSource``)."""
    if alert.get("candidate") is not None:
        return "ztf"
    if alert.get("diaSource") is not None:
        return "lsst"
    raise ValueError(
        "not a ZTF or LSST alert: it has neither 'candidate' nor 'diaSource' "
        f"(top-level fields: {', '.join(sorted(alert)[:12])})"
    )


def alert_id(alert: dict) -> int:
    """The alert's own id: ZTF ``candid``, LSST ``diaSourceId``."""
    return alert["candid"] if survey(alert) == "ztf" else alert["diaSourceId"]


def alert_mjd(alert: dict) -> float:
    """When the alert's detection was observed, as MJD (ZTF: UTC-based ``jd``; LSST: ``midpointMjdTai``)."""
    if survey(alert) == "ztf":
        return alert["candidate"]["jd"] - _JD_MINUS_MJD
    return alert["diaSource"]["midpointMjdTai"]


def _utc(alert: dict) -> datetime:
    when = _MJD_EPOCH + timedelta(days=alert_mjd(alert))
    return when - _TAI_MINUS_UTC if survey(alert) == "lsst" else when


# ---------------------------------------------------------------------------------------- light curves
def _flux_mag(flux: float | None, err: float | None) -> tuple[float, float]:
    """AB magnitude and its error from a flux in nJy; NaN where the flux is not positive."""
    if flux is None or not flux > 0:
        return math.nan, math.nan
    mag = LSST_ZEROPOINT - 2.5 * math.log10(flux)
    return mag, (_MAG_PER_LN * err / flux if err is not None else math.nan)


def _limit_mag(err: float | None) -> float:
    """The 5-sigma upper limit (AB mag) of a measurement with flux error ``err`` nJy."""
    return LSST_ZEROPOINT - 2.5 * math.log10(FORCED_DETECTION_SNR * err) if err and err > 0 else math.nan


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _ztf_rows(alert: dict) -> list[dict]:
    rows = []
    history = alert.get("prv_candidates") or []
    for source, entries in (("alert", [alert["candidate"]]), ("previous", history)):
        for c in entries:
            if c.get("jd") is None:
                continue
            upper = c.get("magpsf") is None
            rows.append(
                {
                    "mjd": c["jd"] - _JD_MINUS_MJD,
                    "filter": ZTF_FILTERS.get(c.get("fid"), str(c.get("fid"))),
                    "mag": _nan(c.get("diffmaglim") if upper else c["magpsf"]),
                    "mag_err": math.nan if upper else _nan(c.get("sigmapsf")),
                    "is_upper_limit": upper,
                    "source": source,
                    "id": c.get("candid"),
                    "flux": math.nan,
                    "flux_err": math.nan,
                }
            )
    return rows


def _lsst_rows(alert: dict) -> list[dict]:
    rows = []
    parts = (
        ("alert", [alert["diaSource"]], "diaSourceId"),
        ("previous", alert.get("prvDiaSources") or [], "diaSourceId"),
        ("forced", alert.get("prvDiaForcedSources") or [], "diaForcedSourceId"),
    )
    for source, entries, id_field in parts:
        for s in entries:
            flux, err = s.get("psfFlux"), s.get("psfFluxErr")
            # forced photometry is measured whether or not anything is there: faint ones are limits
            upper = source == "forced" and not (flux is not None and err and flux / err >= FORCED_DETECTION_SNR)
            mag, mag_err = (_limit_mag(err), math.nan) if upper else _flux_mag(flux, err)
            rows.append(
                {
                    "mjd": s["midpointMjdTai"],
                    "filter": s.get("band") or "?",
                    "mag": mag,
                    "mag_err": mag_err,
                    "is_upper_limit": upper,
                    "source": source,
                    "id": s.get(id_field),
                    "flux": _nan(flux),
                    "flux_err": _nan(err),
                }
            )
    return rows


def lightcurve(alert: dict) -> pd.DataFrame:
    """The alert's measurements as a DataFrame, oldest first, one row per measurement.

    Columns (:data:`LIGHTCURVE_COLUMNS`): ``mjd``; ``days_ago`` (before this alert's own
    detection, so 0 for it and positive for the past); ``filter`` (ZTF fid 1/2/3 as g/r/i,
    LSST ``band``); ``mag`` and ``mag_err`` (AB); ``is_upper_limit``; ``source`` (``alert``,
    ``previous`` or, LSST only, ``forced``); ``id`` (candid / diaSourceId / diaForcedSourceId);
    ``flux`` and ``flux_err`` (LSST ``psfFlux`` in nJy, NaN for ZTF).

    ZTF: ``candidate`` and every ``prv_candidates`` row with a time; rows whose ``magpsf`` is
    None are upper limits at ``diffmaglim``. LSST: ``diaSource``, ``prvDiaSources`` and
    ``prvDiaForcedSources``, mag = 31.4 - 2.5 log10(psfFlux / nJy) (NaN for negative difference
    flux); forced measurements below 5 sigma are upper limits at 5 x ``psfFluxErr``.
    """
    import pandas as pd

    rows = _ztf_rows(alert) if survey(alert) == "ztf" else _lsst_rows(alert)
    df = pd.DataFrame(rows, columns=[c for c in LIGHTCURVE_COLUMNS if c != "days_ago"])
    df.insert(1, "days_ago", alert_mjd(alert) - df["mjd"])
    df["is_upper_limit"] = df["is_upper_limit"].astype(bool)
    df["id"] = pd.array([r["id"] for r in rows], dtype="Int64")  # 19-digit ids do not survive float64
    return df.sort_values("mjd", kind="stable").reset_index(drop=True)


def plot_lightcurve(alert: dict, ax: Axes | None = None) -> Figure:
    """Draw the light curve: one colour per filter, magnitudes increasing downwards, detections
    with error bars, upper limits as open downward triangles. Returns the figure."""
    import matplotlib.pyplot as plt

    df = lightcurve(alert)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for band in sorted(df["filter"].unique(), key=lambda b: "ugrizy".find(b) if b in "ugrizy" else 9):
        color = FILTER_COLORS.get(band, "gray")
        rows = df[(df["filter"] == band) & df["mag"].notna()]
        det, lim = rows[~rows["is_upper_limit"]], rows[rows["is_upper_limit"]]
        ax.errorbar(
            -det["days_ago"],
            det["mag"],
            yerr=det["mag_err"].fillna(0),
            fmt="o",
            color=color,
            ms=5,
            capsize=0,
            label=f"{band} ({len(det)})",
        )
        if len(lim):
            ax.scatter(
                -lim["days_ago"],
                lim["mag"],
                marker="v",
                facecolors="none",
                edgecolors=color,
                s=30,
                alpha=0.7,
                label=f"{band} limits ({len(lim)})",
            )
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xlabel("days relative to this alert")
    ax.set_ylabel("magnitude (AB)" if survey(alert) == "lsst" else "difference magnitude")
    ax.set_title(_title(alert), fontsize="medium")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    figure = ax.get_figure(root=True)
    assert figure is not None  # the axes were made on (or given with) a figure
    return figure


# ---------------------------------------------------------------------------------------- cutouts
def _cutout_bytes(value: Any) -> bytes | None:
    # ZTF: {"fileName": ..., "stampData": gzipped FITS}; LSST: the FITS bytes themselves
    if isinstance(value, dict):
        value = value.get("stampData")
    return value or None


def _read_fits(data: bytes) -> tuple[np.ndarray, Any]:
    """The first 2-D image of a (possibly gzipped) FITS file, as float array, and its header."""
    import warnings

    import numpy as np
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # Rubin writes a slightly non-standard SIMPLE card
        with fits.open(io.BytesIO(data), memmap=False) as hdus:
            for hdu in hdus:
                if hdu.data is not None and getattr(hdu.data, "ndim", 0) == 2:
                    return np.array(hdu.data, dtype=float), hdu.header.copy()
    raise ValueError("the cutout holds no 2-D image")


def _cutout_images(alert: dict) -> dict[str, tuple[np.ndarray, Any]]:
    found = {}
    for name in CUTOUTS:
        data = _cutout_bytes(alert.get("cutout" + name.capitalize()))
        if data is not None:
            found[name] = _read_fits(data)
    return found


def cutouts(alert: dict) -> dict[str, np.ndarray]:
    """The cutouts present in the alert, ``{"science"|"template"|"difference": 2-D float array}``.

    Arrays are as stored (FITS order: row 0 is the bottom); ZTF stamps are gzipped FITS,
    LSST ones plain FITS (the image HDU; variance and PSF planes are left out).
    """
    return {name: image for name, (image, _) in _cutout_images(alert).items()}


def _sky_matrix(header: Any) -> np.ndarray:
    """2x2 matrix from pixel offsets to (west, north) on the sky, from the header's WCS.

    ZTF stamps carry no WCS: IPAC orients every ZTF image north up, east left in FITS order,
    which is the identity here.
    """
    import numpy as np

    if "PC1_1" in header or "CD1_1" in header:
        pre = "CD" if "CD1_1" in header else "PC"
        m = np.array([[header.get(f"{pre}{i}_{j}", float(i == j)) for j in (1, 2)] for i in (1, 2)], float)
        if pre == "PC":
            m = np.diag([header.get("CDELT1", 1.0), header.get("CDELT2", 1.0)]) @ m
        # FITS intermediate coordinates grow to the east; plots want east on the left
        m = np.diag([-1.0, 1.0]) @ m
        return m / np.sqrt(abs(np.linalg.det(m)))
    return np.eye(2)


def plot_cutouts(alert: dict, fig: Figure | None = None) -> Figure:
    """Science, template and difference side by side, asinh stretch, north up and east left
    (rotated with the cutout's WCS where it has one). Draws into ``fig`` (a figure or subfigure)
    when given, else a new figure; returns it."""
    import matplotlib.pyplot as plt
    import numpy as np
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval
    from matplotlib.transforms import Affine2D

    images = _cutout_images(alert)
    if fig is None:
        fig = plt.figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, len(CUTOUTS))
    for ax, name in zip(axes, CUTOUTS):
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        if name not in images:
            ax.text(0.5, 0.5, "not in the alert", ha="center", va="center", transform=ax.transAxes)
            continue
        image, header = images[name]
        finite = image[np.isfinite(image)]
        norm = ImageNormalize(
            finite if finite.size else [0, 1], interval=PercentileInterval(99.5), stretch=AsinhStretch()
        )
        ny, nx = image.shape
        m = _sky_matrix(header)
        cx, cy = (nx - 1) / 2, (ny - 1) / 2
        matrix = np.eye(3)
        matrix[:2, :2] = m
        matrix[:2, 2] = -m @ [cx, cy]
        to_sky = Affine2D(matrix)
        im = ax.imshow(image, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
        im.set_transform(to_sky + ax.transData)
        corners = to_sky.transform([[-0.5, -0.5], [nx - 0.5, -0.5], [-0.5, ny - 0.5], [nx - 0.5, ny - 0.5]])
        half = np.abs(corners).max()
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{nx}x{ny} px", fontsize="small")
    _compass(axes[0])
    fig.suptitle(_title(alert), fontsize="medium")
    return fig


def _compass(ax: Axes) -> None:
    """North and east arrows in the corner of a north-up, east-left image."""
    origin = (0.25, 0.72)
    for label, tip in (("N", (0.25, 0.95)), ("E", (0.04, 0.72))):
        ax.annotate(
            "", xy=tip, xytext=origin, xycoords="axes fraction", arrowprops={"arrowstyle": "->", "color": "yellow"}
        )
        ax.text(*tip, label, transform=ax.transAxes, color="yellow", ha="center", va="bottom", fontsize="small")


# ---------------------------------------------------------------------------------------- text
def _sso_name(alert: dict) -> str | None:
    """The known solar-system object near the alert, if any (ZTF writes the string 'null' for none)."""
    if survey(alert) == "ztf":
        name = alert["candidate"].get("ssnamenr")
        return None if name in (None, "null") else str(name)
    for record, field in (
        ("ssSource", "designation"),
        ("mpc_orbits", "designation"),
        ("MPCORB", "mpcDesignation"),
        ("ssObject", "designation"),
    ):
        value = (alert.get(record) or {}).get(field)
        if value:
            return str(value)
    ss_id = (alert.get("ssSource") or {}).get("ssObjectId") or alert["diaSource"].get("ssObjectId")
    return f"ssObjectId {ss_id}" if ss_id else None


def _title(alert: dict) -> str:
    if survey(alert) == "ztf":
        return f"{alert.get('objectId')}  candid {alert['candid']}"
    return f"diaObject {alert['diaSource'].get('diaObjectId')}  diaSource {alert['diaSourceId']}"


def _fmt(value: Any, spec: str) -> str:
    return "?" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def summary(alert: dict) -> str:
    """One line to scan: survey, id, object, UTC time (ISO), ra/dec, filter=mag±err, asteroid name."""
    when = _utc(alert).strftime("%Y-%m-%dT%H:%M:%S")
    if survey(alert) == "ztf":
        c = alert["candidate"]
        band = ZTF_FILTERS.get(c.get("fid"), "?")
        head = f"ZTF  {alert['candid']}  {alert.get('objectId')}"
        mag = f"{band}={_fmt(c.get('magpsf'), '.2f')}±{_fmt(c.get('sigmapsf'), '.2f')}"
    else:
        c = alert["diaSource"]
        band = c.get("band") or "?"
        m, e = _flux_mag(c.get("psfFlux"), c.get("psfFluxErr"))
        head = f"LSST {alert['diaSourceId']}  diaObject {c.get('diaObjectId')}"
        mag = (
            f"{band}={_fmt(m, '.2f')}±{_fmt(e, '.2f')}"
            if not math.isnan(m)
            else f"{band} psfFlux={_fmt(c.get('psfFlux'), '.0f')}±{_fmt(c.get('psfFluxErr'), '.0f')} nJy"
        )
    line = f"{head}  {when}  ra={_fmt(c.get('ra'), '.5f')} dec={_fmt(c.get('dec'), '+.5f')}  {mag}"
    sso = _sso_name(alert)
    return f"{line}  asteroid={sso}" if sso else line


def key_fields(alert: dict) -> dict[str, Any]:
    """The fields a person looks at first, by name, for ``genesis show`` and notebooks."""
    lc = lightcurve(alert)
    n_limits = int(lc["is_upper_limit"].sum())
    history = {"detections": len(lc) - n_limits, "upper limits": n_limits}
    fields: dict[str, Any]
    if survey(alert) == "ztf":
        c = alert["candidate"]
        fields = {
            "survey": "ZTF",
            "schema": alert.get("schemavsn"),
            "objectId": alert.get("objectId"),
            "candid": alert["candid"],
            "time (UTC)": _utc(alert).isoformat(timespec="seconds"),
            "jd": c.get("jd"),
            "ra": c.get("ra"),
            "dec": c.get("dec"),
            "filter": ZTF_FILTERS.get(c.get("fid"), c.get("fid")),
            "magpsf": c.get("magpsf"),
            "sigmapsf": c.get("sigmapsf"),
            "diffmaglim": c.get("diffmaglim"),
            "isdiffpos": c.get("isdiffpos"),
            "rb": c.get("rb"),
            "drb": c.get("drb"),
            "ssnamenr": c.get("ssnamenr"),
            "ssdistnr": c.get("ssdistnr"),
            "distpsnr1": c.get("distpsnr1"),
            "sgscore1": c.get("sgscore1"),
            "ndethist": c.get("ndethist"),
        }
    else:
        c = alert["diaSource"]
        mag, err = _flux_mag(c.get("psfFlux"), c.get("psfFluxErr"))
        fields = {
            "survey": "LSST",
            "diaSourceId": alert["diaSourceId"],
            "diaObjectId": c.get("diaObjectId"),
            "time (UTC)": _utc(alert).isoformat(timespec="seconds"),
            "midpointMjdTai": c.get("midpointMjdTai"),
            "ra": c.get("ra"),
            "dec": c.get("dec"),
            "band": c.get("band"),
            "psfFlux (nJy)": c.get("psfFlux"),
            "psfFluxErr (nJy)": c.get("psfFluxErr"),
            "mag (AB)": None if math.isnan(mag) else round(mag, 3),
            "mag err": None if math.isnan(err) else round(err, 3),
            "snr": c.get("snr"),
            "reliability": c.get("reliability"),
            "isNegative": c.get("isNegative"),
            "asteroid": _sso_name(alert),
        }
    fields["light curve"] = history
    fields["cutouts"] = [n for n in CUTOUTS if _cutout_bytes(alert.get("cutout" + n.capitalize()))]
    return fields


def jsonable(value: Any, *, drop_bytes: bool = False) -> Any:
    """``value`` made fit for ``json.dumps`` with ``allow_nan=False``: bytes (the cutouts) as
    base64 text (or left out with ``drop_bytes``), NaN and infinities as None."""
    if isinstance(value, dict):
        return {
            k: jsonable(v, drop_bytes=drop_bytes)
            for k, v in value.items()
            if not (drop_bytes and isinstance(v, (bytes, bytearray)))
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v, drop_bytes=drop_bytes) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # datetimes by _json_default: isoformat


def to_json(value: Any, *, drop_bytes: bool = False) -> str:
    """``json.dumps(jsonable(value, drop_bytes=...))``, 10x faster: orjson writes it (NaN and infinities
    as null, bytes as base64 through its ``default``); with ``drop_bytes`` the bytes fields of dicts are
    written as a marker first and cut out of the text. An integer beyond 64 bits (which orjson
    refuses) or bytes in a list with ``drop_bytes`` go the slow way. ``genesis consume --format json``
    and webhooks write this."""
    try:
        if not drop_bytes:
            return orjson.dumps(value, default=_json_default, option=_ORJSON).decode()
        text = orjson.dumps(value, default=_marked_bytes, option=_ORJSON).decode()
        text = _cut_marked(text)
        if _MARK not in text:
            return text
    except TypeError:  # orjson.JSONEncodeError: an integer it cannot write, a type it does not know
        pass
    return json.dumps(jsonable(value, drop_bytes=drop_bytes), allow_nan=False)


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # datetimes by _json_default: isoformat
#: what a bytes value is written as before ``drop_bytes`` cuts its field out (as orjson escapes it)
_MARK = "\\u0000genesis:bytes\\u0000"
_FIELD_END = f':"{_MARK}"'


def _cut_marked(text: str) -> str:
    """``text`` without the ``"key":"<mark>"`` fields of :func:`_marked_bytes` (and one comma each)."""
    parts, pos = [], 0
    while (at := text.find(_FIELD_END, pos)) != -1:
        start = at - 2  # the key is the JSON string that ends at text[at - 1]: find where it opens
        while True:
            start = text.rfind('"', 0, start + 1)
            before = start - 1
            while before >= 0 and text[before] == "\\":
                before -= 1
            if (start - 1 - before) % 2 == 0:  # an even number of backslashes: the quote is not escaped
                break
            start -= 1
        end = at + len(_FIELD_END)
        if text[start - 1] == "," and start - 1 >= pos:  # (a comma cut with the field before is gone)
            start -= 1
        elif text[end] == ",":
            end += 1
        parts.append(text[pos:start])
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _marked_bytes(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "\x00genesis:bytes\x00"
    return _json_default(value)
