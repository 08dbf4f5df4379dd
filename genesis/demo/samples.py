"""The alerts genesis' demo topics and benchmarks are made of, derived from real public alert packets.

Every alert here starts as a real ZTF or Rubin alert packet from the alert data directory
(``$GENESIS_ALERTS`` or ``../shared/data``, see :func:`genesis.demo.alert_data_dir`). Nothing is
invented except identifiers and a time offset, so filters written for real alerts (the demo
notebook's asteroid filter ``alert['candidate']['ssnamenr'] != 'null'`` and E. C. Bellm's
``is_transient``) select the same share of the derived topics as of the real data.

**Real alerts.** :func:`real_ztf_alerts` reads every record of ``ztf/raw/**`` and
``ztf/fink_enriched/**`` (98 records in the shipped data: 54 raw ZTF alerts, 44 re-published by
Fink), each distinct ``candid`` once. When one alert exists in several schema versions (the four
re-encodings of 472263571115115000) the newest writer schema is kept. The schema 3.5 test alert
(``forcedphot_test_*``, whose history rows are forced photometry) is left out. Each record keeps
its own writer schema, exactly as embedded in its file.

**Derived copies.** ``derive(alert, copy)`` makes copy number ``copy`` (1, 2, ...) of a real
alert. It shifts every time of observation of the alert and of its history by ``copy`` whole
days: ``candidate.jd``, ``jdstarthist``, ``jdendhist``, ``jdstartref``, ``jdendref``,
``prv_candidates[].jd``, ``fp_hists[].jd`` and, in Fink-enriched records, ``cjd[]``,
``jd_first_real_det``, ``timestamp``, ``broker*Timestamp`` and the ``year``/``month``/``day``/
``hour`` partition fields. A whole-day shift of a Julian date is exact in float64, so every
time difference (light-curve shape, ``jd - prv_candidates[i].jd``) is preserved bit for bit.
Identifiers move with the time, the way ZTF builds them: a processing id ``pid`` is the
exposure time in 10^-5 day ticks since 2017-01-01 followed by 4 digits, and a ``candid`` is
``pid`` followed by 6 digits, so the shift adds ``days * 10**9`` to every ``pid``,
``days * 10**15`` to every ``candid`` (top level, ``candidate`` and history detections alike,
so ``candidate.candid == candid`` still holds) and ``days`` to every night id ``nid``. The
``objectId`` becomes ``ZTF`` + the real 2-digit year + a 3-letter copy code (``eab``, ``eac``,
..., first letter ``e``..``m``; real ZTF names of a year start with ``a``) + the real name's last
4 letters, so two alerts of one real object stay one object in each copy, and no derived name
is a real one. Nothing else changes: magnitudes, positions, ``ssnamenr``, cutouts and
broker scores are the real ones, so asteroids stay asteroids and transients stay transients.
Derivation is a pure function of ``(alert, copy)``: no random numbers, the same every run.

**Demo sets.** :func:`demo_alerts` yields ``(writer schema, record)`` pairs, round robin over
the real ZTF alerts in file order: first every real alert once (copy 0), then copy 1 of each,
copy 2 of each, and so on, until the set is full.

- ``small``: 100 alerts: the 98 real ones, then copy 1 of the first two.
- ``medium``: 20,000 alerts: the 98 real ones, then copies 1..204 (the last one partial).

Both are generators: the 20,000 ``medium`` records would weigh about 1 GB as dicts at once.
Every ``candid`` in a set is distinct (checked while generating).

**LSST-sized alerts.** :func:`lsst_sized` returns alerts of about 82 KB (Rubin's upper estimate of
an alert packet), measured as the Kafka message each survey sends: a one-record Avro container with
its schema for ZTF, a Confluent wire-format message (5 bytes + the record) for Rubin.
``format="ztf"``: a raw ZTF alert (schema 3.x/4.x, asteroids included) whose ``prv_candidates`` are
lengthened with earlier copies of its own real history rows (each repeat shifted back in time by
the span of the history, in whole days) until the container reaches the target; alerts already at
or above it are used as they are. ``format="lsst"``: a real Rubin alert (v9.0, from Fink) converted
to Rubin's schema of the version asked for (default: the newest ``lsst-alert-packet`` ships; fields
both versions have keep their real values, new ones come from the package's sample packet of that
version), its cutouts (real FITS pixels, with variance and PSF planes) cropped around the centre
until the message is at the target; needs astropy and the extra ``genesis-streaming[rubin]``. In
both, each call gets new identifiers in a reserved range (``candid`` / ``diaSourceId`` /
``diaObjectId`` >= 7 * 10**18, far beyond real ones) and all times shifted so the alert was
observed at the given Julian date (default: now).
"""

