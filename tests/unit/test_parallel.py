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


def sleepy(marker):
    """Say that the task runs (create ``marker``), then take far longer than any test waits."""
    open(marker, "w").close()
    time.sleep(60)


def deaf_to_sigterm(marker):
    """A worker stuck where SIGTERM cannot reach it (as one forked while another thread held a lock)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleepy(marker)


def wait_until(what: str, condition, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_ignore_ctrl_c_and_are_gone_after_the_with(method, pid_alive):
    with gs.Pool(2, start_method=method) as workers:
        pids = workers.pids
        assert len(pids) == 2
        # spawn workers take a while to import and run their initializer, which ignores SIGINT
        wait_until("the workers to ignore SIGINT", lambda: all(ignores_sigint(p) for p in pids), timeout=60)
        # the kernel drops a signal its target ignores when it is sent, so right after kill()
        # the worker has had its Ctrl-C: no wait needed to see that it survived it
        os.kill(pids[0], signal.SIGINT)
        assert workers.pids == pids and pid_alive(pids[0])  # Ctrl-C belongs to the parent
    wait_until("the workers to end", lambda: not any(pid_alive(p) for p in pids), timeout=30)


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
def test_a_lost_task_raises_instead_of_hanging(kind, tmp_path):
    marker = tmp_path / "running"
    workers = gs.Pool(1)
    try:
        task = Task(workers, sleepy, str(marker))
        wait_until("the worker to start the task", marker.exists, timeout=60)
        if kind == "killed":
            os.kill(workers.pids[0], signal.SIGKILL)
        else:
            workers._pool.terminate()
        t0 = time.monotonic()
        with pytest.raises(WorkerLost, match="died|closed"):
            task.result()
        # a hang guard: the task would finish after 60 s (and a killed worker's never); the loss
        # is seen at the next health check, every 0.5 s, so 30 s is plenty on a busy machine
        assert time.monotonic() - t0 < 30
    finally:
        workers.close()


def test_closing_a_pool_kills_a_worker_that_ignores_sigterm(tmp_path, pid_alive):
    """multiprocessing's terminate() would wait on it forever (a CI run hung there for 120 s)."""
    marker = tmp_path / "running"
    workers = gs.Pool(1)
    [pid] = workers.pids
    Task(workers, deaf_to_sigterm, str(marker))
    wait_until("the worker to start the task", marker.exists, timeout=60)
    workers.close()  # returns: the worker is SIGKILLed after the SIGTERM grace
    assert not pid_alive(pid)


class _ClientInACycle:
    """A Kafka client that only the garbage collector can free."""

    def __init__(self) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {"bootstrap.servers": "127.0.0.1:9", "group.id": "cycle", "log_level": 0, "on_commit": self.on_commit}
        )
        self.me = self

    def on_commit(self, *args) -> None:
        pass


def _collect_garbage() -> int:
    import gc

    gc.collect()
    return os.getpid()


def test_forked_workers_never_finalize_a_kafka_client_they_inherited():
    # On main a forked worker collected the parent's uncollected clients and hung (in CI: died of
    # SIGSEGV) in rd_kafka_destroy: librdkafka's threads exist only in the parent.
    import gc

    gc.disable()
    try:
        for _ in range(3):  # one alone is sometimes destroyed cleanly
            _ClientInACycle()
        with gs.Pool(1, "fork") as workers:
            assert workers.apply_async(_collect_garbage).get(timeout=20) in workers.pids
    finally:
        gc.enable()
