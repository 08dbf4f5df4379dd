"""``gs.dedup``: repeats dropped, first occurrences kept in order, memory bounded, clear errors."""

from __future__ import annotations

import pytest

from genesis.dedup import dedup
from genesis.errors import ConfigError
from genesis.samples import real_lsst_alerts, real_ztf_alerts


@pytest.fixture(scope="module")
def ztf(data_dir) -> list[dict]:
    return [a.record for a in real_ztf_alerts(data_dir)[:5]]


def redelivered(alerts: list[dict]) -> list[dict]:
    """What a consumer sees after a crash: everything, then the uncommitted tail once more."""
    return alerts + alerts[2:]


def test_plain_alerts(ztf):
    out = dedup(redelivered(ztf))
    assert [a["candid"] for a in out] == [a["candid"] for a in ztf]
    assert out.dropped == len(ztf) - 2  # the redelivered tail, alerts[2:]


def test_stream_tuples_keep_their_shape(ztf):
    pairs = list(enumerate(redelivered(ztf)))
    triples = [(i, a, f"meta{i}") for i, a in pairs]
    assert list(dedup(pairs)) == pairs[: len(ztf)]
    assert list(dedup(triples)) == triples[: len(ztf)]


def test_lsst_key(data_dir):
    alerts = [a.record for a in real_lsst_alerts(data_dir)[:4]]
    out = list(dedup(alerts + alerts, key="diaSourceId"))
    assert [a["diaSourceId"] for a in out] == [a["diaSourceId"] for a in alerts]


def test_callable_key(ztf):
    by_object = dedup(ztf + ztf, key=lambda a: (a["objectId"], a["candidate"]["jd"]))
    assert len(list(by_object)) == len({(a["objectId"], a["candidate"]["jd"]) for a in ztf})


def test_transformed_values_need_a_callable_key():
    ids = [(0, "ZTF18a"), (1, "ZTF18a"), (2, "ZTF18b")]
    assert list(dedup(ids, key=lambda v: v)) == [(0, "ZTF18a"), (2, "ZTF18b")]
    with pytest.raises(ConfigError, match="function"):
        list(dedup(ids))


def test_memory_is_bounded_and_lru(ztf):
    a, b, c = ztf[:3]
    # maxsize 2: after a, b, c the oldest key (a) is forgotten, so a comes through again
    assert [x["candid"] for x in dedup([a, b, c, a], maxsize=2)] == [a["candid"], b["candid"], c["candid"], a["candid"]]
    # a repeat refreshes its key: a, b, a(dropped, now newest), c evicts b, so a is still known
    out = dedup([a, b, a, c, a], maxsize=2)
    assert [x["candid"] for x in out] == [a["candid"], b["candid"], c["candid"]]
    assert len(out._seen) == 2


def test_lazy_on_an_endless_stream(ztf):
    def endless():
        while True:
            yield from ztf

    out = dedup(endless())
    assert [next(out)["candid"] for _ in range(3)] == [a["candid"] for a in ztf[:3]]


def test_missing_field_names_the_fields(ztf):
    with pytest.raises(ConfigError, match="no field 'diaSourceId'.*candid"):
        list(dedup(ztf, key="diaSourceId"))


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_bad_maxsize(maxsize):
    with pytest.raises(ConfigError, match="maxsize"):
        dedup([], maxsize=maxsize)


def test_bad_key():
    with pytest.raises(ConfigError, match="key"):
        dedup([], key=3)  # type: ignore[arg-type]
