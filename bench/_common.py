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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: the benchmark's name (its module), which marks its section in RESULTS.md
    name: str = ""

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
    line = lambda items: "| " + " | ".join(s.rjust(w) for s, w in zip(items, widths)) + " |"
    return "\n".join([line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


@dataclass
class Context:
    """The cluster under test and the consumer runs made so far."""

    bootstrap: str
    runs: dict[tuple, dict] = field(default_factory=dict)
    started_cluster: Any = None
    #: the local cluster (genesis.cluster.LocalCluster) when the benchmarks run on one, else None
    cluster: Any = None

    def url(self, topic: str) -> str:
        return f"kafka://{self.bootstrap}/{topic}"

    def consume(self, kind: str, topic: str = "medium", *, reuse: bool = True, **options: Any) -> dict:
        """Run consumer ``kind`` (see ``_consumers.py``) on ``topic`` in its own process; its JSON result."""
        key = consume_key(kind, topic, options)
        if reuse and key in self.runs:
            return self.runs[key]
        proc = start_consumer(self, kind, topic, **options)
        result = finish_consumer(proc, timeout=options.get("timeout", 60) + 300)
        self.runs[key] = result
        return result


def consume_key(kind: str, topic: str, options: dict[str, Any]) -> tuple:
    """What identifies a consumer run in ``Context.runs``."""
    return (kind, topic, tuple(sorted(options.items())))


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
    except Exception as exc:
        found["Kafka broker"] = f"? ({exc})"
    if ctx.cluster is not None:
        jvm = ctx.cluster.jvm
        found["broker JVM profile"] = jvm if isinstance(jvm, str) else " ".join(jvm)
    try:
        from _peers import peer_versions

        found.update(peer_versions())
    except Exception as exc:
        found["peers"] = f"? ({exc})"
    return found


def ensure_cluster(bootstrap: str | None) -> Context:
    """A context on ``bootstrap``, or on the running local demo cluster, or on one started here."""
    if bootstrap:
        return Context(bootstrap)
    from genesis.cluster import LocalCluster
    from genesis.errors import ClusterError

    try:
        attached = LocalCluster.attach()
        return Context(attached.bootstrap_servers, cluster=attached)
    except (ClusterError, FileNotFoundError, OSError):
        from genesis.demo import create_demo_topics

        cluster = LocalCluster().start()  # what `genesis cluster up --demo` does
        create_demo_topics(cluster.bootstrap_servers, cluster.replication_factor)
        return Context(cluster.bootstrap_servers, started_cluster=cluster, cluster=cluster)


MARK = "<!-- section: {} -->"


def _section_blocks(text: str) -> tuple[str, dict[str, str]]:
    """RESULTS.md split into its head and its sections by name (the ``MARK`` line before each)."""
    head, blocks, name = [], {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("<!-- section: ") and line.rstrip().endswith(" -->"):
            name = line.strip()[len("<!-- section: ") : -len(" -->")]
            blocks[name] = line
        elif name is None:
            head.append(line)
        else:
            blocks[name] += line
    return "".join(head), blocks


def _block(name: str, section: Section) -> str:
    lines = [MARK.format(name), section.text(), ""]
    if section.commands:
        lines += ["Run as:", "", *[f"    {c}" for c in section.commands], ""]
    return "\n".join(lines) + "\n"


def write_results(ctx: Context, sections: list[Section], argv: list[str], seconds: float) -> None:
    """bench/RESULTS.md: machine, versions, command lines, then every section.

    Sections of benchmarks not run this time (``bench/brokers.py``, run alone) are kept from the
    previous file, after this run's, each with the date of its own run in its notes."""
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
    old = _section_blocks(RESULTS.read_text())[1] if RESULTS.exists() else {}
    names = [s.name or s.title for s in sections]
    body = [_block(n, s) for n, s in zip(names, sections)]
    body += [_kept(block) for name, block in old.items() if name not in names]
    RESULTS.write_text("\n".join(head) + "\n" + "".join(body))


KEPT = "_(Kept from an earlier run: this run did not include it.)_"


def _kept(block: str) -> str:
    marker, _, rest = block.partition("\n")
    if not rest.lstrip().startswith(KEPT):
        rest = KEPT + "\n\n" + rest
    return f"{marker}\n{rest.rstrip()}\n\n"


def write_section(name: str, section: Section) -> None:
    """Put one benchmark's section into bench/RESULTS.md (replacing its earlier one), the rest unchanged."""
    head, blocks = _section_blocks(RESULTS.read_text()) if RESULTS.exists() else ("# genesis benchmarks\n\n", {})
    blocks[name] = _block(name, section)
    RESULTS.write_text(head + "".join(b.rstrip("\n") + "\n\n" for b in blocks.values()))


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
        from genesis.inject import Payloads

        _pools[format] = Payloads(format)
    return _pools[format]


def broker_pids(ctx: Context) -> list[int]:
    """The pids of the local cluster's broker JVMs (empty when the brokers are elsewhere)."""
    if ctx.cluster is None:
        return []
    try:
        return list(ctx.cluster.pids().values())
    except Exception:
        return []


def settle(ctx: Context, below: float = 0.25, window: float = 3.0, longest: float = 120.0) -> dict[str, float]:
    """Wait until the brokers are idle: their CPU over ``window`` s is below ``below`` cores (at most
    ``longest`` s), so a benchmark does not time the brokers still busy with the previous one's data.
    Returns how long it waited and the brokers' last CPU (cores)."""
    pids = broker_pids(ctx)
    t0 = time.monotonic()
    cores = 0.0
    while pids:
        c0 = sum(cpu_seconds(p) for p in pids)
        time.sleep(window)
        cores = (sum(cpu_seconds(p) for p in pids) - c0) / window
        if cores < below or time.monotonic() - t0 > longest:
            break
    return {"waited": time.monotonic() - t0, "cores": cores}


class CpuMeter:
    """CPU seconds of some processes (and this one) between :meth:`start` and :meth:`stop`, per wall second."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def start(self) -> CpuMeter:
        self.t0, self.me0 = time.monotonic(), cpu_seconds(os.getpid())
        self.c0 = {p: cpu_seconds(p) for p in self.pids}
        self.idle0 = _idle_ticks()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        idle, total = (b - a for a, b in zip(self.idle0, _idle_ticks()))
        return {
            "wall": wall,
            "others": sum(cpu_seconds(p) - c for p, c in self.c0.items()) / wall,
            "me": (cpu_seconds(os.getpid()) - self.me0) / wall,
            "machine_busy": 1 - idle / max(total, 1),
        }


def _idle_ticks() -> tuple[int, int]:
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return ticks[3], sum(ticks)


def inject_while_reading(
    ctx: Context,
    rate: str,
    *,
    consumers: int = 1,
    topic: str = "lsst",
    idle: float = 20,
    consumer_options: dict[str, Any] | None = None,
    meter: dict[str, float] | None = None,
    **options: Any,
) -> tuple[Any, list[dict]]:
    """Start ``consumers`` live consumers on ``topic``, inject at ``rate`` once all read, collect everything.

    Returns the :class:`~genesis.inject.InjectReport` and each consumer's JSON result; ``meter``, when
    given, receives the CPU of the brokers (``brokers``, cores) and of the injector (``injector``)
    while it injected, and how busy the machine was.
    """
    from genesis.inject import inject, make_schedule

    plan = make_schedule(rate, options.get("visits"), options.get("duration"), options.get("burst"))
    pool = message_pool()
    procs = [
        start_consumer(
            ctx, "live", topic, expect=plan.total, per_visit=plan.rate.alerts, timeout=idle, **(consumer_options or {})
        )
        for _ in range(consumers)
    ]
    try:
        for proc in procs:
            wait_ready(proc)
        cpu = CpuMeter(broker_pids(ctx)).start()
        report = inject(ctx.url(topic), rate, payloads=pool, **options)
        used = cpu.stop()
        if meter is not None:
            meter.update(brokers=used["others"], injector=used["me"], machine_busy=used["machine_busy"])
            meter["wall"] = used["wall"]
        return report, [finish_consumer(p, timeout=idle + plan.seconds + 120) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