from __future__ import annotations

import datetime as _dt
import functools
import io
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import fastavro

from .data import alert_data_dir, require_data_dir

__all__ = [
    "DEMO_SIZES",
    "LSST_ALERT_BYTES",
    "RealAlert",
    "ZtfAlert",
    "LsstAlert",
    "real_ztf_alerts",
    "real_lsst_alerts",
    "derive",
    "demo_alerts",
    "demo_slice",
    "lsst_sized",
]

Record = dict[str, Any]
Schema = dict[str, Any]

#: Number of alerts in each demo set.
DEMO_SIZES: dict[str, int] = {"small": 100, "medium": 20_000}
#: Rubin's upper estimate of one alert packet, in bytes.
LSST_ALERT_BYTES = 82_000

_TICKS_PER_DAY = 10**5  # ZTF pid time resolution (1e-5 day)
_PID_TICK = 10**4  # pid = ticks * 10**4 + 4 digits
_CANDID_TICK = _PID_TICK * 10**6  # candid = pid * 10**6 + 6 digits
_RESERVED_ID = 7 * 10**18  # lsst_sized identifiers start here
_IDS_PER_CALL = 1000
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_COPY_CODE_FIRST = 4 * 26**2  # copy codes start at "eaa"
_MAX_COPY = 13 * 26**2 - _COPY_CODE_FIRST - 1  # last code "mzz"
_JD_UNIX_EPOCH = 2440587.5
_MJD_OFFSET = 2400000.5
_TAI_MINUS_UTC_DAYS = 37 / 86400

_JD_KEYS = ("jd", "jdstarthist", "jdendhist", "jdstartref", "jdendref", "jd_first_real_det")
_MJD_KEYS = (
    "midpointMjdTai",
    "timeProcessedMjdTai",
    "timeWithdrawnMjdTai",
    "firstDiaSourceMjdTai",
    "lastDiaSourceMjdTai",
    "validityStartMjdTai",
)
_TIMESTAMP_KEYS = (
    "timestamp",
    "brokerIngestTimestamp",
    "brokerStartProcessTimestamp",
    "brokerEndProcessTimestamp",
)


@dataclass(frozen=True)
class RealAlert:
    """One real alert packet: the record as fastavro decodes it and the writer schema of its file.

    ``schema`` is the file's ``reader.writer_schema`` (a JSON-like dict). The record is shared
    with a cache: treat it as read-only, or copy it.
    """

    record: Record
    schema: Schema
    path: Path


ZtfAlert = RealAlert
LsstAlert = RealAlert


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> list[RealAlert]:
    with path.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema: Schema = reader.writer_schema  # type: ignore[assignment]  # a record schema: a dict
        return [RealAlert(record, schema, path) for record in reader]  # type: ignore[arg-type]  # records: dicts


def _ztf_version(alert: RealAlert) -> tuple[int, ...]:
    """Schema version: the writer schema's ``version``, else (Fink files) the record's ``schemavsn``."""
    label = alert.schema.get("version") or alert.record.get("schemavsn") or "0"
    return tuple(int(part) for part in str(label).split("."))


@functools.lru_cache(maxsize=4)
def _ztf_alerts(root: Path) -> tuple[RealAlert, ...]:
    newest: dict[int, RealAlert] = {}
    for sub in ("ztf/raw", "ztf/fink_enriched"):
        for path in sorted((root / sub).rglob("*.avro")):
            for alert in _read(path):
                if _ztf_version(alert) == (3, 5):  # test schema: forced photometry as history
                    continue
                seen = newest.get(alert.record["candid"])
                if seen is None or _ztf_version(alert) > _ztf_version(seen):
                    newest[alert.record["candid"]] = alert
    return tuple(newest.values())


@functools.lru_cache(maxsize=4)
def _lsst_alerts(root: Path) -> tuple[RealAlert, ...]:
    paths = sorted((root / "lsst").rglob("*.avro"))
    return tuple(alert for path in paths for alert in _read(path))


def real_ztf_alerts(data_dir: str | Path | None = None) -> list[RealAlert]:
    """Every real ZTF alert of ``ztf/raw/**`` and ``ztf/fink_enriched/**``, each distinct candid once.

    Order: raw files then Fink files, sorted by path, records in file order. A candid found in
    several schema versions keeps its newest; the schema 3.5 test alert is left out.
    """
    return list(_ztf_alerts(require_data_dir(data_dir)))


