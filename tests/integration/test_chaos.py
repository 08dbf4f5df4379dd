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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import genesis.streaming as gs
from genesis.cluster import LocalCluster
from genesis.demo import PARTITIONS, load_demo_topic

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

MEDIUM = 20_000
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
        cluster.stop()


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
    with gs.open(url, start_at="earliest") as stream:
        for _, alert in stream(timeout=idle):
            received.append(alert[key])
            distinct.add(alert[key])
            if commit_every and len(received) % commit_every == 0:
                stream.commit()
            if faults is not None:
                faults.passed(len(received))
            target = expected() if callable(expected) else expected
            if target is not None and len(distinct) >= target:
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
            stream.commit()
            f.write("C\\n")  # every alert written above is committed
            f.flush()
    stream.commit()
    f.write("C\\nEND\\n")
"""


def consumer_log(path: Path) -> tuple[list[int], list[int], bool]:
    """(committed candids, candids received after the last commit, whether the consumer finished)."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines.pop()  # a line cut by the kill
    last_commit = max((i for i, line in enumerate(lines) if line == "C"), default=-1)
    candids = [(i, int(line[2:])) for i, line in enumerate(lines) if line.startswith("R ")]
    return ([c for i, c in candids if i < last_commit], [c for i, c in candids if i > last_commit], "END" in lines)


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
        while sum(map(len, consumer_log(first)[:2])) < kill_at:
            assert proc.poll() is None, "the first consumer ended before it was killed"
            assert time.monotonic() < deadline, "the first consumer did not get far enough"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    committed, uncommitted, finished = consumer_log(first)
    assert committed and not finished

    # the idle clock starts at the assignment, after the dead member's session (10 s) expired
    subprocess.run([sys.executable, str(script), url, str(every), str(second), "25"], check=True, timeout=300)
    resumed, _, finished = consumer_log(second)
    assert finished

    again = set(resumed) & (set(committed) | set(uncommitted))
    assert not set(resumed) & set(committed), "alerts committed before the kill came again"
    assert set(uncommitted) <= set(resumed), "alerts received after the last commit are missing"
    assert again <= set(uncommitted)
    received = committed + uncommitted + resumed
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
            time.sleep(2)
            for node in chaos.ids:
                chaos.stop_broker(node)
                time.sleep(2)
                chaos.start_broker(node)
                wait_in_sync(chaos)
            time.sleep(2)
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
