"""Nothing lost: brokers killed, stopped, frozen and bounced, consumers killed, the cluster gone.

Modelled on Kafka's own system tests (``replication_test.py``, ``consumer_test.py``): a test
passes only if every alert (every acknowledged one, for the producer) is consumed; duplicates
are allowed only where at-least-once allows them, and are counted.

One private 3-broker cluster (RF 3, ``min.insync.replicas`` 2) with the demo topic ``medium``
(20,000 real-derived ZTF alerts, distinct candids) serves the whole module. Every test brings
each broker it broke back and waits until all brokers are in the ISR again before it ends, so
the next test starts from a healthy cluster; the test that stops the whole cluster runs last.

Each failure test appends a row to ``build/chaos-results.json`` (reset when the module
starts) and prints it: failure injected, how many times, alerts expected, received,
duplicates, lost (always 0).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from helpers import read_topic

import genesis.streaming as gs
from genesis import Decoder
from genesis.cluster import LocalCluster
from genesis.demo import PARTITIONS, load_demo_topic, topic_size
from genesis.filters import filter_asteroids
from genesis.samples import DEMO_SIZES

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

MEDIUM = DEMO_SIZES["medium"]  # 20,000 alerts, distinct candids (the demo set's definition)
RESULTS = Path(__file__).resolve().parents[2] / "build" / "chaos-results.json"
#: seconds a reader waits for the next alert: longer than any failover we cause
IDLE = 120


# ------------------------------------------------------------------ the cluster


@pytest.fixture(scope="module")
def chaos(
    tmp_path_factory: pytest.TempPathFactory, cluster_starter: Callable[..., LocalCluster]
) -> Iterator[LocalCluster]:
    """A private 3-broker cluster with ``medium`` loaded; its brokers may be broken (and must be restored)."""
    cluster = cluster_starter(tmp_path_factory.mktemp("kafka-chaos") / "cluster")
    try:
        assert load_demo_topic(cluster.bootstrap_servers, "medium", cluster.replication_factor) == MEDIUM
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("[]\n")
        yield cluster
    finally:
        cluster.stop(kill=True)  # throwaway


def wait_in_sync(cluster: LocalCluster, timeout: float = 120) -> None:
    """Wait until every broker is in the ISR of every partition of every topic (or fail, saying where not)."""
    deadline = time.monotonic() + timeout
    while True:
        lagging: dict[str, Any] = {}
        try:
            for topic, partitions in cluster.status().topics.items():
                for p in range(partitions):
                    isr = cluster.in_sync_replicas(topic, p)
                    if isr != cluster.ids:
                        lagging[f"{topic}[{p}]"] = isr
        except Exception as exc:  # no metadata yet while brokers come back
            lagging["metadata"] = str(exc)
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"brokers not back in the ISR after {timeout:.0f} s: {lagging}")
        time.sleep(0.5)


def restore(cluster: LocalCluster) -> None:
    """Continue frozen brokers, start stopped ones, and wait until all are in sync again."""
    running = cluster.pids()
    for node in running:
        cluster.resume_broker(node)  # SIGCONT: harmless to a broker that runs
    stopped = [node for node in cluster.ids if node not in running]
    if stopped == cluster.ids:
        cluster.start()  # one broker alone cannot register without a controller quorum
    else:
        for node in stopped:
            cluster.start_broker(node)
    wait_in_sync(cluster)


def leader_of(cluster: LocalCluster, topic: str = "medium", partition: int = 0) -> int:
    """The current leader of ``topic[partition]``, waiting out an election in progress."""
    deadline = time.monotonic() + 60
    while (node := cluster.leader(topic, partition)) < 0:
        assert time.monotonic() < deadline, f"{topic}[{partition}] has no leader"
        time.sleep(0.25)
    return node


def group_coordinator(cluster: LocalCluster, group: str) -> int:
    """The broker coordinating ``group`` (waiting until the group exists and has one)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    deadline = time.monotonic() + 60
    while True:
        try:
            (future,) = admin.describe_consumer_groups([group]).values()
            node = future.result(timeout=10).coordinator
            if node is not None and node.id >= 0:
                return node.id
        except KafkaException:  # no such group yet, or its coordinator moving
            pass
        assert time.monotonic() < deadline, f"group {group} has no coordinator"
        time.sleep(0.25)


