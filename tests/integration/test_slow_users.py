"""Slow user code on the real cluster: a long step keeps the consumer in its group, up to max_hold.

The issue's own scenario: a user who commits after every alert of ``small`` spends 15 s on the
sixth, with ``max.poll.interval.ms`` at 10 s. Without a keeper librdkafka leaves the group, the
commits fail ("Unknown member") and the alerts after the last commit come again in the same
stream (95 of them, measured). With it: every alert once, every commit accepted.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from confluent_kafka import Consumer
from helpers import fault_row, record

import genesis.streaming as gs
from genesis import errors
from genesis.samples import DEMO_SIZES

SMALL = DEMO_SIZES["small"]
#: the user's long step, longer than max.poll.interval.ms (10 s) and session.timeout.ms (10 s)
LONG_STEP = 15.0


def demo_alerts_candids(demo, topic: str = "small") -> list[int]:
    with gs.open(demo.url(topic), start_at="earliest") as stream:
        return [a["candid"] for _, a in stream(until_eos=True, fields=("candid",))]


def _work(seconds: float) -> None:
    """The user's code, taking this long on one alert (the workload itself, not a synchronisation)."""
    time.sleep(seconds)


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "pool"])
def test_a_long_step_keeps_the_group_and_every_commit_lands(demo, caplog, workers):
    group = f"slow-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    caplog.set_level(logging.WARNING, logger="genesis")
    pool = gs.Pool(workers) if workers else None
    try:
        with gs.open(demo.url("small", group), start_at="earliest", config={"max.poll.interval.ms": 10000}) as stream:
            for i, (_, alert) in enumerate(stream(until_eos=True, timeout=30, pool=pool)):
                seen.append(alert["candid"])
                if i == 5:
                    _work(LONG_STEP)
                stream.commit()
            assert stream.stats.received == SMALL  # nothing fetched twice either
    finally:
        if pool is not None:
            pool.close()
    expected = set(demo_alerts_candids(demo))
    row = fault_row(
        f"user holds one alert {LONG_STEP:g} s > max.poll.interval.ms 10 s ({'pool' if workers else 'inline'})",
        1,
        expected,
        seen,
    )
    record("abuse-results", {**row, "committed": sum(demo.committed("small", group).values())})
    assert len(seen) == SMALL and len(set(seen)) == SMALL  # every alert once
    assert sum(demo.committed("small", group).values()) == SMALL  # every commit accepted
    assert not [r for r in caplog.records if "not committed" in r.getMessage()], caplog.text


@pytest.mark.edit_loop
def test_partitions_taken_away_while_an_alert_is_held_are_read_when_they_come_back(demo):
    """A second member joins the group while the user holds an alert (the keeper has paused and
    polls the consumer, so the revocation happens there), takes partitions and leaves: when they
    come back to the stream, during its own fetches, they are read. (librdkafka keeps a partition's
    pause across unassign and assign: they stayed paused, and the stream read nothing of them.)"""
    group = f"back-{uuid.uuid4().hex[:8]}"
    other = Consumer(
        {
            "bootstrap.servers": demo.bootstrap_servers,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
        }
    )
    taken: set[tuple[str, int]] = set()
    seen: set[int] = set()
    try:
        with gs.open(demo.url("small", group), start_at="earliest") as stream:
            for _, alert in stream(timeout=30):
                seen.add(alert["candid"])
                if not taken:  # the user holds the first alert while the other member comes and goes
                    other.subscribe(["small"])
                    deadline = time.monotonic() + 60
                    while not taken or taken & stream.assignment:
                        assert time.monotonic() < deadline, "the second member got no partitions"
                        other.poll(0.2)
                        taken = {(tp.topic, tp.partition) for tp in other.assignment()}
                    other.close()
                if len(seen) == SMALL:
                    break
            assert taken <= stream.assignment  # they came back
    finally:
        other.close()
    assert len(seen) == SMALL


MEDIUM = DEMO_SIZES["medium"]
#: how long the user holds the alert during which a second member comes, takes partitions and leaves
HOLD = 20.0


def _member_comes_and_goes(bootstrap: str, group: str, topic: str, partitions: int) -> set[tuple[str, int]]:
    """A second member joins ``group``, waits until it was handed ``partitions`` partitions, reads
    and commits nothing, and leaves: the partitions it took return to the first member."""
    other = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
        }
    )
    try:
        other.subscribe([topic])
        deadline = time.monotonic() + 60
        taken: set[tuple[str, int]] = set()
        while len(taken) < partitions:
            assert time.monotonic() < deadline, f"the second member got {sorted(taken)}, not {partitions} partitions"
            other.poll(0.2)
            taken = {(tp.topic, tp.partition) for tp in other.assignment()}
        return taken
    finally:
        other.close()


def test_partitions_that_come_back_resume_after_what_the_stream_handed_out(demo):
    """The issue's reproduction: a loop that commits every 500 alerts holds one alert for 20 s while a
    second member joins, is handed 3 of the 6 partitions of ``medium`` and leaves, twice in one read.
    On revoke only what ``commit()`` marked is sent, so on main the returning partitions restarted at
    the last commit: 299 alerts handed out twice. Now they resume after what this stream handed out
    (or where the group committed, if further): every alert once, but the held alert itself."""
    group = f"return-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    holds = {3250, 12250}  # held between two commits, while the other member comes and goes
    taken: list[set[tuple[str, int]]] = []
    with gs.open(demo.url("medium", group), start_at="earliest") as stream:
        for i, (_, alert) in enumerate(stream(until_eos=True, timeout=60, fields=("candid",))):
            seen.append(alert["candid"])
            if i in holds:
                started = time.monotonic()
                taken.append(_member_comes_and_goes(demo.bootstrap_servers, group, "medium", 3))
                _work(max(0.0, HOLD - (time.monotonic() - started)))
            if (i + 1) % 500 == 0:
                stream.commit()
        stream.commit()
        assert len(stream.assignment) == 6  # every partition came back
    row = fault_row(
        f"a member takes 3 of 6 partitions and leaves while one alert is held {HOLD:g} s",
        len(holds),
        set(demo_alerts_candids(demo, "medium")),
        seen,
    )
    record("abuse-results", row)
    assert all(len(t) == 3 for t in taken)
    assert len(set(seen)) == MEDIUM and row["lost"] == 0
    assert row["duplicates"] <= len(holds), f"{row['duplicates']} alerts handed out twice in one stream"


def test_past_max_hold_the_next_step_says_so(demo):
    group = f"held-{uuid.uuid4().hex[:8]}"
    # librdkafka needs max.poll.interval.ms >= session.timeout.ms; both short, so the test is quick
    config = {"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}
    with gs.open(demo.url("small", group), start_at="earliest", config=config, max_hold=2) as stream:
        steps = iter(stream(until_eos=True, timeout=30))
        next(steps)
        stream.commit()
        _work(2 + 6 + 3)  # the hold, then max.poll.interval.ms, then time for the group to let go
        with pytest.raises(errors.HeldTooLongError, match=r"max_hold=2 s.*max\.poll\.interval\.ms \(6000 ms\)"):
            next(steps)
    assert sum(demo.committed("small", group).values()) == 1  # the commit before the long step stands


def test_max_hold_is_checked(demo):
    with pytest.raises(errors.ConfigError, match="max_hold must be a positive number"):
        gs.open(demo.url("small"), max_hold=0)
