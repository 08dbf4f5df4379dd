"""The stream's loop without Kafka: a scripted source (as httpx's MockTransport drives its client).

The messages are real alert packets (one-alert ZTF containers, and Fink's three-alert container);
the source plays a script of deliveries and partition events, and records every commit, so the
at-least-once rules are checked exactly: what is committed, when, and what is handed over.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pytest

import genesis.streaming as gs
from genesis import Decoder, errors
from genesis._policies import decode_error_policy
from genesis._sources import Listener, Message
from genesis._urls import StreamSpec

T0, T1 = ("alerts", 0), ("alerts", 1)


class ScriptedSource:
    """A :class:`genesis._sources.Source` that plays ``steps`` in order, one step per ``fetch``.

    Steps: ``("assign", [tp...])``, ``("revoke", [tp...])``, ``("lose", [tp...])`` (partition events,
    handled before the next delivery, as librdkafka runs callbacks inside a poll), and
    ``("deliver", [Message...])``. Once the script is played, fetches return nothing and each such
    empty fetch counts as one idle second; the source is then caught up.
    """

    bounded = False
    atomic_commits = False
    group = "scripted"

    def __init__(self, steps: Iterable[tuple[str, list]], *, stale_commits: bool = False) -> None:
        self.steps = deque(steps)
        self.listener: Listener | None = None
        self.assigned: set[tuple[str, int]] = set()
        self.commits: list[dict[tuple[str, int], int]] = []
        self.stale_commits = stale_commits
        self.empty_fetches = 0
        self.fetches = 0
        self.assigned_at: float | None = None
        self.started_at_end: set[tuple[str, int]] = set()
        self.closed = False

    def bind(self, listener: Listener) -> None:
        self.listener = listener

    def fetch(self) -> list[Message]:
        assert self.listener is not None
        self.fetches += 1
        while self.steps and self.steps[0][0] != "deliver":
            kind, tps = self.steps.popleft()
            if kind == "assign":
                self.assigned |= set(tps)
                self.assigned_at = 0.0
                self.listener.assigned(tps)
            elif kind == "revoke":
                self.listener.revoking(set(tps))
                self.assigned -= set(tps)
            else:
                self.listener.lost(set(tps))
                self.assigned -= set(tps)
        if self.steps:
            _, messages = self.steps.popleft()
            self.empty_fetches = 0
            return [Message(m.tp, m.offset, m.key, m.value, m.timestamp, m.headers) for m in messages]
        self.empty_fetches += 1
        return []

    def handed_back(self) -> None:
        pass

    def caught_up(self) -> bool:
        return not self.steps

    def idle_for(self, last_message: float) -> float:
        return float(self.empty_fetches)

    def backlog(self) -> int:
        return sum(len(m) for kind, m in self.steps if kind == "deliver")

    def lag(self) -> dict[tuple[str, int], int]:
        return {tp: 0 for tp in self.assigned}

    def commit(self, offsets: dict[tuple[str, int], int], asynchronous: bool) -> bool:
        if self.stale_commits:
            return False
        self.commits.append(dict(offsets))
        return True

    @property
    def assignment(self) -> set[tuple[str, int]]:
        return set(self.assigned)

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        return "scripted"


@pytest.fixture(scope="module")
def packets(data_dir: Path) -> list[bytes]:
    """16 real one-alert ZTF containers (schema 4.01), as ZTF sends them."""
    return [p.read_bytes() for p in sorted((data_dir / "ztf/raw/kowalski/20231012").glob("*.avro"))]


@pytest.fixture(scope="module")
def triple(data_dir: Path) -> bytes:
    """Fink's container of three ZTF alerts: one message, three records."""
    return (data_dir / "ztf/raw/fink-client/avro_multi_alerts_other.avro").read_bytes()


def msgs(tp: tuple[str, int], values: list[bytes], first: int = 0) -> list[Message]:
    return [Message(tp, first + i, None, v, 1_700_000_000_000, []) for i, v in enumerate(values)]


def stream_of(source: ScriptedSource, on_decode_error: str = "raise") -> gs.Stream:
    return gs.Stream(StreamSpec("kafka"), source, Decoder(), decode_error_policy(on_decode_error, None))


def candids(pairs: Iterable[tuple]) -> list[int]:
    return [alert["candid"] for _, alert in pairs]


def expected_candids(values: list[bytes]) -> list[int]:
    return [a["candid"] for v in values for a in Decoder().decode(v)]