# ------------------------------------------------------------------ failures while reading


class Faults:
    """Failure actions run in a background thread as a reader passes given alert counts.

    An action starts only after the previous one finished (a bounce includes the restart),
    so however fast the reader is, every failure happens within the one read.
    """

    def __init__(self, steps: list[tuple[int, Callable[[], None]]]) -> None:
        self._steps = sorted(steps, key=lambda s: s[0])
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.fired = 0

    def passed(self, count: int) -> None:
        """The reader has received ``count`` alerts."""
        if self.fired < len(self._steps) and count >= self._steps[self.fired][0]:
            self._join()
            action = self._steps[self.fired][1]
            self._thread = threading.Thread(target=self._run, args=(action,), daemon=True)
            self._thread.start()
            self.fired += 1

    def _run(self, action: Callable[[], None]) -> None:
        try:
            action()
        except BaseException as exc:  # handed to the test by finish()
            self._error = exc

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=240)
            assert not self._thread.is_alive(), "a failure action did not finish in 240 s"
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Wait for the last action; raise what any action raised; check all were fired."""
        self._join()
        assert self.fired == len(self._steps), f"only {self.fired} of {len(self._steps)} failures were injected"


def read_all(
    url: str,
    expected: int | Callable[[], int | None],
    *,
    faults: Faults | None = None,
    key: str = "candid",
    commit_every: int | None = None,
    idle: float = IDLE,
) -> list[Any]:
    """Read ``url`` from the start until ``expected`` distinct keys arrived (or ``idle`` s pass without
    an alert); return every key received, repeats included, in arrival order.

    ``expected`` may be a function, for a reader that starts before it is known (``None``: not yet).
    """
    received: list[Any] = []
    distinct: set[Any] = set()

    def done() -> bool:
        target = expected() if callable(expected) else expected
        return target is not None and len(distinct) >= target

    with gs.open(url, start_at="earliest") as stream:
        last = time.monotonic()
        # asked again each second without an alert: a target that becomes known after the last
        # alert arrived ends the read then, not ``idle`` s later
        while not done() and time.monotonic() - last < idle:
            for _, alert in stream(timeout=1.0):
                received.append(alert[key])
                distinct.add(alert[key])
                if commit_every and len(received) % commit_every == 0:
                    stream.commit()
                if faults is not None:
                    faults.passed(len(received))
                last = time.monotonic()  # after our own work (a fault's join), as the stream's clock
                if done():
                    break
        if commit_every:
            stream.commit()
    if faults is not None:
        faults.finish()
    return received


def report(
    test: str, failure: str, times: int, expected: int, received: list[Any], seconds: float, **extra: Any
) -> dict[str, Any]:
    """Print and append to ``build/chaos-results.json`` one row of the failure table; return it."""
    distinct = len(set(received))
    row = {
        "test": test,
        "failure": failure,
        "times": times,
        "expected": expected,
        "received": len(received),
        "duplicates": len(received) - distinct,
        "lost": expected - distinct,
        "seconds": round(seconds, 1),
        **extra,
    }
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps(rows + [row], indent=1) + "\n")
    print(f"\nCHAOS {json.dumps(row)}")
    return row


def bounce(cluster: LocalCluster, *, kill: bool, down: float = 0.0) -> Callable[[], None]:
    """An action: stop the leader of medium[0] (SIGKILL or SIGTERM), keep it down ``down`` s, start it,
    wait until it is in sync again."""

    def action() -> None:
        node = leader_of(cluster)
        cluster.stop_broker(node, kill=kill)
        time.sleep(down)
        cluster.start_broker(node)
        wait_in_sync(cluster)

    return action


# ------------------------------------------------------------------ the tests


@pytest.mark.timeout(420)
def test_leader_killed_then_terminated_while_streaming(chaos):
    """The leader of medium[0] SIGKILLed (down 10 s, then back), later the new leader SIGTERMed."""
    faults = Faults([(3000, bounce(chaos, kill=True, down=5)), (9000, bounce(chaos, kill=False, down=5))])
    t0 = time.monotonic()
    try:
        got = read_all(chaos.url("medium"), MEDIUM, faults=faults)
    finally:
        restore(chaos)
    row = report(
        "leader_killed_then_terminated",
        "partition leader SIGKILL, then SIGTERM (each down 5 s)",
        2,
        MEDIUM,
        got,
        time.monotonic() - t0,
    )
    assert row["lost"] == 0


@pytest.mark.edit_loop
@pytest.mark.timeout(420)
def test_leader_bounced_three_times_in_one_read(chaos):
    """Hard bounces (SIGKILL and restart at once) of the current leader, three times in one read."""
    faults = Faults([(n, bounce(chaos, kill=True)) for n in (2000, 7000, 12000)])
    t0 = time.monotonic()
    try:
        got = read_all(chaos.url("medium"), MEDIUM, faults=faults)
    finally:
        restore(chaos)
    row = report("leader_bounced_3x", "partition leader SIGKILL + restart", 3, MEDIUM, got, time.monotonic() - t0)
    assert row["lost"] == 0


@pytest.mark.timeout(420)
def test_broker_frozen_for_20_seconds(chaos):
    """SIGSTOP the leader of medium[0] for 20 s, then SIGCONT: the stream goes on, nothing lost."""

    def freeze() -> None:
        node = leader_of(chaos)
        chaos.pause_broker(node)
        try:
            time.sleep(20)
        finally:
            chaos.resume_broker(node)
        wait_in_sync(chaos)

    t0 = time.monotonic()
    try:
        got = read_all(chaos.url("medium"), MEDIUM, faults=Faults([(3000, freeze)]))
    finally:
        restore(chaos)
    row = report("broker_frozen_20s", "partition leader SIGSTOP 20 s, SIGCONT", 1, MEDIUM, got, time.monotonic() - t0)
    assert row["lost"] == 0


_CONSUMER = """
import sys
import genesis.streaming as gs

