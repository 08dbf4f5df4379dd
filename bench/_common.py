"""What every benchmark shares: the cluster, consumer subprocesses, tables, machine facts, RESULTS.md.

A benchmark module defines ``run(ctx: Context) -> Section`` and a ``main()`` that calls
:func:`standalone`; ``run_all.py`` runs them in order on one :class:`Context`, so consumer runs
made by one benchmark (``ctx.consume``) are reused by the next (the cost benchmark reads the
throughput benchmark's CPU figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONSUMER = BENCH / "_consumers.py"
RESULTS = BENCH / "RESULTS.md"
#: kinds of consumer that run in the peers' venv (bench/.peers), not in genesis' own
PEER_KINDS = {"adc", "hop"}


@dataclass
class Section:
    """One benchmark's result: a title, a table, notes (ratios, findings) and the commands run."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([f"## {self.title}", "", table(self.columns, self.rows), "", *[f"- {n}" for n in self.notes]])


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (which also reads well in a terminal)."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    line = lambda items: "| " + " | ".join(s.rjust(w) for s, w in zip(items, widths)) + " |"  # noqa: E731
    return "\n".join([line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


@dataclass
class Context:
    """The cluster under test and the consumer runs made so far."""

    bootstrap: str
    runs: dict[tuple, dict] = field(default_factory=dict)
    started_cluster: Any = None

    def url(self, topic: str) -> str:
        return f"kafka://{self.bootstrap}/{topic}"

    def consume(self, kind: str, topic: str = "medium", *, reuse: bool = True, **options: Any) -> dict:
        """Run consumer ``kind`` (see ``_consumers.py``) on ``topic`` in its own process; its JSON result."""
        key = (kind, topic, tuple(sorted(options.items())))
        if reuse and key in self.runs:
            return self.runs[key]
        proc = start_consumer(self, kind, topic, **options)
        result = finish_consumer(proc, timeout=options.get("timeout", 60) + 300)
        self.runs[key] = result
        return result


def python_for(kind: str) -> str:
    if kind in PEER_KINDS:
        from _peers import ensure_peers

        return str(ensure_peers())
    return sys.executable


def start_consumer(ctx: Context, kind: str, topic: str, **options: Any) -> subprocess.Popen:
    """Start ``_consumers.py kind`` as a subprocess; it prints ``READY`` once reading, then one JSON line."""
    args = [python_for(kind), str(CONSUMER), kind, "--bootstrap", ctx.bootstrap, "--topic", topic]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_ready(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Block until the consumer printed READY (it is assigned its partitions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "READY":
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"consumer died before it was ready: {proc.stderr.read()[-2000:]}")
    proc.kill()
    raise RuntimeError("consumer not ready in time")


def finish_consumer(proc: subprocess.Popen, timeout: float = 600) -> dict:
    """Wait for the consumer's JSON line (the last line of its output)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"consumer timed out; stderr: {err[-2000:]}") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"consumer failed (exit {proc.returncode}): {err[-3000:]}")
    return json.loads(lines[-1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """The 1-minute load average, to say whether the machine was busy."""
    return os.getloadavg()[0]


def machine() -> dict[str, str]:
    """Cores, CPU model, memory, OS, load: the first lines of RESULTS.md."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{int(mem) / 1024**2:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions(ctx: Context) -> dict[str, str]:
    """Versions of genesis, its libraries, the broker and the peers."""
    from importlib.metadata import version

    import confluent_kafka

    found = {
        "genesis": version("genesis-streaming"),
        "confluent-kafka": version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "fastavro": version("fastavro"),
    }
    try:
        from genesis.cluster import kafka_version

        found["Kafka broker"] = str(kafka_version())
    except Exception as exc:  # noqa: BLE001 - informative only
        found["Kafka broker"] = f"? ({exc})"
    try:
        from _peers import peer_versions

        found.update(peer_versions())
    except Exception as exc:  # noqa: BLE001
        found["peers"] = f"? ({exc})"
    return found


def ensure_cluster(bootstrap: str | None) -> Context:
    """A context on ``bootstrap``, or on the running local demo cluster, or on one started here."""
    if bootstrap:
        return Context(bootstrap)
    from genesis.cluster import LocalCluster
    from genesis.errors import ClusterError

    try:
        return Context(LocalCluster.attach().bootstrap_servers)
    except (ClusterError, FileNotFoundError, OSError):
        from genesis.demo import create_demo_topics

        cluster = LocalCluster().start()  # what `genesis cluster up --demo` does
        create_demo_topics(cluster.bootstrap_servers, cluster.replication_factor)
        return Context(cluster.bootstrap_servers, started_cluster=cluster)


def write_results(ctx: Context, sections: list[Section], argv: list[str], seconds: float) -> None:
    """bench/RESULTS.md: machine, versions, command lines, then every section."""
    head = [
        "# genesis benchmarks",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')} in {seconds / 60:.1f} min against `{ctx.bootstrap}` "
        f"(load average at the end: {machine_busy():.1f}).",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine().items()],
        "",
        "| versions | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in versions(ctx).items()],
        "",
        "Command: `" + " ".join([Path(sys.executable).name, *argv]) + "`",
        "",
    ]
    body = []
    for section in sections:
        body += [section.text(), ""]
        if section.commands:
            body += ["Consumers run as:", "", *[f"    {c}" for c in section.commands], ""]
    RESULTS.write_text("\n".join(head + body))


def standalone(run: Callable[[Context], Section]) -> int:
    """``python bench/<name>.py [--bootstrap B]``: run one benchmark and print its section."""
    parser = argparse.ArgumentParser(description=run.__module__)
    parser.add_argument("--bootstrap", help="bootstrap servers (default: the running local demo cluster)")
    args = parser.parse_args()
    ctx = ensure_cluster(args.bootstrap)
    try:
        print(run(ctx).text())
    finally:
        if ctx.started_cluster is not None:
            ctx.started_cluster.stop()
    return 0


# --------------------------------------------------------------------------- injecting while reading

_pools: dict[str, Any] = {}


def message_pool(format: str = "ztf") -> Any:
    """The injector's pre-encoded payloads, built once per process (a few seconds)."""
    if format not in _pools:
        from genesis.inject import MessagePool

        _pools[format] = MessagePool(format)
    return _pools[format]


def inject_while_reading(
    ctx: Context, rate: str, *, consumers: int = 1, topic: str = "lsst", idle: float = 20, **options: Any
) -> tuple[Any, list[dict]]:
    """Start ``consumers`` live consumers on ``topic``, inject at ``rate`` once all read, collect everything.

    Returns the :class:`~genesis.inject.InjectReport` and each consumer's JSON result.
    """
    from genesis.inject import inject, make_schedule

    plan = make_schedule(rate, options.get("visits"), options.get("duration"), options.get("burst"))
    pool = message_pool()
    procs = [
        start_consumer(ctx, "live", topic, expect=plan.total, per_visit=plan.rate.alerts, timeout=idle)
        for _ in range(consumers)
    ]
    try:
        for proc in procs:
            wait_ready(proc)
        report = inject(ctx.url(topic), rate, pool=pool, **options)
        return report, [finish_consumer(p, timeout=idle + plan.seconds + 120) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
