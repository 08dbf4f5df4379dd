"""genesis.simulate: simulated alerts only (plus the official 4.02 schema files, to check the subset)."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from fastavro.validation import validate

from genesis import samples, simulate


@pytest.fixture(scope="module")
def alerts():
    return [record for _, record in simulate.simulated_alerts(400, seed=7)]


def test_simulated_alerts_validate_and_have_distinct_ids(alerts):
    for record in alerts:
        validate(record, simulate.SCHEMA)
    assert len({record["candid"] for record in alerts}) == len(alerts)
    assert len({record["objectId"] for record in alerts}) == len(alerts)
    assert all(record["candidate"]["candid"] == record["candid"] for record in alerts)


def test_about_30_percent_asteroids_the_rest_null_string(alerts):
    asteroids = [record for record in alerts if record["candidate"]["ssnamenr"] != "null"]
    assert 0.22 < len(asteroids) / len(alerts) < 0.38
    assert all(record["candidate"]["ssnamenr"].isdigit() for record in asteroids)
    assert all(row["candid"] is None for record in asteroids for row in record["prv_candidates"])


def test_light_curves_have_detections_with_errors_and_upper_limits(alerts):
    rows = [row for record in alerts for row in record["prv_candidates"]]
    detections = [row for row in rows if row["candid"] is not None]
    limits = [row for row in rows if row["candid"] is None]
    assert detections and limits
    assert all(row["magpsf"] is not None and row["sigmapsf"] > 0 for row in detections)
    assert all(row["magpsf"] is None and row["isdiffpos"] is None and row["diffmaglim"] for row in limits)
    assert {row["fid"] for row in rows} == {1, 2}


def test_cutouts_are_gzipped_63x63_float32_fits(alerts):
    fits = pytest.importorskip("astropy.io.fits")
    stamp = gzip.decompress(alerts[0]["cutoutDifference"]["stampData"])
    assert stamp.startswith(b"SIMPLE  =") and len(stamp) % 2880 == 0
    with fits.open(io.BytesIO(stamp)) as hdus:
        hdus.verify("exception")
        assert hdus[0].data.shape == (63, 63) and hdus[0].data.dtype.name == "float32"


def test_deterministic_given_a_seed():
    first = [record for _, record in simulate.simulated_alerts(5, seed=3)]
    assert first == [record for _, record in simulate.simulated_alerts(5, seed=3)]
    assert first != [record for _, record in simulate.simulated_alerts(5, seed=4)]


def test_schema_is_a_faithful_subset_of_ztf_4_02(data_dir):
    official = {
        name: json.loads((data_dir / "ztf/schema/4.02" / f"{name}.avsc").read_text())
        for name in ("alert", "candidate", "prv_candidate")
    }
    ours = {"alert": simulate.SCHEMA}
    for field in simulate.SCHEMA["fields"]:
        if field["name"] == "candidate":
            ours["candidate"] = field["type"]
        if field["name"] == "prv_candidates":
            ours["prv_candidate"] = field["type"][1]["items"]
    for name, schema in ours.items():
        types = {field["name"]: field["type"] for field in official[name]["fields"]}
        names = [field["name"] for field in schema["fields"]]
        assert names == [n for n in types if n in names]  # same order
        if name != "alert":
            assert all(types[field["name"]] == field["type"] for field in schema["fields"])


def test_demo_sets_fall_back_to_the_simulator_without_real_data(monkeypatch, tmp_path):
    monkeypatch.setenv("GENESIS_ALERTS", str(tmp_path / "absent"))
    with pytest.warns(UserWarning, match="SIMULATED"):
        pairs = list(samples.demo_alerts("small"))
    assert len(pairs) == samples.DEMO_SIZES["small"] and all(schema is simulate.SCHEMA for schema, _ in pairs)
