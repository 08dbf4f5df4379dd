"""Scale out over processes: N consumers of one group on this machine, with one call.

Kafka's group protocol spreads a topic's partitions over every process opened
with the same group id (on this machine or others: start ``run_group`` on each
machine with the same group). When one joins or leaves, the partitions it gives
up are flushed first (only offsets ``commit()`` marked), so the others continue
without loss and with few duplicates. ::

    from genesis.scaleout import run_group

    report = run_group("kafka://mygroup@localhost/medium", processes=2,
                       handler="mypackage.handlers:save", filter=is_transient,
                       start_at="earliest", until_eos=True)
    print(report)

Every process runs ``gs.open(url)`` + ``stream(...)``, calls ``handler(alert)`` for
each alert and commits every ``commit_every`` alerts and at the end, i.e. only
what the handler has finished with; partitions that move to another process
are committed up to the last alert handled, so duplicates stay rare. Ctrl-C or SIGTERM stop them cleanly (the
current alert is finished, its offset committed); children never outlive the
parent: if it dies, they stop cleanly too and exit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

from ._loader import load_callable
from .errors import ConfigError

log = logging.getLogger("genesis")

#: seconds the processes get to finish cleanly after Ctrl-C / SIGTERM before they are killed
GRACE = 30.0


@dataclass
class ProcessReport:
    """What one consumer process did. Counts are ``None`` if it died without reporting (e.g. SIGKILL)."""

    index: int
    pid: int
    exitcode: int | None
    alerts: int | None = None  # processed, filtered-out ones included
    handled: int | None = None  # given to the handler
    commits: int | None = None
    partitions: list[tuple[str, int]] = field(default_factory=list)  # it handled alerts of
    first: float | None = None  # time.time() of the assignment (or the first handled alert)
    # and of the last handled alert (or the end, with until_eos)
    last: float | None = None
    error: str | None = None


@dataclass
class GroupReport:
    """The processes of a :func:`run_group` call, and totals over those that reported."""

    group: str
    processes: list[ProcessReport]
    seconds: float
    interrupted: bool = False

    @property
    def alerts(self) -> int:
        return sum(p.alerts or 0 for p in self.processes)

    @property
    def handled(self) -> int:
        return sum(p.handled or 0 for p in self.processes)

    @property
    def ok(self) -> bool:
        """Every process ended normally."""
        return all(p.exitcode == 0 and p.error is None for p in self.processes)

    @property
    def rate(self) -> float:
        """Alerts per second from the first handled alert of any process to the last one."""
        firsts = [p.first for p in self.processes if p.first is not None]
        lasts = [p.last for p in self.processes if p.last is not None]
        span = max(lasts) - min(firsts) if firsts and lasts else 0.0
        return self.alerts / span if span > 0 else 0.0

    def __str__(self) -> str:
        lines = [
            f"group {self.group}: {self.alerts} alerts, {self.handled} handled, {len(self.processes)} "
            f"processes, {self.seconds:.1f} s{' (interrupted)' if self.interrupted else ''}"
        ]
        for p in self.processes:
            parts = ",".join(f"{t}[{n}]" for t, n in p.partitions)
            lines.append(
                f"  #{p.index} pid {p.pid}: exit {p.exitcode}, alerts {p.alerts}, handled {p.handled}, "
                f"partitions {parts or '-'}" + (f", error: {p.error}" if p.error else "")
            )
        return "\n".join(lines)


def run_group(
    url: str,
    processes: int = 2,
    handler: str | Callable[..., Any] | None = None,
    *,
    start_at: Any = "latest",
    filter: Callable[[dict], Any] | None = None,
    timeout: float | None = None,
    until_eos: bool = False,
    limit: int | None = None,
    commit_every: int = 1000,
    commit: bool = True,
    metadata: bool = False,
    fields: tuple[str, ...] | None = None,
    sink: bool = False,
    workers: int = 0,
    options: dict[str, Any] | None = None,
    start_method: str = "spawn",
    grace: float = GRACE,
) -> GroupReport:
    """Run ``processes`` consumers of one group over ``url``; return when all have ended.

    handler:      ``"module:function"`` or a callable (a function from ``__main__`` or a
                  notebook too: it is cloudpickled), called as ``handler(alert)``, or
                  ``handler(alert, meta)`` with ``metadata=True``; ``None`` only counts.
    start_at:     as in ``gs.open``; a datetime or -N positions the *group* once, before
                  the processes start (so partitions moving between them resume from the
                  last commit, not from ``start_at`` again).
    filter, timeout, until_eos, limit, fields: as in ``stream(...)``, per process.
    commit_every: commit after this many processed alerts (and at the end, and for partitions
                  moving to another process: a handler is done with an alert when it returns).
    commit:       False: never commit (partitions moving between processes are then read again
                  from the group's last commit: duplicates, never loss).
    sink:         the handler stores alerts in batches (e.g. files) and returns True when everything
                  handed to it so far is stored: offsets are committed then, and after its
                  ``close()`` at the end (its ``abort()`` when the process fails), never every
                  ``commit_every`` alerts or for partitions moving away (those are read again).
    workers:      a ``gs.Pool(workers)`` per process for decoding and filtering (0: inline).
    options:      further ``gs.open`` options (``auth``, ``schemas``, ``config``, ...).

    Without a group in the URL a new one is made (printed in the report). Ctrl-C or
    SIGTERM (to this process) stop the processes cleanly; the report then says
    ``interrupted``.
    """
    from ._kafka import CONNECT_TIMEOUT, random_group_id, resolve_auth
    from ._urls import parse_url

    if not isinstance(processes, int) or processes < 1:
        raise ConfigError(f"processes must be a positive integer, not {processes!r}")
    if not isinstance(commit_every, int) or commit_every < 1:
        raise ConfigError(f"commit_every must be a positive integer, not {commit_every!r}")
    if handler is not None and not callable(handler) and not (isinstance(handler, str) and ":" in handler):
        raise ConfigError(f"handler must be 'module:function' or a callable, not {handler!r}")
    spec = parse_url(url)
    if spec.scheme != "kafka":
        raise ConfigError("run_group reads kafka:// URLs only")
    if spec.group is None:
        from dataclasses import replace

        spec = replace(spec, group=random_group_id())
    options = dict(options or {})
    if not isinstance(start_at, str):
        from ._topics import position_group

        position_group(
            spec,
            start_at,
            auth=resolve_auth(options.get("auth"), spec),
            config=options.get("config"),
            timeout=options.get("connect_timeout") or CONNECT_TIMEOUT,
        )
        start_at = "earliest"  # now only where nothing was committed (a partition added since)
    job = cloudpickle.dumps(
        dict(
            url=spec.url(),
            handler=handler,
            filter=filter,
            timeout=timeout,
            until_eos=until_eos,
            limit=limit,
            commit_every=commit_every,
            commit=commit,
            metadata=metadata,
            fields=fields,
            sink=sink,
            workers=workers,
            options={**options, "start_at": start_at},
        )
    )
    assert spec.group is not None
    return _Supervisor(spec.group, job, processes, multiprocessing.get_context(start_method), grace).run()


class _Supervisor:
    """Starts the processes, collects their reports, and stops them on Ctrl-C / SIGTERM."""

    def __init__(self, group: str, job: bytes, n: int, ctx: Any, grace: float) -> None:
        self.group, self.job, self.n, self.ctx, self.grace = group, job, n, ctx, grace

    def run(self) -> GroupReport:
        t0 = time.monotonic()
        procs: list[Any] = []
        pipes: dict[Connection, int] = {}
        reports: dict[int, dict] = {}
        interrupted = False
        restore = self._sigterm_raises()
        try:
            try:
                for i in range(self.n):
                    self._spawn(i, procs, pipes)
                self._collect(procs, pipes, reports, replace=True)
            except KeyboardInterrupt:
                interrupted = True
                self._stop(procs)
                self._collect(procs, pipes, reports, deadline=time.monotonic() + self.grace)
        finally:
            self._kill(procs)
            restore()
        return GroupReport(
            self.group,
            [self._report(i, p, reports.get(i)) for i, p in enumerate(procs)],
            time.monotonic() - t0,
            interrupted,
        )

    def _spawn(self, index: int, procs: list[Any], pipes: dict[Connection, int]) -> None:
        receive, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_child, args=(index, self.job, send), name=f"genesis-consumer-{index}")
        proc.start()
        send.close()
        procs.append(proc)
        pipes[receive] = index

    def _collect(
        self,
        procs: list[Any],
        pipes: dict[Connection, int],
        reports: dict[int, dict],
        deadline: float | None = None,
        replace: bool = False,
    ) -> None:
        """Read reports until every process has ended (or ``deadline``).

        With ``replace``, a process killed by a signal (no report) is replaced by a new one in
        the group, at most ``n`` times in all: the survivors may already have caught up and
        ended (``until_eos``), and the killed one's partitions must still be read from its
        last commit.
        """
        replaced: set[int] = set()
        while any(p.is_alive() for p in procs) or pipes:
            if deadline is not None and time.monotonic() > deadline:
                return
            for ready in wait([*pipes, *(p.sentinel for p in procs if p.is_alive())], timeout=0.5):
                if ready in pipes:
                    try:
                        reports[pipes[ready]] = ready.recv()
                    except (EOFError, OSError):  # died without a report
                        pass
                    ready.close()
                    del pipes[ready]
            for i, p in enumerate(list(procs)):
                p.join(timeout=0)
                if (
                    replace
                    and p.exitcode is not None
                    and p.exitcode < 0
                    and i not in reports
                    and i not in replaced
                    and len(replaced) < self.n
                    and i not in pipes.values()
                ):
                    replaced.add(i)
                    log.warning(
                        "consumer process %d (pid %d) was killed by signal %d; starting a replacement",
                        i,
                        p.pid,
                        -p.exitcode,
                    )
                    self._spawn(len(procs), procs, pipes)

    @staticmethod
    def _stop(procs: list[Any]) -> None:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    @staticmethod
    def _kill(procs: list[Any]) -> None:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=10)

    @staticmethod
    def _sigterm_raises() -> Callable[[], None]:
        """While supervising, SIGTERM stops the processes as Ctrl-C does; returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def raise_interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, raise_interrupt)

        def undo() -> None:
            signal.signal(signal.SIGTERM, previous)

        return undo

    @staticmethod
    def _report(index: int, proc: Any, got: dict | None) -> ProcessReport:
        return ProcessReport(index=index, pid=proc.pid, exitcode=proc.exitcode, **(got or {}))