url, every, out, idle = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
with open(out, "w") as f, gs.open(url, start_at="earliest") as stream:
    n = 0
    for _, alert in stream(timeout=idle):
        f.write(f"R {alert['candid']}\\n")
        f.flush()
        n += 1
        if n % every == 0:
            f.write("S\\n")  # a commit starts: a kill from here to "C" may land after the brokers took it
            f.flush()
            stream.commit()
            f.write("C\\n")  # every alert written above is committed
            f.flush()
    f.write("S\\n")
    f.flush()
    stream.commit()
    f.write("C\\nEND\\n")
"""


def consumer_log(path: Path) -> tuple[list[int], list[int], list[int], bool]:
    """(committed candids, those of a commit the kill cut short (committed or not: the brokers may
    have taken it), those received after the last commit started, whether the consumer finished)."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines.pop()  # a line cut by the kill
    done = max((i for i, line in enumerate(lines) if line == "C"), default=-1)
    started = max([done, *(i for i, line in enumerate(lines) if line == "S")])
    candids = [(i, int(line[2:])) for i, line in enumerate(lines) if line.startswith("R ")]
    return (
        [c for i, c in candids if i < done],
        [c for i, c in candids if done < i < started],
        [c for i, c in candids if i > started],
        "END" in lines,
    )


