"""genesis.alerts on real ZTF and LSST packets: light curves against the raw records, cutouts, plots, text."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from genesis import alerts
from genesis._codecs import decode_file

ZTF_FILE = "ztf/raw/fink-client/ZTF19acihgng.avro"
LSST_FILE = "lsst/real_fink/part-2-918301.avro"


@pytest.fixture(scope="module")
def ztf(data_dir: Path) -> dict:
    return decode_file(data_dir / ZTF_FILE)[0]


@pytest.fixture(scope="module")
def lsst(data_dir: Path) -> dict:
    # the alert with the most history: detections, forced photometry and upper limits
    return max(decode_file(data_dir / LSST_FILE), key=lambda a: len(a["prvDiaSources"] or []))


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_survey_and_ids(ztf: dict, lsst: dict) -> None:
    assert alerts.survey(ztf) == "ztf" and alerts.alert_id(ztf) == ztf["candid"]
    assert alerts.survey(lsst) == "lsst" and alerts.alert_id(lsst) == lsst["diaSourceId"]
    with pytest.raises(ValueError):
        alerts.survey({"foo": 1})


def test_ztf_lightcurve_matches_the_record(ztf: dict) -> None:
    lc = alerts.lightcurve(ztf)
    history = ztf["prv_candidates"]
    assert len(lc) == 1 + len(history)
    assert lc["is_upper_limit"].sum() == sum(p["magpsf"] is None for p in history)
    assert list(lc.columns) == alerts.LIGHTCURVE_COLUMNS
    now = lc[lc["source"] == "alert"].iloc[0]
    assert now["days_ago"] == 0 and now["mag"] == ztf["candidate"]["magpsf"] and now["id"] == ztf["candid"]
    assert now["filter"] == {1: "g", 2: "r", 3: "i"}[ztf["candidate"]["fid"]]
    limits = lc[lc["is_upper_limit"]]
    assert limits["mag_err"].isna().all()
    assert sorted(limits["mag"]) == sorted(p["diffmaglim"] for p in history if p["magpsf"] is None)
    assert (lc["days_ago"] >= 0).all() and lc["mjd"].is_monotonic_increasing


def test_lsst_lightcurve_matches_the_record(lsst: dict) -> None:
    lc = alerts.lightcurve(lsst)
    forced = lsst["prvDiaForcedSources"]
    assert len(lc) == 1 + len(lsst["prvDiaSources"]) + len(forced)
    faint = sum(
        not (f["psfFlux"] is not None and f["psfFluxErr"] and f["psfFlux"] / f["psfFluxErr"] >= 5) for f in forced
    )
    assert faint > 0 and lc["is_upper_limit"].sum() == faint
    assert set(lc["source"]) == {"alert", "previous", "forced"}
    src = lsst["diaSource"]
    now = lc[lc["source"] == "alert"].iloc[0]
    assert now["filter"] == src["band"] and now["days_ago"] == 0
    assert now["mag"] == pytest.approx(31.4 - 2.5 * math.log10(src["psfFlux"]))
    negative = lc[(lc["flux"] <= 0) & ~lc["is_upper_limit"]]
    assert negative["mag"].isna().all()  # no magnitude for a negative difference flux


def test_cutouts(ztf: dict, lsst: dict) -> None:
    z = alerts.cutouts(ztf)
    assert set(z) == {"science", "template", "difference"}
    assert all(img.shape == (63, 63) for img in z.values())
    x = alerts.cutouts(lsst)
    assert set(x) == {"science", "template", "difference"}
    assert all(img.ndim == 2 and img.shape[0] > 10 for img in x.values())


@pytest.mark.parametrize("which", ["ztf", "lsst"])
def test_plots_render(which: str, ztf: dict, lsst: dict, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    alert = ztf if which == "ztf" else lsst
    fig = alerts.plot_lightcurve(alert)
    ax = fig.axes[0]
    assert ax.yaxis_inverted()
    from matplotlib.collections import PathCollection

    lc = alerts.lightcurve(alert).dropna(subset=["mag"])
    detections = sum(len(line.get_xdata()) for line in ax.lines if line.get_marker() == "o")
    limits = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert (detections, limits) == ((~lc["is_upper_limit"]).sum(), lc["is_upper_limit"].sum())
    fig.savefig(tmp_path / "lc.png", dpi=100)
    plt.close(fig)
    assert png_size(tmp_path / "lc.png") == (700, 400)

    fig = alerts.plot_cutouts(alert)
    assert [a.get_title() for a in fig.axes] == ["science", "template", "difference"]
    assert all(a.images for a in fig.axes)
    fig.savefig(tmp_path / "cut.png", dpi=100)
    plt.close(fig)
    assert png_size(tmp_path / "cut.png") == (1000, 380)
    assert (tmp_path / "cut.png").stat().st_size > 20_000  # pixels, not an empty frame


def test_summary(ztf: dict, lsst: dict, data_dir: Path) -> None:
    line = alerts.summary(ztf)
    assert str(ztf["candid"]) in line and ztf["objectId"] in line and "2019-11-27T03:15:35" in line
    assert "r=18.63" in line and "asteroid" not in line
    asteroid = next(
        a for a in decode_file(data_dir / LSST_FILE) if a.get("mpc_orbits") and a["mpc_orbits"].get("designation")
    )
    assert "asteroid=2004 JQ12" in alerts.summary(asteroid) or "asteroid=2020 SJ88" in alerts.summary(asteroid)
    assert str(lsst["diaSourceId"]) in alerts.summary(lsst)
    assert "\n" not in alerts.summary(lsst)


def test_jsonable(ztf: dict) -> None:
    import base64

    doc = json.loads(json.dumps(alerts.jsonable({**ztf, "nan": math.nan}), allow_nan=False))
    assert doc["nan"] is None
    assert base64.b64decode(doc["cutoutScience"]["stampData"]) == ztf["cutoutScience"]["stampData"]
    dropped = alerts.jsonable(ztf, drop_bytes=True)
    assert "stampData" not in dropped["cutoutScience"]


def test_import_genesis_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, genesis, genesis.alerts; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'astropy') if m in sys.modules))"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


def test_to_json_is_the_json_of_jsonable_for_every_real_alert(data_dir):
    """alerts.to_json (orjson, bytes fields cut from the text with drop_bytes) writes what
    json.dumps(jsonable(...)) writes, value for value: real ZTF, Fink (NaN features) and Rubin alerts,
    and the corners (escaped keys, bytes in lists, non-finite floats, a 65-bit integer)."""
    import json

    from genesis.samples import real_lsst_alerts, real_ztf_alerts

    records = [a.record for a in real_ztf_alerts(data_dir)] + [a.record for a in real_lsst_alerts(data_dir)]
    corners = [
        {"a": b"x"},
        {"b": 1, "a": b"x", "c": 2},
        {"a": {"b": b"y", "d": b"z"}, "c": [b"z", 1]},
        {'k"x': b"1", "k\\": b"2", "n": float("nan"), "i": [float("inf"), -float("inf")]},
        {"k\\\\": b"3", 'z\\\\\\"': b"4", '\\"': b"5", "keep": 1},
        [b"q", {"r": b"s"}],
        {"big": 2**65, "t": "NaN: Infinity"},
    ]
    for value in records + corners:
        for drop in (False, True):
            want = json.loads(json.dumps(alerts.jsonable(value, drop_bytes=drop), allow_nan=False))
            assert json.loads(alerts.to_json(value, drop_bytes=drop)) == want