# ---------------------------------------------------------------------------- in the child
def _child(index: int, job_blob: bytes, conn: Connection) -> None:
    import genesis.streaming as gs

    job = cloudpickle.loads(job_blob)
    report: dict[str, Any] = {"alerts": 0, "handled": 0, "commits": 0, "partitions": []}
    stream = None
    stopping = threading.Event()

    def stop() -> None:  # after the current alert; the loop then commits and closes
        stopping.set()
        if stream is not None:
            stream.stop()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():  # a second Ctrl-C: stop now, without finishing the alert
            raise KeyboardInterrupt
        stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    from ._parallel import exit_with_parent

    exit_with_parent(on_orphaned=stop, grace=GRACE)
    seen: set[tuple[str, int]] = set()
    handler: Any = None
    try:
        handler = None if job["handler"] is None else load_callable(job["handler"], "handler")
        pool = gs.Pool(job["workers"]) if job["workers"] else None
        try:
            with gs.open(job["url"], **job["options"]) as stream:
                # the handler is done with an alert before the next fetch, so revocation may commit it
                # (not a sink's: an alert it holds in an open batch is not stored yet)
                sink = job["sink"]
                stream.commit_on_revoke = job["commit"] and not sink
                if stopping.is_set():
                    stream.stop()
                every, next_commit = job["commit_every"], job["commit_every"]
                for idx, alert, meta in stream(
                    filter=job["filter"],
                    timeout=job["timeout"],
                    until_eos=job["until_eos"],
                    limit=job["limit"],
                    pool=pool,
                    metadata=True,
                    fields=job["fields"],
                ):
                    if handler is not None:
                        stored = handler(alert, meta) if job["metadata"] else handler(alert)
                        if sink and stored and job["commit"]:
                            stream.commit()
                            report["commits"] += 1
                    now = time.time()
                    report["first"] = report.get("first") or now
                    report["last"] = now
                    report["handled"] += 1
                    seen.add((meta.topic, meta.partition))
                    if job["commit"] and not sink and idx + 1 >= next_commit:  # idx counts filtered-out alerts too
                        stream.commit()
                        report["commits"] += 1
                        next_commit = idx + 1 + every
                if sink and handler is not None:
                    handler.close()  # everything handed over is stored now
                if job["commit"]:
                    stream.commit()  # everything the handler has finished with
                    report["commits"] += 1
                stats = stream.stats
                report["alerts"] = stats.alerts
                if stats.assigned_at is not None:  # the clock of the rate starts with the assignment
                    report["first"] = time.time() - (time.monotonic() - stats.assigned_at)
                if job["until_eos"] and report["alerts"]:
                    report["last"] = time.time()
        finally:
            if pool is not None:
                pool.close()
    except BaseException as exc:  # reported to the parent, which decides what to do
        if job["sink"] and handler is not None:
            handler.abort()  # its unstored alerts were not committed: they are read again
        report["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
        if stream is not None:
            report["alerts"] = stream.stats.alerts
    report["partitions"] = sorted(seen)
    try:
        conn.send(report)
    finally:
        conn.close()
    if report.get("error"):
        sys.exit(1)
