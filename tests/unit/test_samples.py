"""genesis.samples: real alerts read once each, derived copies, demo sets and LSST-sized alerts (real data only)."""

from __future__ import annotations

import io
import re
import time

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


@pytest.fixture(scope="module")
def reals(data_dir):
    return samples.real_ztf_alerts(data_dir)


@pytest.fixture(scope="module")
def medium_ids(data_dir):
    """(candid, objectId) of the 20,000 medium alerts, and the seconds it took to generate them."""
    start = time.perf_counter()
    ids = [(record["candid"], record["objectId"]) for _, record in samples.demo_alerts("medium", data_dir)]
    return ids, time.perf_counter() - start


def test_real_ztf_alerts_are_each_candid_once_without_the_test_schema(reals):
    candids = [alert.record["candid"] for alert in reals]
    assert len(reals) == 98 and len(set(candids)) == 98
    assert all(alert.schema.get("version") != "3.5" for alert in reals)
    assert not any("forcedphot_test" in alert.path.name for alert in reals)
    (reencoded,) = [alert for alert in reals if alert.record["candid"] == 472263571115115000]
    assert reencoded.schema["version"] == "3.3"
    assert sum(alert.path.parent.name == "fink_enriched" for alert in reals) == 44


def test_real_lsst_alerts_keep_their_writer_schema(data_dir):
    alerts = samples.real_lsst_alerts(data_dir)
    assert len(alerts) == 17
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
    assert len(pairs) == 100 and len(set(candids)) == 100
    assert candids[:98] == [alert.record["candid"] for alert in reals]
    for schema, record in pairs:
        validate(record, schema)


def test_medium_has_20000_distinct_candids_and_new_object_ids(reals, medium_ids):
    ids, seconds = medium_ids
    candids = {candid for candid, _ in ids}
    assert len(ids) == 20_000 and len(candids) == 20_000
    real_objects = {alert.record["objectId"] for alert in reals}
    derived_objects = {object_id for _, object_id in ids[98:]}
    assert not derived_objects & real_objects
    assert all(OBJECT_ID.match(object_id) for object_id in derived_objects)
    # one new object per real object and copy: two alerts of one real object stay one object
    assert len(derived_objects) == len({(o, i // 98) for i, (_, o) in enumerate(ids[98:], start=98)})
    assert all(0 < candid < 2**63 for candid in candids)
    print(f"medium: 20,000 alerts generated in {seconds:.1f} s")


def test_notebook_filters_select_the_same_share_of_derived_alerts(reals):
    real_asteroids = [filter_asteroids(alert.record) is not None for alert in reals]
    real_transients = [is_transient(alert.record) is not None for alert in reals]
    assert 0 < sum(real_asteroids) < len(reals) and 0 < sum(real_transients) < len(reals)
    for copy in (1, 150):
        derived = [samples.derive(alert, copy) for alert in reals]
        assert [filter_asteroids(record) is not None for record in derived] == real_asteroids
        assert [is_transient(record) is not None for record in derived] == real_transients


@pytest.mark.parametrize("fmt", ["ztf", "lsst"])
def test_lsst_sized_alerts_are_82_kb_with_new_ids_each_call(data_dir, fmt):
    templates = len(samples._templates(data_dir.resolve(), fmt, samples.LSST_ALERT_BYTES))
    pairs = [samples.lsst_sized(fmt, data_dir, jd=2461500.5 + k) for k in range(templates)]
    for schema, record in pairs:
        assert abs(container_size(schema, record) - 82_000) <= 0.15 * 82_000
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