@pytest.mark.timeout(420)
def test_consumer_killed_after_commits_resumes_with_its_group(chaos, tmp_path):
    """A consumer process SIGKILLed at a random point; a new one with the same group goes on from the
    last commit: nothing after it is missing, and only alerts after it come twice."""
    seed = random.randrange(10**6)
    rnd = random.Random(seed)
    every = rnd.choice([100, 250, 500])
    kill_at = rnd.randrange(3000, 9000)
    url = chaos.url("medium", group="chaos-" + uuid.uuid4().hex[:8])
    script = tmp_path / "consumer.py"
    script.write_text(_CONSUMER)
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    t0 = time.monotonic()

    proc = subprocess.Popen([sys.executable, str(script), url, str(every), str(first), str(IDLE)])
    try:
        deadline = time.monotonic() + 240
        while sum(map(len, consumer_log(first)[:3])) < kill_at:
            assert proc.poll() is None, "the first consumer ended before it was killed"
            assert time.monotonic() < deadline, "the first consumer did not get far enough"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    committed, cut_short, uncommitted, finished = consumer_log(first)
    assert committed and not finished

    # the idle clock starts at the assignment, after the dead member's session (10 s) expired
    subprocess.run([sys.executable, str(script), url, str(every), str(second), "25"], check=True, timeout=300)
    resumed, _, _, finished = consumer_log(second)
    assert finished

    again = set(resumed) & (set(committed) | set(cut_short) | set(uncommitted))
    assert not set(resumed) & set(committed), "alerts committed before the kill came again"
    assert set(uncommitted) <= set(resumed), "alerts received after the last commit are missing"
    assert again <= set(uncommitted) | set(cut_short)
    received = committed + cut_short + uncommitted + resumed
    row = report(
        "consumer_killed",
        f"consumer SIGKILL after {len(committed)} committed alerts (commit every {every}, seed {seed})",
        1,
        MEDIUM,
        received,
        time.monotonic() - t0,
        uncommitted=len(uncommitted),
    )
    print(f"consumer kill: {len(again)} duplicates, all among the {len(uncommitted)} alerts after the last commit")
    assert row["lost"] == 0 and row["duplicates"] == len(again)


@pytest.mark.timeout(480)
def test_rolling_restart_while_producing_at_the_lsst_rate(chaos):
    """``genesis inject`` at 250 alerts/s while each broker is stopped (SIGTERM) and started in turn:
    every alert is acknowledged (no DeliveryError) and every acknowledged alert is consumed, by a
    reader that runs through the restarts too."""
    from genesis.inject import LSST_RATE, MessagePool, start

    chaos.create_topic("rolling", PARTITIONS)
    pool = MessagePool("ztf", 32)  # built before the clock starts
    delivered: list[int] = []
    t0 = time.monotonic()
    with ThreadPoolExecutor(1) as background:
        reader = background.submit(read_all, chaos.url("rolling"), lambda: delivered[0] if delivered else None)
        thread, stop, result = start(chaos.url("rolling"), LSST_RATE, duration=300, pool=pool)
        try:
            # the restarts begin once alerts are arriving (the pool is built, the producer writes)
            deadline = time.monotonic() + 120
            while topic_size(chaos.bootstrap_servers, "rolling") == 0:
                assert thread.is_alive() and time.monotonic() < deadline, f"inject wrote nothing: {thread.error!r}"
                time.sleep(0.2)
            for node in chaos.ids:
                chaos.stop_broker(node)
                time.sleep(2)  # the failure itself: the broker stays down 2 s while alerts keep coming
                chaos.start_broker(node)
                wait_in_sync(chaos)
            time.sleep(2)  # and producing goes on 2 s after the last restart, before the stop
        finally:
            stop.set()
            thread.join(timeout=180)
            restore(chaos)
        assert thread.error is None and result, f"inject failed: {thread.error!r}"
        run = result[0]
        print("\n" + run.summary())
        delivered.append(run.delivered)
        got = reader.result(timeout=300)
    assert run.ok, run.errors
    assert set(got) == set(range(run.first_id, run.first_id + run.sent))
    row = report(
        "rolling_restart_producer",
        f"rolling restart (SIGTERM + start) while producing at {run.achieved_rate:.0f} alerts/s",
        len(chaos.ids),
        run.delivered,
        got,
        time.monotonic() - t0,
        producer_failed=run.failed,
    )
    assert row["lost"] == 0


