"""genesis inject against the real test cluster: every injected id arrives once, with its headers."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

import genesis.streaming as gs
from genesis.cli import main as cli
from genesis.inject import MessagePool, inject, make_schedule, start

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


@pytest.mark.edit_loop
def test_stop_event_ends_a_background_run(demo, pool):
    first_visit = threading.Event()
    thread, stop, result = start(
        demo.url("lsst"), "100/s", duration=600, pool=pool, on_visit=lambda visit, report: first_visit.set()
    )
    try:
        # wait for the run to be under way: its first visit (100 alerts, 1 s) was handed over
        assert first_visit.wait(60), f"no visit finished in 60 s (error: {thread.error!r})"
    finally:
        stop.set()
    thread.join(30)  # a hang guard: a stopped run ends after flushing what it sent
    assert not thread.is_alive() and thread.error is None
    (report,) = result
    assert report.stopped and not report.kept_schedule
    assert 100 <= report.sent < report.planned and report.ok


def test_cli_reports_json_and_exit_status(demo, capsys):
    assert cli(["inject", demo.url("lsst"), "--rate", "200/1s", "--visits", "1", "--pool", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["sent"] == report["delivered"] == 200 and report["ok"] and report["failed"] == 0


def test_cli_refuses_a_missing_topic(demo, capsys):
    assert cli(["inject", demo.url("no-such-topic-for-inject"), "--visits", "1", "--pool", "2"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_keeps_the_rate_it_was_given(demo, capsys):
    """``genesis inject --rate 500/2s --visits 2``: alert k leaves k * 4 ms after the first, as the
    ``genesis.sent_ns`` headers show, never ahead of that and never more than 1 s behind.

    1 s is inject's own tolerance (``--tolerance``, default 1), what its report calls keeping the
    schedule: the payloads are encoded before the clock starts, so each send is a few
    microseconds of Python and librdkafka queues the rest; only a stall of the whole process on
    the busy 2-core machine could make an alert 1 s late, and a pacing bug (sending a visit at
    once, or drifting) is off by seconds over this 4 s run."""
    tolerance = 1.0
    url = demo.url("lsst")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert cli(["inject", url, "--rate", "500/2s", "--visits", "2", "--pool", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    plan = make_schedule("500/2s", visits=2)  # the schedule the command was asked for: even pacing
    assert report["ok"] and report["sent"] == report["delivered"] == plan.total == 1000
    found = read_back(url, since, report["first_id"], plan.total)
    assert len(found) == plan.total
    sent = {int(got["headers"]["genesis.seq"]): int(got["headers"]["genesis.sent_ns"]) for got in found.values()}
    assert sorted(sent) == list(range(plan.total))
    # lateness of alert k behind its planned time, counted from the first alert's send
    behind = [(sent[k] - sent[0]) / 1e9 - plan.at(k) for k in range(plan.total)]
    # never ahead of the schedule: the first alert may itself have left up to max_late behind
    # its planned time (then the next ones catch up); 5 ms for the two clocks read apart
    assert min(behind) >= -(report["max_late"] + 0.005), f"alert {behind.index(min(behind))} left early"
    assert max(behind) <= tolerance, f"alert {behind.index(max(behind))} left {max(behind):.3f} s late"
    # the second visit starts 2 s after the first, not earlier
    assert (sent[500] - sent[0]) / 1e9 >= plan.at(500) - report["max_late"] - 0.005
    assert all(
        int(got["headers"]["genesis.visit"]) == int(got["headers"]["genesis.seq"]) // 500 for got in found.values()
    )
