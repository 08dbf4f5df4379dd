"""``genesis consume --format parquet`` against the real demo topics: nested columns, file rotation,
one process per file name, and offsets committed only once the file holding the alerts is closed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import genesis.streaming as gs
from genesis.samples import DEMO_SIZES

pytestmark = pytest.mark.integration

SMALL = DEMO_SIZES["small"]


def genesis(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "genesis", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert done.returncode == 0, f"genesis {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def small_alerts(demo) -> dict[int, dict]:
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        found = {alert["candid"]: alert for _, alert in stream(until_eos=True, timeout=30)}
    assert len(found) == SMALL
    return found


def finished(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.parquet"))


def rows(directory: Path) -> list[dict]:
    """Every row of the finished files (each read on its own: the files differ in writer schema)."""
    return [row for path in finished(directory) for row in pq.read_table(path).to_pylist()]


def test_every_alert_becomes_a_row_with_nested_columns_kept_nested(demo, small_alerts, tmp_path) -> None:
    out = tmp_path / "pq"
    genesis(
        "consume",
        demo.url("small"),
        "--start-at",
        "earliest",
        "--until-eos",
        "--format",
        "parquet",
        "--output",
        str(out),
        "--no-progress",
    )
    got = rows(out)
    assert sorted(r["candid"] for r in got) == sorted(small_alerts)
    assert not list(out.glob("_*.part"))  # every file was finished
    schema = pq.read_schema(finished(out)[0])
    assert pa.types.is_struct(schema.field("candidate").type)
    assert pa.types.is_list(schema.field("prv_candidates").type)
    assert pa.types.is_struct(schema.field("prv_candidates").type.value_type)
    for row in got:
        alert = small_alerts[row["candid"]]
        assert row["objectId"] == alert["objectId"]
        assert row["candidate"]["magpsf"] == pytest.approx(alert["candidate"]["magpsf"])
        assert row["candidate"]["ssnamenr"] == alert["candidate"]["ssnamenr"]
        assert len(row["prv_candidates"] or []) == len(alert["prv_candidates"] or [])
        assert row["cutoutScience"]["stampData"] == alert["cutoutScience"]["stampData"]
    # <topic>-<UTC time>-p<pid>-<batch>-<schema #>-<schema name and version>.parquet
    assert all(p.name.startswith("small-") and p.name.split("-")[2][1:].isdigit() for p in finished(out))


@pytest.mark.edit_loop
def test_a_file_per_writer_schema_and_a_new_batch_every_n_alerts(demo, small_alerts, tmp_path) -> None:
    out = tmp_path / "pq"
    genesis(
        "consume", demo.url("small"), "--start-at", "earliest", "--until-eos", "--format", "parquet",
        "--output", str(out), "--alerts-per-file", "40", "--no-progress",
    )  # fmt: skip
    files = finished(out)
    batches: dict[str, int] = {}
    for path in files:
        batch = path.name.split("-")[3]  # <topic>-<time>-p<pid>-<batch>-<schema #>-<schema>.parquet
        batches[batch] = batches.get(batch, 0) + pq.read_metadata(path).num_rows
    assert sorted(batches.values()) == [20, 40, 40]  # 100 alerts: 40 + 40 + 20
    by_schema: dict[str, set] = {}
    for path in files:  # a file holds one writer schema: its rows' alerts all have it
        schema = pq.read_schema(path)
        by_schema.setdefault(schema.to_string(show_schema_metadata=False), set()).update(
            pq.read_table(path, columns=["candid"]).column("candid").to_pylist()
        )
    assert len(by_schema) > 1  # small holds real alerts of several schema versions
    assert sum(map(len, by_schema.values())) == SMALL


def test_no_cutouts_and_fields_choose_the_columns(demo, tmp_path) -> None:
    slim, some = tmp_path / "slim", tmp_path / "some"
    common = ["--start-at", "earliest", "--until-eos", "--format", "parquet", "--no-progress"]
    genesis("consume", demo.url("small"), *common, "--output", str(slim), "--no-cutouts")
    genesis("consume", demo.url("small"), *common, "--output", str(some), "--fields", "objectId,candid,candidate")

    def binary_anywhere(kind: pa.DataType) -> bool:
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return True
        if pa.types.is_struct(kind):
            return any(binary_anywhere(kind.field(i).type) for i in range(kind.num_fields))
        if pa.types.is_list(kind):
            return binary_anywhere(kind.value_type)
        return False

    for path in finished(slim):
        assert not any(binary_anywhere(f.type) for f in pq.read_schema(path))
    for path in finished(some):
        assert sorted(pq.read_schema(path).names) == ["candid", "candidate", "objectId"]
    assert len(rows(slim)) == len(rows(some)) == SMALL
    full = sum(p.stat().st_size for p in finished(slim))
    assert full > 0


def test_processes_write_their_own_files_and_commit_what_is_in_them(demo, small_alerts, tmp_path) -> None:
    out = tmp_path / "pq"
    group = "pq-" + uuid.uuid4().hex[:8]
    args = ["consume", demo.url("small", group=group), "--start-at", "earliest", "--until-eos", "--commit"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "genesis", *args, "--format", "parquet", "--output", str(out), "--processes", "2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert {r["candid"] for r in rows(out)} == set(small_alerts)  # a partition moving between them may repeat some
    pids = {p.name.split("-")[2] for p in finished(out)}
    # written by the consumer processes, each naming its files with its pid (Kafka may give one of
    # them every partition when the other joins late)
    assert pids and f"p{proc.pid}" not in pids and all(pid[1:].isdigit() for pid in pids)
    ends = {}
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        for _, _, meta in stream(until_eos=True, metadata=True):
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    assert demo.committed("small", group) == ends


PAUSE = '''
import os, time
seen = 0

def pause_after(alert):
    """Let {n} alerts through, then stop the consumer with the next one in hand (a file open)."""
    global seen
    seen += 1
    if seen > {n}:
        open(os.environ["PAUSED"], "w").close()
        time.sleep(3600)
    return True
'''


def test_sigkill_with_a_file_open_loses_nothing_after_a_restart(demo, small_alerts, tmp_path) -> None:
    out, paused = tmp_path / "pq", tmp_path / "paused"
    (tmp_path / "pausing.py").write_text(textwrap.dedent(PAUSE.format(n=55)))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PAUSED": str(paused)}
    group = "pq-kill-" + uuid.uuid4().hex[:8]
    url = demo.url("small", group=group)
    args = ["consume", url, "--start-at", "earliest", "--until-eos", "--commit", "--format", "parquet"]
    args += ["--output", str(out), "--alerts-per-file", "25", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "genesis", *args, "--filter", "pausing:pause_after"], env=env)
    try:
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert proc.poll() is None, "the consumer ended before it paused"
            assert time.monotonic() < deadline, "the consumer did not pause"
            time.sleep(0.2)
        # 55 alerts handed over: two batches of 25 closed (and committed), 5 in open files
        assert list(out.glob("_*.part")), "no file was open"
        before = rows(out)
        assert len(before) == 50
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the two closed batches were committed; the 5 alerts of the open files were not
    assert sum(demo.committed("small", group).values()) == 50
    genesis(*args, env=env)  # restarted, without the pause: resumes from the group's commits
    got = rows(out)
    assert sorted({r["candid"] for r in got}) == sorted(small_alerts)  # every alert of the topic, in finished files
    print(f"after the restart: {len(got)} rows for {SMALL} alerts ({len(got) - SMALL} duplicates)")
    leftover = list(out.glob("_*.part"))
    assert leftover  # the killed process' open files stay behind, ignored by readers
    assert all(name.name.startswith("_") for name in leftover)