def real_lsst_alerts(data_dir: str | Path | None = None) -> list[RealAlert]:
    """Every LSST/Rubin record under ``lsst/`` (synthetic ``fakeAlert`` and real Fink ones), with its writer schema."""
    return list(_lsst_alerts(require_data_dir(data_dir)))


# --------------------------------------------------------------------------- copying and shifting

Rules = Mapping[str, Callable[[Any], Any]]


def _transform(value: Any, rules: Rules) -> Any:
    """A copy of ``value`` (dicts and lists copied, leaves shared) with ``rules[key]`` applied to the
    non-null values of that key."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            rule = rules.get(key)
            if rule is not None and item is not None:
                out[key] = rule(item)
            elif type(item) is dict or type(item) is list:
                out[key] = _transform(item, rules)
            else:
                out[key] = item
        return out
    if kind is list:
        return [_transform(item, rules) if type(item) in (dict, list) else item for item in value]
    return value


def _shift_timestamp(value: Any, delta: _dt.timedelta) -> Any:
    """Shift a datetime, or an ISO text timestamp keeping its format (Fink writes both)."""
    if isinstance(value, _dt.datetime):
        return value + delta
    try:
        moved = _dt.datetime.fromisoformat(value) + delta
    except (TypeError, ValueError):
        return value
    return moved.isoformat(sep=value[10] if len(value) > 10 else " ", timespec="microseconds")[: len(value)]


def _time_rules(days: float, *, mjd: bool) -> dict[str, Callable[[Any], Any]]:
    """Rules shifting every time of observation by ``days`` (ZTF JDs or LSST MJDs)."""
    delta = _dt.timedelta(days=days)
    rules: dict[str, Callable[[Any], Any]] = {key: (lambda v: v + days) for key in (_MJD_KEYS if mjd else _JD_KEYS)}
    rules.update({key: (lambda v: _shift_timestamp(v, delta)) for key in _TIMESTAMP_KEYS})
    if mjd:
        rules["brokerIngestMjd"] = lambda v: v + days
        return rules
    ticks = round(days * _TICKS_PER_DAY)
    nights = round(days)
    rules["cjd"] = lambda v: [None if x is None else x + days for x in v]
    rules["pid"] = lambda v: v + ticks * _PID_TICK
    rules["candid"] = lambda v: v + ticks * _CANDID_TICK
    rules["nid"] = lambda v: v + nights
    return rules


def _shift_partition(record: Record, days: float) -> None:
    """Fink's year/month/day(/hour) partition columns follow the shifted date."""
    if not all(isinstance(record.get(key), int) for key in ("year", "month", "day")):
        return
    hour = record.get("hour")
    moved = _dt.datetime(record["year"], record["month"], record["day"], hour or 0) + _dt.timedelta(days=days)
    record.update(year=moved.year, month=moved.month, day=moved.day)
    if isinstance(hour, int):
        record["hour"] = moved.hour


def _letters(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 26)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def derive(alert: RealAlert | Record, copy: int) -> Record:
    """Copy number ``copy`` (1 <= copy <= 6083) of a real ZTF alert: new candid/pid/objectId, times + ``copy`` days.

    Accepts a :class:`RealAlert` or a bare record; never modifies it. See the module docstring
    for exactly what changes. Pure: the same ``(alert, copy)`` always gives the same record.
    """
    if not 1 <= copy <= _MAX_COPY:
        raise ValueError(f"copy must be in 1..{_MAX_COPY}, got {copy}")
    record = alert.record if isinstance(alert, RealAlert) else alert
    out = _transform(record, _time_rules(copy, mjd=False))
    _shift_partition(out, copy)
    real_id = record["objectId"]
    out["objectId"] = real_id[:5] + _letters(_COPY_CODE_FIRST + copy, 3) + real_id[-4:]
    return out


# --------------------------------------------------------------------------- demo sets


def demo_alerts(name: str, data_dir: str | Path | None = None) -> Iterator[tuple[Schema, Record]]:
    """Yield the ``(writer schema, record)`` pairs of demo set ``name`` (``"small"``: 100, ``"medium"``: 20,000).

    Real ZTF alerts first, then derived copies, round robin (see the module docstring). With no
    ``data_dir`` and no real data on this machine, falls back to :mod:`genesis.demo.simulate` and
    warns, since the set is then simulated, not real.
    """
    if name not in DEMO_SIZES:
        raise ValueError(f"unknown demo set {name!r}; choose from {sorted(DEMO_SIZES)}")
    total = DEMO_SIZES[name]
    if data_dir is None and alert_data_dir() is None:
        from . import simulate

        warnings.warn("no real alert data found: the demo set is SIMULATED", stacklevel=2)
        yield from simulate.simulated_alerts(total)
        return
    seen: set[int] = set()
    for schema, record in demo_slice(name, 0, total, data_dir):
        if record["candid"] in seen:
            raise RuntimeError(f"derived candid {record['candid']} collides; the real data breaks derive()'s id scheme")
        seen.add(record["candid"])
        yield schema, record


