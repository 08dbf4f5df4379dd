"""genesis.inject without Kafka: rates, schedules, argument checks, and the id patching of the payload pool."""

from __future__ import annotations

import pytest

from genesis._codecs import Decoder
from genesis.errors import ConfigError
from genesis.inject import MessagePool, Rate, make_schedule, parse_rate


@pytest.mark.parametrize(
    "text, alerts, seconds",
    [
        ("10000/40s", 10000, 40.0),
        ("250/s", 250, 1.0),
        ("500/1.5s", 500, 1.5),
        ("600/1min", 600, 60.0),
        ("100/250ms", 100, 0.25),
        (" 10000 / 40 ", 10000, 40.0),
    ],
)
def test_parse_rate(text, alerts, seconds):
    assert parse_rate(text) == Rate(alerts, seconds)


@pytest.mark.parametrize("text", ["", "10000", "10000/", "0/40s", "10000/0s", "-5/40s", "10000/40parsecs", "a/b"])
def test_bad_rates_are_config_errors(text):
    with pytest.raises(ConfigError, match="rate"):
        parse_rate(text)


def test_even_schedule_spreads_alerts_over_the_visit():
    plan = make_schedule("10000/40s", visits=2)
    assert plan.total == 20000 and plan.visits == 2
    assert plan.at(0) == 0.0
    assert plan.at(1) == pytest.approx(0.004)  # 250 alerts/s
    assert plan.at(10000) == pytest.approx(40.0)  # visit 2 starts on time
    assert plan.seconds == pytest.approx(80.0 - 0.004)
    assert plan.visit_of(9999) == 0 and plan.visit_of(10000) == 1


def test_burst_schedule_sends_a_visit_within_the_burst_then_waits():
    plan = make_schedule("10000/40s", visits=3, burst=5)
    assert plan.at(9999) == pytest.approx(5 - 5 / 10000)
    assert plan.at(10000) == pytest.approx(40.0)
    assert plan.at(20000 + 5000) == pytest.approx(82.5)
    assert make_schedule("1000/10s", visits=1, burst=0).seconds == 0.0  # as fast as possible


def test_duration_gives_the_number_of_alerts():
    assert make_schedule("10000/40s", duration=20).total == 5000
    assert make_schedule("10000/4s", duration=10).total == 25000
    assert make_schedule("10/s", duration=1.25).total == 12


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "either visits"),
        ({"visits": 2, "duration": 10}, "either visits"),
        ({"visits": 0}, "visits"),
        ({"visits": 1.5}, "visits"),
        ({"visits": True}, "visits"),
        ({"duration": -1}, "duration"),
        ({"duration": 0.001}, "no alert"),
        ({"visits": 1, "burst": 41}, "burst"),
        ({"visits": 1, "burst": -1}, "burst"),
    ],
)
def test_bad_schedules_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        make_schedule("10000/40s", **options)


@pytest.mark.parametrize("fmt", ["ztf", "lsst"])
def test_pool_patches_ids_and_keeps_the_avro_valid(fmt, data_dir):
    pool = MessagePool(fmt, 3, data_dir)
    decoder = Decoder()  # Rubin's schemas built in (lsst-alert-packet)
    ids = set()
    for k in range(6):
        value = pool.message(k, 8 * 10**18 + 12345 + k)
        assert len(value) == pool.sizes[k % 3]
        (alert,) = decoder.decode(value)
        alert_id = alert["candid"] if fmt == "ztf" else alert["diaSourceId"]
        nested = alert["candidate"]["candid"] if fmt == "ztf" else alert["diaSource"]["diaSourceId"]
        assert alert_id == nested == 8 * 10**18 + 12345 + k
        ids.add(alert_id)
    assert len(ids) == 6
    assert 60_000 < pool.mean_bytes < 100_000 if fmt == "ztf" else pool.mean_bytes > 40_000


def test_bad_pool_arguments(data_dir):
    with pytest.raises(ConfigError):
        MessagePool("fink", 3, data_dir)
    with pytest.raises(ConfigError):
        MessagePool("ztf", 0, data_dir)
