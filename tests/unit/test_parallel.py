"""Pools and the worker side of filtering, without Kafka: real alert packets, real processes."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest

import genesis.streaming as gs
from genesis._codecs import Decoder
from genesis._parallel import Task, WorkerLost
from genesis._processing import Processor, load_outcomes
from genesis.demo import demo_messages

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def raws(data_dir) -> list[tuple[None, bytes]]:
    return [(None, m) for m in itertools.islice(demo_messages("small", data_dir), 20)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (not yet reaped by its parent) is gone for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1].startswith("Z")


def ignores_sigint(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        mask = next(line for line in f if line.startswith("SigIgn:")).split()[1]
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


class Unpicklable(Exception):
    def __init__(self, lock):
        super().__init__("cannot travel")
        self.lock = lock

    def __reduce__(self):
        raise TypeError("no pickling")


def raise_unpicklable(alert):
    raise Unpicklable(None)


def return_generator(alert):
    return (x for x in [alert["candid"]])


def sleepy(chunk):
    time.sleep(60)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_ignore_ctrl_c_and_are_gone_after_the_with(method):
    with gs.Pool(2, start_method=method) as workers:
        pids = workers.pids
        assert len(pids) == 2
        deadline = time.monotonic() + 30  # spawn workers take a while to run their initializer
        while not all(ignores_sigint(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(pids[0], signal.SIGINT)
        time.sleep(0.5)
        assert workers.pids == pids and not gone(pids[0])  # Ctrl-C belongs to the parent
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(gone(p) for p in pids)


def test_processor_results_travel_back_through_a_pool(raws):
    proc = Processor(Decoder(), lambda a: a["candid"])
    with gs.Pool(2, start_method="spawn") as workers:
        outcomes = load_outcomes(Task(workers, proc, raws[:5]).result())
    assert [o.kept[0][1] for o in outcomes] == [proc.process(*r).kept[0][1] for r in raws[:5]]


def test_unpicklable_exception_and_value_come_back_as_text(raws):
    with gs.Pool(1) as workers:
        [bad_exc] = load_outcomes(Task(workers, Processor(Decoder(), raise_unpicklable), raws[:1]).result())
        [bad_val] = load_outcomes(Task(workers, Processor(Decoder(), return_generator), raws[:1]).result())
    assert isinstance(bad_exc.filter_error, str) and "Unpicklable" in bad_exc.filter_error
    assert "cannot be sent back" in bad_val.filter_error and bad_val.failed_at == 0


@pytest.mark.parametrize("kind", ["killed", "terminated"])
def test_a_lost_task_raises_instead_of_hanging(kind):
    workers = gs.Pool(1)
    try:
        task = Task(workers, sleepy, [])
        time.sleep(0.5)
        if kind == "killed":
            os.kill(workers.pids[0], signal.SIGKILL)
        else:
            workers._pool.terminate()
        t0 = time.monotonic()
        with pytest.raises(WorkerLost, match="died|closed"):
            task.result()
        assert time.monotonic() - t0 < 5
    finally:
        workers.close()