def demo_slice(name: str, start: int, stop: int, data_dir: str | Path | None = None) -> Iterator[tuple[Schema, Record]]:
    """Alerts ``start`` to ``stop - 1`` of demo set ``name`` (real data only): each is computed
    from its index alone, so slices can be built in parallel processes."""
    stop = min(stop, DEMO_SIZES[name])
    reals = real_ztf_alerts(data_dir)
    for index in range(start, stop):
        copy, which = divmod(index, len(reals))
        real = reals[which]
        yield real.schema, (_transform(real.record, {}) if copy == 0 else derive(real, copy))


# --------------------------------------------------------------------------- LSST-sized alerts


def _container_size(schema: Schema, record: Record) -> int:
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [record])
    return buffer.tell()


def _wire_size(schema: Schema, record: Record) -> int:
    """Bytes of ``record`` as a Confluent wire-format message (magic byte, 4-byte id, the record)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return 5 + buffer.tell()


def _lengthen_history(record: Record, extra: int) -> Record:
    """``record`` with ``extra`` more ``prv_candidates``: its real rows again, earlier, one span of
    history per repeat."""
    history = record["prv_candidates"]
    span = math.ceil(record["candidate"]["jd"] - min(row["jd"] for row in history)) + 1  # whole days: exact JDs
    repeats = math.ceil(extra / len(history))
    earlier = [row for n in range(repeats, 0, -1) for row in _transform(history, _time_rules(-span * n, mjd=False))]
    return {**record, "prv_candidates": earlier[len(earlier) - extra :] + history}


def _ztf_template(alert: RealAlert, target: int) -> Record:
    """A real raw ZTF alert lengthened to about ``target`` container bytes (unchanged if already there)."""
    size = _container_size(alert.schema, alert.record)
    history = alert.record.get("prv_candidates") or []
    if size >= target or not history:
        return alert.record
    per_row = (_container_size(alert.schema, _lengthen_history(alert.record, len(history))) - size) / len(history)
    extra = round((target - size) / per_row)
    if len(history) + extra + 1 >= _IDS_PER_CALL:
        raise ValueError(f"{alert.path}: history too short to reach {target} bytes")
    return _lengthen_history(alert.record, extra)


def _crop_fits(data: bytes, side: int) -> bytes:
    """Every image of a FITS file cropped to its central ``side`` x ``side`` pixels, WCS reference moved along."""
    from astropy.io import fits  # only the lsst format needs it

    with fits.open(io.BytesIO(data)) as hdus:
        for hdu in hdus:
            if hdu.data is None or hdu.data.ndim != 2:
                continue
            ny, nx = hdu.data.shape
            y0, x0 = max(0, (ny - side) // 2), max(0, (nx - side) // 2)
            hdu.data = hdu.data[y0 : y0 + side, x0 : x0 + side].copy()
            for axis, offset in (("1", x0), ("2", y0)):
                if f"CRPIX{axis}" in hdu.header:
                    hdu.header[f"CRPIX{axis}"] -= offset
            for key, offset in (("CUTMINX", x0), ("CUTMINY", y0)):
                if key in hdu.header:
                    hdu.header[key] += offset
        out = io.BytesIO()
        hdus.writeto(out)
    return out.getvalue()


def _lsst_template(record: Record, schema: Schema, target: int) -> Record:
    """A real Rubin alert with its cutouts cropped to the largest squares that keep its message within
    ``target``: one side for all first, then each cutout grown alone as far as it still fits (FITS
    pads every image to 2,880-byte blocks, so one common side lands well short of the target)."""
    cutouts = [key for key in ("cutoutDifference", "cutoutScience", "cutoutTemplate") if record.get(key)]

    crops: dict[tuple[str, int], bytes] = {}

    def cropped(sides: dict[str, int]) -> Record:
        for key, side in sides.items():
            if (key, side) not in crops:
                crops[key, side] = _crop_fits(record[key], side)
        return {**record, **{key: crops[key, side] for key, side in sides.items()}}

    def largest(fits: Callable[[int], bool], low: int = 1, high: int = 512) -> int:
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if fits(mid) else (low, mid - 1)
        return low

    if not cutouts or _wire_size(schema, record) <= target:
        return record
    common = largest(lambda side: _wire_size(schema, cropped(dict.fromkeys(cutouts, side))) <= target)
    sides = dict.fromkeys(cutouts, common)
    for key in cutouts:
        sides[key] = largest(
            lambda side, key=key: _wire_size(schema, cropped({**sides, key: side})) <= target,  # type: ignore[misc]
            common,
            min(512, 2 * common),
        )
    return cropped(sides)


@functools.lru_cache(maxsize=16)
def _templates(root: Path, fmt: str, target: int, version: str | None) -> tuple[tuple[Schema, Record], ...]:
    if fmt == "ztf":
        raws = [alert for alert in _ztf_alerts(root) if "raw" in alert.path.relative_to(root).parts]
        return tuple((alert.schema, _ztf_template(alert, target)) for alert in raws)
    from .._codecs import rubin

    assert version is not None
    schema: Schema = fastavro.parse_schema(rubin.load(version))  # type: ignore[assignment]
    reals = [alert for alert in _lsst_alerts(root) if "rubin_v9_0" in alert.path.parts]
    return tuple((schema, _lsst_template(rubin.convert(a.record, version), schema, target)) for a in reals)


_calls = itertools.count()


def _now_jd() -> float:
    return time.time() / 86400 + _JD_UNIX_EPOCH


def _renumber(keys: tuple[str, ...], base: int) -> Rules:
    """Rules giving each distinct value of ``keys`` a new id ``base``, ``base + 1``, ... (0 means "none" and stays)."""
    assigned: dict[tuple[str, int], int] = {}

    def rule_for(key: str) -> Callable[[int], int]:
        def rule(value: int) -> int:
            if value == 0:
                return 0
            new = assigned.setdefault((key, value), base + len(assigned))
            if new >= base + _IDS_PER_CALL:
                raise ValueError("too many identifiers in one alert")
            return new

        return rule

    return {key: rule_for(key) for key in keys}


def lsst_sized(
    format: Literal["ztf", "lsst"] = "ztf",
    data_dir: str | Path | None = None,
    *,
    number: int | None = None,
    jd: float | None = None,
    target_bytes: int = LSST_ALERT_BYTES,
    schema_version: str | None = None,
) -> tuple[Schema, Record]:
    """One alert of about ``target_bytes`` (one-record Avro container), derived from real alerts.

    ``number`` picks the real template (round robin) and the identifiers: call ``k`` of the
    process gets number ``k`` by default, so ids are unique per call; pass distinct numbers
    yourself across processes. All times are shifted so the alert is observed at Julian date
    ``jd`` (default: now). ``format="ztf"`` returns a ZTF record with its writer schema,
    ``"lsst"`` a record of Rubin's schema ``schema_version`` (default: the newest that
    ``lsst-alert-packet`` ships; the extra ``genesis-streaming[rubin]``) with that schema (parsed
    by fastavro). Details in the module docstring.
    """
    if format not in ("ztf", "lsst"):
        raise ValueError(f"format must be 'ztf' or 'lsst', got {format!r}")
    if format == "lsst":
        from .._codecs import rubin

        schema_version = rubin.check_version(schema_version)
    elif schema_version is not None:
        raise ValueError("schema_version= is for format='lsst' (ZTF alerts keep their own writer schemas)")
    number = next(_calls) if number is None else number
    templates = _templates(require_data_dir(data_dir), format, target_bytes, schema_version)
    schema, template = templates[number % len(templates)]
    when = _now_jd() if jd is None else jd
    base = _RESERVED_ID + number * _IDS_PER_CALL
    if format == "ztf":
        rules = {**_time_rules(when - template["candidate"]["jd"], mjd=False), **_renumber(("candid",), base)}
        record = _transform(template, rules)
        year = _dt.datetime.fromtimestamp((when - _JD_UNIX_EPOCH) * 86400, _dt.timezone.utc).year
        record["objectId"] = f"ZTF{year % 100:02d}" + _letters(13 * 26**6 + number % (13 * 26**6), 7)
        return schema, record
    mjd = when - _MJD_OFFSET + _TAI_MINUS_UTC_DAYS
    ids = _renumber(("diaSourceId", "diaObjectId", "diaForcedSourceId"), base)
    record = _transform(template, {**_time_rules(mjd - template["diaSource"]["midpointMjdTai"], mjd=True), **ids})
    return schema, record