@pytest.mark.timeout(480)
def test_consumer_survives_losing_the_whole_cluster(chaos):
    """Every broker stopped for 15 s (longer than the 10 s session timeout), then started: the consumer,
    committing every 1,000 alerts, carries on by itself and gets everything."""

    def blackout() -> None:
        for node in chaos.ids:
            chaos.stop_broker(node, kill=True)
        time.sleep(15)
        chaos.start()
        wait_in_sync(chaos)

    t0 = time.monotonic()
    try:
        got = read_all(chaos.url("medium"), MEDIUM, faults=Faults([(4000, blackout)]), commit_every=1000)
    finally:
        restore(chaos)
    row = report(
        "whole_cluster_lost", "all brokers SIGKILLed, down 15 s, restarted", 1, MEDIUM, got, time.monotonic() - t0
    )
    assert row["lost"] == 0


# ------------------------------------------------------------------ the exactly-once pipe under failures
#: faulthandler on: a pipe that hangs is made to print every thread's stack (see _finish)
PIPE = [sys.executable, "-X", "faulthandler", "-m", "genesis", "pipe"]


@pytest.fixture(scope="module")
def medium_asteroids(chaos: LocalCluster) -> set[int]:
    """The asteroid set of medium (what every exactly-once run must put in OUT, once each)."""
    with gs.open(chaos.url("medium"), start_at="earliest") as stream:
        found = {a["candid"] for _, a in stream(until_eos=True, filter=filter_asteroids)}
    assert found
    return found


