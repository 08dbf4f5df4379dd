"""Where the suite's time goes: ``pytest --timing-table`` prints one row per test file.

Columns: tests; wall time (setup, call and teardown of its tests, summed); Kafka clusters started
in the test process (``LocalCluster.start``: JVMs launched until every broker serves) and brokers
restarted (``start_broker``), with the seconds each took; seconds the tests' own thread spent in
``time.sleep`` (a fault's duration or a wait on a clock, which a wait on a condition may replace).
Clusters that test subprocesses start (``genesis cluster up`` in the README and notebook tests) are
in the wall time only. Under pytest-xdist every worker counts its own tests and sends the counts
to the controller, which prints the table; the file ``build/test-timing.md`` keeps it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

COLUMNS = ("tests", "wall_s", "cluster_starts", "cluster_start_s", "broker_restarts", "broker_restart_s", "sleep_s")
TABLE = Path(__file__).resolve().parents[1] / "build" / "test-timing.md"


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class Timing:
    """The counters of one pytest process (a worker's, or the only one), and the controller's table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0.0))
        self.current = "(outside tests)"
        self._restore: list[tuple[Any, str, Any]] = []
        self._wrap()

    def _count(self, key: str, seconds: float, starts: str | None = None) -> None:
        row = self.rows[self.current]
        row[key] += seconds
        if starts:
            row[starts] += 1

    def _wrap(self) -> None:
        from genesis.cluster import LocalCluster

        sleep = time.sleep
        main = threading.main_thread()

        def counted_sleep(seconds: float) -> None:
            if threading.current_thread() is not main:
                return sleep(seconds)
            began = time.monotonic()
            try:
                return sleep(seconds)
            finally:
                self._count("sleep_s", time.monotonic() - began)

        def timed(method: Any, key: str, starts: str) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                began = time.monotonic()
                try:
                    return method(*args, **kwargs)
                finally:
                    self._count(key, time.monotonic() - began, starts)

            return wrapper

        self._patch(time, "sleep", counted_sleep)
        self._patch(LocalCluster, "start", timed(LocalCluster.start, "cluster_start_s", "cluster_starts"))
        self._patch(
            LocalCluster, "start_broker", timed(LocalCluster.start_broker, "broker_restart_s", "broker_restarts")
        )

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._restore.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    # ---------------------------------------------------------------- hooks (every process)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        self.current = _file(item.nodeid)
        yield
        self.current = "(outside tests)"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # in the controller under xdist: the reports of every worker's tests
        if hasattr(self.config, "workerinput"):
            return
        row = self.rows[_file(report.nodeid)]
        row["wall_s"] += report.duration
        if report.when == "call":
            row["tests"] += 1

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for owner, name, value in reversed(self._restore):
            setattr(owner, name, value)
        if hasattr(self.config, "workerinput"):  # a worker: its counts go to the controller
            self.config.workeroutput["genesis_timing"] = {
                name: {k: v for k, v in row.items() if k not in ("tests", "wall_s")} for name, row in self.rows.items()
            }

    # ---------------------------------------------------------------- hooks (the controller)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        for name, counts in getattr(node, "workeroutput", {}).get("genesis_timing", {}).items():
            for key, value in counts.items():
                self.rows[name][key] += value

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        table = self.table()
        TABLE.parent.mkdir(exist_ok=True)
        TABLE.write_text(table + "\n")
        terminalreporter.write_sep("=", "time per test file (also in build/test-timing.md)")
        terminalreporter.write_line(table)

    def table(self) -> str:
        rows = sorted(self.rows.items(), key=lambda kv: -kv[1]["wall_s"])
        total = dict.fromkeys(COLUMNS, 0.0)
        lines = [
            "| file | tests | wall (s) | clusters started (s) | brokers restarted (s) | in sleep (s) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in [*rows, ("total", total)]:
            if name != "total":
                for key in COLUMNS:
                    total[key] += row[key]
            lines.append(
                f"| {name} | {row['tests']:.0f} | {row['wall_s']:.1f} | {row['cluster_starts']:.0f} "
                f"({row['cluster_start_s']:.1f}) | {row['broker_restarts']:.0f} ({row['broker_restart_s']:.1f}) "
                f"| {row['sleep_s']:.1f} |"
            )
        return "\n".join(lines)


def addoption(parser: pytest.Parser) -> None:
    """``--timing-table``."""
    parser.addoption("--timing-table", action="store_true", help="print the time per test file (build/test-timing.md)")


def register(config: pytest.Config) -> None:
    """Start counting when ``--timing-table`` was given."""
    if config.getoption("--timing-table"):
        config.pluginmanager.register(Timing(config), "genesis-timing")