def test_commit_is_the_position_after_the_last_alert_handed_over(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:10]))])
    with stream_of(source) as stream:
        got = candids(stream(limit=4))
        assert got == expected_candids(packets[:4])
        stream.commit()
        assert source.commits == [{T0: 4}]
        stream.commit()  # nothing new: nothing sent again
        assert source.commits == [{T0: 4}]
        rest = candids(stream(until_eos=True))
        assert rest == expected_candids(packets[4:10])
    assert source.commits == [{T0: 4}]  # close() flushes only what commit() marked
    assert source.closed


def test_a_message_of_several_alerts_commits_once_all_were_handed_over(packets, triple):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, [packets[0], triple, packets[1]]))])
    with stream_of(source) as stream:
        first = candids(stream(limit=2))  # the one-alert message, then the first of three
        stream.commit()
        assert source.commits == [{T0: 1}]  # not past the message still being handed over
        second = candids(stream(limit=2))  # the other two of the three
        stream.commit()
        assert source.commits[-1] == {T0: 2}
        assert first + second == expected_candids([packets[0], triple])
        assert stream.stats.received == 3 and stream.stats.alerts == 4  # fetched once, handed over in parts


def test_revocation_sends_what_commit_marked_and_was_not_sent_yet(packets):
    source = ScriptedSource(
        [
            ("assign", [T0, T1]),
            ("deliver", msgs(T0, packets[:2]) + msgs(T1, packets[2:4])),
            ("revoke", [T1]),
        ],
        stale_commits=True,
    )
    with stream_of(source) as stream:
        assert len(list(stream(limit=4))) == 4
        stream.commit()  # refused: the group is rebalancing
        source.stale_commits = False
        assert list(stream(until_eos=True)) == []  # the next fetch revokes T1
        assert source.commits == [{T1: 2}]  # sent while T1 was still ours
    assert source.commits == [{T1: 2}, {T0: 2}]  # close(): the rest of what commit() marked


def test_revocation_commits_what_was_handed_over_only_when_asked(packets):
    for commit_on_revoke, expected in ((False, []), (True, [{T0: 2}])):
        source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:2])), ("revoke", [T0])])
        with stream_of(source) as stream:
            stream.commit_on_revoke = commit_on_revoke
            assert len(list(stream(until_eos=True))) == 2
        assert source.commits == expected


def test_lost_partitions_are_forgotten_without_a_commit(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:2])), ("lose", [T0])], stale_commits=True)
    with stream_of(source) as stream:
        assert len(list(stream(limit=2))) == 2
        stream.commit()  # refused
        source.stale_commits = False
        assert list(stream(until_eos=True)) == []  # the next fetch loses T0
    assert source.commits == []  # another consumer owns T0 now: what was owed is not sent


def test_limit_keeps_the_rest_of_the_batch_for_the_next_call(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets))])
    with stream_of(source) as stream:
        parts = [candids(stream(limit=5)) for _ in range(3)] + [candids(stream(until_eos=True))]
        assert [len(p) for p in parts] == [5, 5, 5, len(packets) - 15]
        assert sum(parts, []) == expected_candids(packets)
        assert source.fetches == 1  # one fetch brought the batch; the rest waited in the buffer
        assert [idx for idx, _ in stream(until_eos=True)] == []


def test_idx_counts_filtered_alerts_and_stats_add_up(packets):
    keep = set(expected_candids(packets)[::3])
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets))])
    with stream_of(source) as stream:
        got = list(stream(until_eos=True, filter=lambda a: a["candid"] in keep))
        stats = stream.stats
    assert [a["candid"] for _, a in got] == [c for c in expected_candids(packets) if c in keep]
    assert [i for i, _ in got] == list(range(0, len(packets), 3))
    assert (stats.received, stats.alerts, stats.yielded, stats.filtered) == (
        len(packets),
        len(packets),
        len(keep),
        len(packets) - len(keep),
    )
    assert stats.bytes == sum(map(len, packets)) and stats.assigned_at == 0.0


def test_timeout_counts_idle_time_and_until_eos_ends_when_caught_up(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:2]))])
    with stream_of(source) as stream:
        assert len(list(stream(timeout=3))) == 2
        assert source.empty_fetches == 3  # it waited three (scripted) idle seconds, then stopped
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:2]))])
    with stream_of(source) as stream:
        assert len(list(stream(until_eos=True))) == 2
        assert source.empty_fetches == 0  # caught up: no waiting