def _pipe(chaos: LocalCluster, group: str, out: str, *extra: str) -> subprocess.Popen:
    """``genesis pipe`` of medium's asteroids into ``out`` (``extra``: its other options; the default end:
    --until-eos)."""
    end = [] if "--timeout" in extra else ["--until-eos"]
    argv = [
        *PIPE,
        chaos.url("medium", group),
        chaos.url(out),
        "--filter",
        "genesis.filters:filter_asteroids",
        "--start-at=earliest",
        "--json",
        *end,
        *extra,
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 180) -> dict:
    """The pipe's final stats; a pipe still running after ``timeout`` fails the test with its stacks and log."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack, then it dies
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"the pipe did not finish within {timeout:.0f} s; its stderr:\n{err[-12000:]}")
    assert proc.returncode == 0, err[-3000:]
    if err.strip():  # its warnings (aborted transactions, a replaced producer) go with the test's output
        print(f"pipe stderr:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _out_candids(chaos: LocalCluster, out: str, isolation: str = "read_committed") -> list[int]:
    decoder = Decoder()
    return [a["candid"] for m in read_topic(chaos.bootstrap_servers, out, isolation) for a in decoder.decode(m.value())]


def _pipe_row(failure: str, times: int, expected: set[int], got: list[int], seconds: float, **extra: Any) -> dict:
    return report("pipe", failure, times, len(expected), got, seconds, **extra)


@pytest.mark.chaos
def test_pipe_killed_three_times_at_random_and_restarted(chaos, medium_asteroids):
    rng = random.Random(20261201)
    group, out = f"pipe-kill-{uuid.uuid4().hex[:6]}", f"asteroids-kill-{uuid.uuid4().hex[:6]}"
    chaos.create_topic(out, partitions=6)
    started = time.monotonic()
    kills = 0
    for _ in range(3):
        before = topic_size(chaos.bootstrap_servers, out)
        proc = _pipe(chaos, group, out)
        deadline = time.monotonic() + 60
        while topic_size(chaos.bootstrap_servers, out) <= before and proc.poll() is None:  # it produces
            assert time.monotonic() < deadline, "the pipe produced nothing within 60 s"
            time.sleep(0.1)
        time.sleep(rng.uniform(0.1, 1.5))  # a random point of the run, mid-transaction most likely
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    stats = _finish(_pipe(chaos, group, out))
    seconds = time.monotonic() - started
    got = _out_candids(chaos, out)
    row = _pipe_row("pipe SIGKILLed at random points, restarted", kills, medium_asteroids, got, seconds)
    assert kills == 3 and row["duplicates"] == 0 and row["lost"] == 0 and set(got) == medium_asteroids
    assert stats["aborted"] == 0
    # what a reader that does not ask for committed data sees: the aborted transactions' outputs too
    uncommitted = _out_candids(chaos, out, "read_uncommitted")
    assert set(uncommitted) == medium_asteroids and len(uncommitted) > len(got), "no aborted outputs seen"
    print(f"read_uncommitted saw {len(uncommitted) - len(got)} outputs of aborted transactions")


def _pipe_while_a_broker_is_killed(
    chaos: LocalCluster, expected: set[int], name: str, failure: str, victim: Callable[[str, str], int]
) -> None:
    """Run the pipe, SIGKILL the broker ``victim(group, out)`` names 3 s in, restart it 5 s later;
    every asteroid must be in OUT exactly once."""
    group, out = f"pipe-{name}-{uuid.uuid4().hex[:6]}", f"asteroids-{name}-{uuid.uuid4().hex[:6]}"
    chaos.create_topic(out, partitions=6)
    started = time.monotonic()
    proc = _pipe(chaos, group, out)
    try:
        time.sleep(3.0)  # transactions are open and committing
        node = victim(group, out)
        chaos.stop_broker(node, kill=True)
        time.sleep(5.0)
        chaos.start_broker(node)
        stats = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        restore(chaos)
    got = _out_candids(chaos, out)
    row = _pipe_row(failure, 1, expected, got, time.monotonic() - started, aborted=stats["aborted"])
    assert row["duplicates"] == 0 and row["lost"] == 0 and set(got) == expected


@pytest.mark.chaos
def test_pipe_while_the_leader_of_its_output_is_killed(chaos, medium_asteroids):
    _pipe_while_a_broker_is_killed(
        chaos,
        medium_asteroids,
        "leader",
        "leader of OUT[0] SIGKILLed mid-transaction (5 s)",
        lambda group, out: leader_of(chaos, out, 0),
    )


@pytest.mark.chaos
def test_pipe_while_the_coordinator_of_its_group_is_killed(chaos, medium_asteroids):
    # librdkafka 2.16 can block in send_offsets_to_transaction for ever here (#5456, #5511)
    _pipe_while_a_broker_is_killed(
        chaos,
        medium_asteroids,
        "coord",
        "coordinator of the pipe's group SIGKILLed mid-transaction (5 s)",
        lambda group, out: group_coordinator(chaos, group),
    )


@pytest.mark.chaos
def test_two_pipe_processes_one_killed(chaos, medium_asteroids):
    group, out = f"pipe-two-{uuid.uuid4().hex[:6]}", f"asteroids-two-{uuid.uuid4().hex[:6]}"
    chaos.create_topic(out, partitions=6)
    started = time.monotonic()
    survivor = _pipe(chaos, group, out, "--slot", "0", "--timeout", "30")
    victim = _pipe(chaos, group, out, "--slot", "1")
    time.sleep(6.0)  # both in the group, transactions open on their partitions
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    stats = _finish(survivor)  # takes the victim's partitions after its session expires (10 s)
    got = _out_candids(chaos, out)
    row = _pipe_row(
        "two pipe processes in one group, one SIGKILLed",
        1,
        medium_asteroids,
        got,
        time.monotonic() - started,
        aborted=stats["aborted"],
    )
    assert row["duplicates"] == 0 and row["lost"] == 0 and set(got) == medium_asteroids
