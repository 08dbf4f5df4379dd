"""genesis inject against the real test cluster: every injected id arrives once, with its headers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import genesis.streaming as gs
from genesis.cli import main as cli
from genesis.inject import MessagePool, inject, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pool(data_dir):
    return MessagePool("ztf", 16, data_dir)


def read_back(url: str, since: datetime, first: int, count: int) -> dict[int, dict]:
    """The injected alerts of ids first..first+count-1 found in the topic, by id (failing on a duplicate)."""
    found: dict[int, dict] = {}
    with gs.open(url, start_at=since) as stream:
        for _, alert, meta in stream(timeout=10, metadata=True):
            if first <= alert["candid"] < first + count:
                assert alert["candid"] not in found, f"alert {alert['candid']} consumed twice"
                found[alert["candid"]] = {"alert": alert, "headers": dict(meta.headers)}
                if len(found) == count:
                    break
    return found


def test_two_visits_arrive_exactly_once_with_headers(demo, pool):
    url = demo.url("lsst")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    report = inject(url, "500/1s", visits=2, burst=0.5, pool=pool)
    assert report.ok and report.failed == 0 and not report.errors
    assert report.sent == report.delivered == report.planned == 1000
    assert report.bytes == sum(pool.sizes[k % len(pool)] for k in range(1000))
    assert report.achieved_rate > 0 and report.send_seconds > 0 and report.target_rate == 500
    found = read_back(url, since, report.first_id, 1000)
    assert sorted(found) == list(range(report.first_id, report.first_id + 1000))
    for alert_id, got in found.items():
        k = alert_id - report.first_id
        headers = got["headers"]
        assert headers["genesis.id"] == b"%d" % alert_id
        assert headers["genesis.seq"] == b"%d" % k
        assert headers["genesis.visit"] == b"%d" % (k // 500)
        assert int(headers["genesis.sent_ns"]) > since.timestamp() * 1e9
        assert got["alert"]["candidate"]["candid"] == alert_id


def test_stop_event_ends_a_background_run(demo, pool):
    thread, stop, result = start(demo.url("lsst"), "100/s", duration=600, pool=pool)
    thread.join(3)
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and thread.error is None
    (report,) = result
    assert report.stopped and not report.kept_schedule
    assert 0 < report.sent < report.planned and report.ok


def test_cli_reports_json_and_exit_status(demo, capsys):
    assert cli(["inject", demo.url("lsst"), "--rate", "200/1s", "--visits", "1", "--pool", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["sent"] == report["delivered"] == 200 and report["ok"] and report["failed"] == 0


def test_cli_refuses_a_missing_topic(demo, capsys):
    assert cli(["inject", demo.url("no-such-topic-for-inject"), "--visits", "1", "--pool", "2"]) == 1
    assert "does not exist" in capsys.readouterr().err
