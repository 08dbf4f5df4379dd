"""Process pools for decoding and filtering in parallel, and waiting on them with a way out.

``stream(pool=...)`` accepts ``gs.Pool(n)``, a ``multiprocessing.Pool`` or a
``concurrent.futures.ProcessPoolExecutor``. Every chunk of work becomes one
task whose result is awaited in submission order, so alerts of a partition
reach the user in offset order whatever order the workers finish in. Waiting
is done in short slices, between which the pool's health is checked: a worker
killed by the OOM killer or a pool closed under the stream raises
:class:`WorkerLost` instead of hanging forever (a lost task never completes).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from .errors import ConfigError

#: how long one wait on a worker result may block before the pool's health is checked
_SLICE = 0.5


class ApplyPool(Protocol):
    """A pool with ``apply_async`` (``gs.Pool``, ``multiprocessing.Pool``)."""

    def apply_async(self, func: Callable[..., Any], args: tuple[Any, ...] = ...) -> Any: ...


class SubmitPool(Protocol):
    """A pool with ``submit`` (``concurrent.futures.ProcessPoolExecutor``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]: ...


#: what ``stream(pool=...)`` accepts
PoolLike = ApplyPool | SubmitPool


class WorkerLost(RuntimeError):
    """A task will never complete: its worker died or the pool was closed."""


def exit_with_parent(on_orphaned: Callable[[], None] | None = None, grace: float = 10.0) -> None:
    """Never outlive the parent: when it dies, call ``on_orphaned`` (to stop cleanly), then
    exit after ``grace`` seconds at the latest (or at once without ``on_orphaned``)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if on_orphaned is not None:
            on_orphaned()
            time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, name="genesis-parent-watch", daemon=True).start()


def _init_worker() -> None:
    # A forked worker inherits the parent's objects, Kafka clients among them, whose librdkafka
    # threads exist only in the parent: if the worker's garbage collector finalized one (a client
    # in an uncollected cycle), rd_kafka_destroy would hang or crash the worker. Frozen objects
    # are never collected; a worker leaves the parent's to the parent.
    gc.freeze()
    # Ctrl-C belongs to the parent: it closes the stream and the pool; workers just go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Pool.terminate() ends workers with SIGTERM: a handler forked from the parent (an
    # application's, a test runner's) must not turn that into Python code a stuck worker never runs
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    exit_with_parent()


#: seconds a closing pool's workers get to end on SIGTERM before they are SIGKILLed
_KILL_AFTER = 5.0


class Pool:
    """A process pool whose workers ignore Ctrl-C and are terminated and joined on exit.

    ::

        with gs.Pool(4) as workers:
            for idx, alert in stream(pool=workers, filter=is_transient):
                ...

    ``start_method`` is ``"fork"``, ``"spawn"`` or ``"forkserver"`` (default: the
    platform's). Filters defined in a notebook or in ``__main__`` work with all of
    them. Workers also exit if the parent process dies (no orphans). Forked workers
    never finalize the Kafka clients they inherit (librdkafka's threads stay in the
    parent, and destroying a client without them hangs or crashes the worker); a
    ``multiprocessing.Pool`` of your own made with *fork* has no such guard.
    """

    def __init__(self, processes: int | None = None, start_method: str | None = None) -> None:
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ConfigError(f"processes must be a positive integer, not {processes!r}")
        self.processes = processes or os.cpu_count() or 1
        ctx = multiprocessing.get_context(start_method)
        with _forkable(ctx.get_start_method()):
            self._pool = ctx.Pool(self.processes, initializer=_init_worker)

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [p.pid for p in _workers(self._pool) if p.pid is not None]

    def apply_async(self, func: Callable[..., Any], args: tuple = ()) -> Any:
        return self._pool.apply_async(func, args)

    def imap(self, func: Callable[[Any], Any], iterable: Any, chunksize: int = 1) -> Iterator[Any]:
        return self._pool.imap(func, iterable, chunksize)

    def close(self) -> None:
        """Stop the workers now and wait for them: no orphan processes.

        ``multiprocessing.Pool.terminate`` sends SIGTERM and joins without a limit: a worker
        forked while another thread held a lock, or one that has not yet reset the SIGTERM
        handler it inherited, may never act on it. Whatever is alive after ``_KILL_AFTER``
        seconds is SIGKILLed, so closing cannot hang.
        """
        killer = threading.Timer(_KILL_AFTER, self._kill_workers)
        killer.daemon = True
        killer.start()
        try:
            self._pool.terminate()
            self._pool.join()
        finally:
            killer.cancel()

    def _kill_workers(self) -> None:
        for worker in _workers(self._pool):
            if worker.exitcode is None:
                with contextlib.suppress(OSError, ValueError):
                    worker.kill()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _forkable(start_method: str) -> Iterator[None]:
    """Fork workers whose garbage collector cannot reach what they inherit.

    Unreachable Kafka clients are finalized here, in the process whose threads they own;
    everything else is frozen while the workers are forked (and again by each worker, for
    those the pool forks later), so no worker's collector finalizes a client it inherited.
    """
    if start_method != "fork":
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _workers(pool: object) -> list[Any]:
    """The worker processes of a ``multiprocessing.Pool`` (it has no public list of them)."""
    return list(getattr(pool, "_pool", []))


def pool_size(pool: PoolLike) -> int:
    """How many workers ``pool`` has (a guess of 4 for pools that do not say)."""
    for attr in ("processes", "_processes", "_max_workers"):
        n = getattr(pool, attr, None)
        if isinstance(n, int) and n > 0:
            return n
    return 4


class Task:
    """One chunk of work in a pool; :meth:`result` waits for it, checking the pool meanwhile."""

    def __init__(self, pool: PoolLike, func: Callable[[Any], Any], chunk: Any) -> None:
        self._mp = getattr(pool, "_pool", pool)  # gs.Pool wraps a multiprocessing.Pool
        if hasattr(pool, "apply_async"):
            self._handle: Any = pool.apply_async(func, (chunk,))
            self._workers = list(getattr(self._mp, "_pool", []))  # the processes alive at submission
        elif hasattr(pool, "submit"):
            self._handle = pool.submit(func, chunk)
            self._workers = []
        else:
            raise ConfigError(
                f"pool= needs a process pool (gs.Pool, multiprocessing.Pool, "
                f"ProcessPoolExecutor), not {type(pool).__name__}"
            )

    def result(self) -> Any:
        """The task's return value; re-raises what the task raised; :class:`WorkerLost` if it never will."""
        while True:
            try:
                if isinstance(self._handle, Future):
                    return self._handle.result(timeout=_SLICE)
                return self._handle.get(timeout=_SLICE)
            except (TimeoutError, multiprocessing.TimeoutError):
                self._check()
            except (BrokenProcessPool, CancelledError) as exc:
                raise WorkerLost(f"the process pool broke or was shut down ({type(exc).__name__}: {exc})") from None

    def _check(self) -> None:
        # multiprocessing pools replace a dead worker silently, and its task is never run again
        if getattr(self._mp, "_state", None) == "TERMINATE" and not self._handle.ready():
            raise WorkerLost("the process pool was closed or terminated while alerts were being filtered")
        dead = [w for w in self._workers if w.exitcode is not None]
        if dead and not self._handle.ready():
            code = dead[0].exitcode
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise WorkerLost(
                f"a worker process (pid {dead[0].pid}) died ({how}, e.g. out of memory or a crash "
                "in native code) while alerts were being filtered"
            )
