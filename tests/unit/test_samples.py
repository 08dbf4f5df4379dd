"""genesis.samples: real alerts read once each, derived copies, demo sets and LSST-sized alerts (real data only)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import fastavro
import pytest
from fastavro.validation import validate

from genesis import samples
from genesis.filters import filter_asteroids, is_transient

OBJECT_ID = re.compile(r"^ZTF\d{2}[a-z]{7}$")
JD_KEYS = ("jd", "jdstarthist", "jdendhist", "jdstartref", "jdendref")


def container_size(schema, record) -> int:
    buffer = io.BytesIO()
    fastavro.writer(buffer, schema, [record])
    return buffer.tell()


def wire_size(schema, record) -> int:
    """A Rubin message: magic byte, 4-byte schema id, the record."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return 5 + buffer.tell()


@pytest.fixture(scope="module")
def reals(data_dir):
    return samples.real_ztf_alerts(data_dir)


def records_by_fastavro(paths) -> list[tuple[Path, dict]]:
    """(file, record) of every record of ``paths``, read by fastavro.reader (the reference)."""
    out = []
    for path in paths:
        with path.open("rb") as fh:
            out += [(path, record) for record in fastavro.reader(fh)]
    return out


@pytest.fixture(scope="module")
def medium_ids(data_dir):
    """(candid, objectId) of the medium alerts."""
    return [(record["candid"], record["objectId"]) for _, record in samples.demo_alerts("medium", data_dir)]


def test_real_ztf_alerts_are_each_candid_once_without_the_test_schema(data_dir, reals):
    # expected, from the files: every record of ztf/raw and ztf/fink_enriched, each candid once,
    # without the schema 3.5 forced-photometry test alert: 102 records, 98 candids (data README)
    rows = records_by_fastavro(
        sorted((data_dir / "ztf" / "raw").rglob("*.avro")) + sorted((data_dir / "ztf" / "fink_enriched").glob("*.avro"))
    )
    expected = {record["candid"] for path, record in rows if not path.name.startswith("forcedphot_test")}
    candids = [alert.record["candid"] for alert in reals]
    assert len(candids) == len(set(candids)) == len(expected) and set(candids) == expected
    assert len(rows) > len(expected)  # the repeats (four schema versions of one alert) and the test alert
    assert all(alert.schema.get("version") != "3.5" for alert in reals)
    assert not any("forcedphot_test" in alert.path.name for alert in reals)
    (reencoded,) = [alert for alert in reals if alert.record["candid"] == 472263571115115000]
    assert reencoded.schema["version"] == "3.3"
    fink = records_by_fastavro(sorted((data_dir / "ztf" / "fink_enriched").glob("*.avro")))
    assert sum(alert.path.parent.name == "fink_enriched" for alert in reals) == len(fink) > 0


def test_real_lsst_alerts_keep_their_writer_schema(data_dir):
    alerts = samples.real_lsst_alerts(data_dir)
    expected = records_by_fastavro(sorted((data_dir / "lsst").rglob("*.avro")))
    # every record, in file order: 17 (data README), compared by id (real alerts hold NaNs)
    assert len(expected) > 0 and [a.record["diaSourceId"] for a in alerts] == [r["diaSourceId"] for _, r in expected]
    for alert in alerts:
        validate(alert.record, alert.schema)


@pytest.mark.parametrize("copy", [1, 204])
def test_derived_alerts_validate_against_their_writer_schema(reals, copy):
    for alert in reals:
        validate(samples.derive(alert, copy), alert.schema)


def test_derive_shifts_every_time_by_the_same_whole_days(reals):
    for alert in reals:
        real, new = alert.record, samples.derive(alert, 7)
        for key in JD_KEYS:
            if real["candidate"][key] is not None:
                assert new["candidate"][key] == real["candidate"][key] + 7
        for old_row, new_row in zip(real["prv_candidates"], new["prv_candidates"], strict=True):
            assert new["candidate"]["jd"] - new_row["jd"] == real["candidate"]["jd"] - old_row["jd"]
        for old_row, new_row in zip(real.get("fp_hists") or [], new.get("fp_hists") or [], strict=True):
            assert new_row["jd"] == old_row["jd"] + 7
        if real.get("cjd"):
            assert new["cjd"] == [None if jd is None else jd + 7 for jd in real["cjd"]]
        if real.get("jd_first_real_det") is not None:
            assert new["jd_first_real_det"] == real["jd_first_real_det"] + 7
        if isinstance(real.get("day"), int):
            assert (new["year"], new["month"], new["day"]) != (real["year"], real["month"], real["day"])


