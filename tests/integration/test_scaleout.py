"""Consumer processes of one group (genesis.scaleout.run_group) on the real cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from genesis.samples import DEMO_SIZES
from genesis.scaleout import run_group

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

MEDIUM = DEMO_SIZES["medium"]  # the alerts of the demo topic medium (20,000), all distinct candids


class Record:
    """A handler that appends ``candid partition offset`` to a file per process (so a killed one leaves its record)."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self._file = None

    def __call__(self, alert: dict, meta) -> None:
        if self._file is None:
            self._file = open(os.path.join(self.directory, f"{os.getpid()}.txt"), "a", buffering=1)
        self._file.write(f"{alert['candid']} {meta.partition} {meta.offset}\n")


def records(directory: Path) -> dict[int, list[tuple[int, int, int]]]:
    """Per pid, the (candid, partition, offset) it handled."""
    return {
        int(f.stem): [tuple(map(int, line.split())) for line in f.read_text().splitlines() if line.count(" ") == 2]
        for f in directory.glob("*.txt")
    }


def test_three_processes_share_medium_and_a_killed_one_loses_nothing(demo, tmp_path):
    grp = "test-group-" + uuid.uuid4().hex[:8]
    victim: dict[str, object] = {}

    def kill_one_midway() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            seen = {pid: len(rows) for pid, rows in records(tmp_path).items()}
            if len(seen) == 3 and sum(seen.values()) > MEDIUM // 5:  # all three at work, a fifth done
                pid = max(seen, key=seen.get)
                os.kill(pid, signal.SIGKILL)
                # right after the kill, before its partitions move (session timeout 10 s)
                victim.update(pid=pid, committed=demo.committed("medium", grp))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_midway, daemon=True)
    killer.start()
    report = run_group(
        demo.url("medium", group=grp),
        processes=3,
        handler=Record(tmp_path),
        metadata=True,
        start_at="earliest",
        until_eos=True,
        timeout=30,
        commit_every=200,
    )
    killer.join(timeout=10)
    print(report)
    assert "pid" in victim, "no process was killed"
    by_pid = records(tmp_path)
    # the killed process is replaced by a fourth (the survivors may have caught up and ended)
    assert len(report.processes) == 4 and len(by_pid) in (3, 4)
    dead = [p for p in report.processes if p.pid == victim["pid"]]
    assert dead and dead[0].exitcode == -signal.SIGKILL and dead[0].handled is None
    assert all(p.exitcode == 0 and p.error is None for p in report.processes if p.pid != victim["pid"])

    rows = [r for rs in by_pid.values() for r in rs]
    assert len({c for c, _, _ in rows}) == MEDIUM  # nothing lost
    counts: dict[int, int] = {}
    for c, _, _ in rows:
        counts[c] = counts.get(c, 0) + 1
    duplicates = {c for c, n in counts.items() if n > 1}
    # the duplicates are exactly the killed process's alerts after its last commit
    at_kill = victim["committed"]
    after_commit = {c for c, p, o in by_pid[victim["pid"]] if o >= at_kill.get(p, 0)}
    print(f"duplicates: {len(duplicates)}; alerts of the killed process after its last commit: {len(after_commit)}")
    assert duplicates == after_commit
    assert max(counts.values()) <= 2
    assert sum(demo.committed("medium", grp).values()) == MEDIUM


@pytest.mark.edit_loop
def test_handler_by_name_explicit_start_and_per_process_report(demo):
    import genesis.streaming as gs

    with gs.open(demo.url("small"), start_at=-5) as stream:  # partitions may hold fewer than 5
        expected = {(m.topic, m.partition) for _, _, m in stream(until_eos=True, metadata=True)}
        count = stream.stats.alerts
    assert count > 0 and expected
    report = run_group(
        demo.url("small"),
        processes=2,
        handler="genesis.alerts:summary",
        start_at=-5,
        until_eos=True,
        timeout=20,
        commit_every=3,
    )
    print(report)
    assert report.ok and report.alerts == count and report.handled == count  # the group starts at -5 once
    assert report.group and {tp for p in report.processes for tp in p.partitions} == expected


PARENT = r"""
import sys, time
from genesis.scaleout import run_group

def slow(alert):
    time.sleep(0.01)

if __name__ == "__main__":
    report = run_group(sys.argv[1], processes=2, handler=slow, start_at="earliest", timeout=60, commit_every=50)
    print("REPORT", report.interrupted, report.handled, [p.exitcode for p in report.processes], flush=True)
"""


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_children_stop_cleanly_and_never_outlive_the_parent(demo, tmp_path, sig, pid_alive):
    grp = "test-stop-" + uuid.uuid4().hex[:8]
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), demo.url("medium", group=grp)], stdout=subprocess.PIPE, text=True
    )
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not demo.committed("medium", grp):
            time.sleep(0.5)  # until they work and commit
        kids = [k for k in children_of(parent.pid) if "resource_tracker" not in Path(f"/proc/{k}/cmdline").read_text()]
        assert len(kids) == 2
        parent.send_signal(sig)
        out, _ = parent.communicate(timeout=60)
        deadline = time.monotonic() + 40
        while any(pid_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(pid_alive(k) for k in kids)
        total = sum(demo.committed("medium", grp).values())
        if sig == signal.SIGTERM:
            line = next(x for x in out.splitlines() if x.startswith("REPORT"))
            interrupted, handled, codes = line.split(" ", 3)[1:]
            assert interrupted == "True" and json.loads(codes) == [0, 0]
            assert total == int(handled)  # stopped after an alert, everything handled committed
        else:
            assert total > 0
    finally:
        parent.kill()
        parent.wait()
        for k in kids:
            if pid_alive(k):
                os.kill(k, signal.SIGKILL)
