"""A consumer that stops fetching with no error is noticed and replaced, with nothing lost.

librdkafka can stop fetching an assigned partition silently (a ~35 s stall was seen in the
exactly-once chaos runs). The seam: every consumer genesis makes is recorded (``new_consumer``
wrapped), and the test pauses the first one's partitions behind genesis' back, as a stalled fetcher
would look from outside: assigned, behind the end, nothing arriving, brokers answering.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from confluent_kafka import Consumer

import genesis.streaming as gs
from genesis._sources import kafka as kafka_source
from genesis.samples import DEMO_SIZES

MEDIUM, SMALL = DEMO_SIZES["medium"], DEMO_SIZES["small"]
#: short, so the test is quick; the default is 30 s
STALL = 5.0


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> list[Consumer]:
    """The consumers genesis makes from now on, in order (the seam through which a test stalls one)."""
    made: list[Consumer] = []
    real = kafka_source.new_consumer

    def recording(*args, **kwargs) -> Consumer:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(kafka_source, "new_consumer", recording)
    return made


def _stall_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]


@pytest.mark.edit_loop
def test_a_stalled_consumer_is_rebuilt_and_nothing_is_lost(demo, consumers, caplog):
    caplog.set_level(logging.WARNING, logger="genesis")
    group = f"stall-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    stalled_at: float | None = None
    recovered_after: float | None = None
    with gs.open(demo.url("medium", group), start_at="earliest", stall_timeout=STALL) as stream:
        # the idle timeout bounds the recovery: stall time + 10 s without an alert ends the loop early
        for i, (_, alert) in enumerate(stream(until_eos=True, timeout=STALL + 10, fields=("candid",))):
            seen.append(alert["candid"])
            if i == 2000:
                first = consumers[0]
                first.pause(first.assignment())  # its fetcher stops, behind genesis' back
                stalled_at = time.monotonic()
            elif stalled_at is not None and recovered_after is None and len(consumers) > 1:
                recovered_after = time.monotonic() - stalled_at
            if (i + 1) % 1000 == 0:
                stream.commit()
        stream.commit()
    warnings = _stall_warnings(caplog)
    print(f"\nSTALL recovered after {recovered_after} s; consumers {len(consumers)}; {warnings}")
    assert len(consumers) == 2, "the stalled consumer was not replaced"
    assert len(warnings) == 1, warnings
    assert "medium[" in warnings[0] and " of " in warnings[0] and "behind the end" in warnings[0]
    assert len(set(seen)) == MEDIUM, f"{MEDIUM - len(set(seen))} alerts lost"
    assert len(seen) == MEDIUM, f"{len(seen) - MEDIUM} alerts handed out twice"
    assert sum(demo.committed("medium", group).values()) == MEDIUM


def test_an_alert_held_or_a_caught_up_stream_is_no_stall(demo, consumers, caplog):
    """The keeper pauses the partitions while the user holds an alert, and a stream at the end of its
    partitions receives nothing: neither is a stall, whatever the time."""
    caplog.set_level(logging.WARNING, logger="genesis")
    seen = 0
    with gs.open(demo.url("small"), start_at="earliest", stall_timeout=1) as stream:
        for i, _ in stream(timeout=3 * 1 + 2):
            seen += 1
            if i == 10:
                time.sleep(3 * 1)  # the user's work on one alert, three stall times long
    assert seen == SMALL
    assert len(consumers) == 1 and not _stall_warnings(caplog)


def test_stall_timeout_is_checked(demo):
    from genesis import errors

    with pytest.raises(errors.ConfigError, match="stall_timeout must be a positive number"):
        gs.open(demo.url("small"), stall_timeout=0)