def test_a_decode_error_stops_the_stream_where_it_is(packets):
    bad = packets[1][:-40]  # a real alert cut short
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, [packets[0], bad, packets[2]]))])
    with stream_of(source) as stream:
        got = []
        with pytest.raises(errors.DecodeError) as failure:
            for _, alert in stream(until_eos=True):
                got.append(alert["candid"])
        stream.commit()
    assert got == expected_candids(packets[:1])
    assert (failure.value.topic, failure.value.partition, failure.value.offset) == ("alerts", 0, 1)
    assert source.commits == [{T0: 1}]  # never past the bad packet


def test_skipped_packets_count_as_processed(packets):
    bad = packets[1][:-40]
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, [packets[0], bad, packets[2]]))])
    with stream_of(source, "skip") as stream:
        got = candids(stream(until_eos=True))
        stream.commit()
        assert stream.stats.skipped == 1
    assert got == expected_candids([packets[0], packets[2]])
    assert source.commits == [{T0: 3}]


def test_a_raising_filter_stops_before_its_alert_and_commits_nothing_past_it(packets, triple):
    victim = expected_candids([triple])[1]

    def flt(alert):
        if alert["candid"] == victim:
            raise ValueError("boom")
        return True

    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, [packets[0], triple]))])
    with stream_of(source) as stream:
        got = []
        with pytest.raises(errors.FilterError, match="ValueError: boom on alert 1") as failure:
            for _, alert in stream(until_eos=True, filter=flt):
                got.append(alert["candid"])
        stream.commit()
    assert got == expected_candids([packets[0]]) + expected_candids([triple])[:1]
    assert isinstance(failure.value.__cause__, ValueError) and failure.value.offset == 1
    assert source.commits == [{T0: 1}]  # the three-alert message is not done


def test_a_commit_the_group_refused_is_sent_again(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets[:3]))], stale_commits=True)
    with stream_of(source) as stream:
        list(stream(until_eos=True))
        stream.commit()
        assert source.commits == []  # refused (the group moved on): still owed
        source.stale_commits = False
    assert source.commits == [{T0: 3}]  # close() sent it


def test_stop_from_another_thread_ends_after_the_current_alert(packets):
    source = ScriptedSource([("assign", [T0]), ("deliver", msgs(T0, packets))])
    with stream_of(source) as stream:
        got = []
        for _, alert in stream():
            got.append(alert["candid"])
            if len(got) == 3:
                stopper = threading.Thread(target=stream.stop)
                stopper.start()
                stopper.join()
        assert got == expected_candids(packets[:3])
        assert len(candids(stream(until_eos=True))) == len(packets) - 3  # the rest is still there


def test_a_closed_stream_refuses_to_iterate_and_options_are_checked(packets):
    source = ScriptedSource([("assign", [T0])])
    stream = stream_of(source)
    with pytest.raises(errors.ConfigError, match="limit must be"):
        stream(limit=-1)
    with pytest.raises(errors.ConfigError, match="filter must be a function"):
        stream(filter=42)
    stream.close()
    with pytest.raises(errors.ConfigError, match="closed"):
        stream()
    assert "scripted" in repr(stream) and "closed" in repr(stream)


def test_a_pool_drops_work_in_flight_for_a_revoked_partition(packets):
    steps = [
        ("assign", [T0, T1]),
        ("deliver", msgs(T0, packets[:6])),
        ("deliver", msgs(T1, packets[6:12])),
        ("revoke", [T1]),
        ("deliver", msgs(T0, packets[12:], first=6)),
    ]
    with stream_of(ScriptedSource(steps)) as stream:
        inline = candids(stream(until_eos=True))
    with gs.Pool(2) as workers, stream_of(ScriptedSource(steps)) as stream:
        pooled = candids(stream(until_eos=True, pool=workers))
    # inline, T1's alerts were handed over before the revocation; with the pool they were still in
    # the workers when T1 was revoked, so they were dropped (its next owner reads them)
    assert inline == expected_candids(packets)
    assert pooled == expected_candids(packets[:6] + packets[12:])


def test_archives_and_kafka_streams_are_one_class(data_dir):
    folder = data_dir / "ztf/raw/fink-client"
    expected = sum(len(Decoder().decode(f.read_bytes())) for f in folder.glob("*.avro"))
    with gs.open(f"file://{folder}") as stream:
        assert type(stream) is gs.Stream and stream.group is None
        assert expected > 3 and sum(1 for _ in stream()) == expected  # an archive ends by itself