def test_derive_moves_ids_with_the_time_and_leaves_the_real_alert_alone(reals):
    for alert in reals:
        real = alert.record
        before = repr(real["candidate"]) + repr(real["prv_candidates"])
        new = samples.derive(alert, 3)
        assert repr(real["candidate"]) + repr(real["prv_candidates"]) == before
        assert new["candid"] == new["candidate"]["candid"] == real["candid"] + 3 * 10**15
        assert new["candidate"]["pid"] == real["candidate"]["pid"] + 3 * 10**9
        assert new["candid"] // 10**6 == new["candidate"]["pid"]
        assert OBJECT_ID.match(new["objectId"]) and new["objectId"] != real["objectId"]
        old_prv = [row["candid"] for row in real["prv_candidates"] if row.get("candid") is not None]
        new_prv = [row["candid"] for row in new["prv_candidates"] if row.get("candid") is not None]
        assert new_prv == [candid + 3 * 10**15 for candid in old_prv]
    assert samples.derive(reals[0], 3) == samples.derive(reals[0], 3)


def test_derive_rejects_copies_outside_the_id_scheme(reals):
    with pytest.raises(ValueError):
        samples.derive(reals[0], 0)
    with pytest.raises(ValueError):
        samples.derive(reals[0], 6084)


def test_small_is_every_real_alert_then_derived_copies(data_dir, reals):
    pairs = list(samples.demo_alerts("small", data_dir))
    candids = [record["candid"] for _, record in pairs]
    size = samples.DEMO_SIZES["small"]  # 100: the definition of the set
    assert len(reals) < size  # so small holds every real alert (98), then copies of the first ones
    assert len(pairs) == size and len(set(candids)) == size
    assert candids[: len(reals)] == [alert.record["candid"] for alert in reals]
    derived = [samples.derive(alert, 1)["candid"] for alert in reals[: size - len(reals)]]
    assert candids[len(reals) :] == derived
    for schema, record in pairs:
        validate(record, schema)


def test_medium_has_distinct_candids_and_new_object_ids(reals, medium_ids):
    ids = medium_ids
    n = len(reals)  # 98
    candids = {candid for candid, _ in ids}
    size = samples.DEMO_SIZES["medium"]  # 20,000: the definition of the set
    assert len(ids) == size and len(candids) == size
    real_objects = {alert.record["objectId"] for alert in reals}
    derived_objects = {object_id for _, object_id in ids[n:]}
    assert derived_objects and not derived_objects & real_objects
    assert all(OBJECT_ID.match(object_id) for object_id in derived_objects)
    # one new object per real object and copy: two alerts of one real object stay one object
    assert len(derived_objects) == len({(o, i // n) for i, (_, o) in enumerate(ids[n:], start=n)})
    assert all(0 < candid < 2**63 for candid in candids)


def test_notebook_filters_select_the_same_share_of_derived_alerts(reals):
    real_asteroids = [filter_asteroids(alert.record) is not None for alert in reals]
    real_transients = [is_transient(alert.record) is not None for alert in reals]
    assert 0 < sum(real_asteroids) < len(reals) and 0 < sum(real_transients) < len(reals)
    for copy in (1, 150):
        derived = [samples.derive(alert, copy) for alert in reals]
        assert [filter_asteroids(record) is not None for record in derived] == real_asteroids
        assert [is_transient(record) is not None for record in derived] == real_transients


@pytest.mark.parametrize("fmt", ["ztf", "lsst"])
def test_lsst_sized_alerts_are_82_kb_with_new_ids_each_call(data_dir, reals, fmt):
    # one call per template, as genesis.samples documents them: every raw ZTF alert (54), or
    # every real Rubin v9.0 alert (8); successive calls go round the templates
    if fmt == "ztf":
        templates = sum("raw" in alert.path.relative_to(data_dir).parts for alert in reals)
    else:
        templates = sum("rubin_v9_0" in alert.path.parts for alert in samples.real_lsst_alerts(data_dir))
    assert templates > 0
    pairs = [samples.lsst_sized(fmt, data_dir, jd=2461500.5 + k) for k in range(templates)]
    assert len(pairs) == templates
    for schema, record in pairs:
        # 82,000 bytes: Rubin's upper estimate of an alert packet (samples.LSST_ALERT_BYTES), within 15 %,
        # as each survey frames a message
        size = container_size(schema, record) if fmt == "ztf" else wire_size(schema, record)
        assert abs(size - 82_000) <= 0.15 * 82_000
        validate(record, schema)
    key = "candid" if fmt == "ztf" else "diaSourceId"
    assert len({record[key] for _, record in pairs}) == len(pairs)
    again = samples.lsst_sized(fmt, data_dir, number=10**6, jd=2461500.5)[1]
    assert again[key] not in {record[key] for _, record in pairs}
    if fmt == "ztf":
        assert again["candidate"]["jd"] == pytest.approx(2461500.5, abs=1e-6)
        assert len({record["objectId"] for _, record in pairs}) == len(pairs)
    else:
        assert again["diaSource"]["midpointMjdTai"] == pytest.approx(61500.0 + 37 / 86400, abs=1e-6)
