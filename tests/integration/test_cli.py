"""``genesis consume``, ``genesis topics`` and ``genesis show`` against the real demo topics."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import uuid
from pathlib import Path

import fastavro
import pytest

import genesis.streaming as gs
from genesis.filters import filter_asteroids

pytestmark = pytest.mark.integration

SMALL = 100


def genesis(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the command line as a user would, in a process of its own."""
    done = subprocess.run([sys.executable, "-m", "genesis", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"genesis {' '.join(args)} failed:\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def small_alerts(demo) -> dict[int, dict]:
    """Every alert of ``small``, by candid, read with the library."""
    with gs.open(f"kafka://{demo.bootstrap_servers}/small", start_at="earliest") as stream:
        found = {alert["candid"]: alert for _, alert in stream(until_eos=True, timeout=30)}
    assert len(found) == SMALL
    return found


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN (Fink's records hold NaNs; ``nan == nan`` is False)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def url(demo, topic: str = "small", group: str | None = None) -> str:
    return f"kafka://{group + '@' if group else ''}{demo.bootstrap_servers}/{topic}"


@pytest.mark.parametrize("command", ["consume", "topics", "show"])
def test_help_shows_examples(command: str) -> None:
    out = genesis(command, "--help").stdout
    assert "examples:" in out and f"genesis {command} kafka://" in out


def test_consume_summary(demo, small_alerts) -> None:
    done = genesis("consume", url(demo), "--start-at", "earliest", "--limit", "5")
    lines = done.stdout.splitlines()
    assert len(lines) == 5
    for line in lines:
        assert line.startswith("ZTF  ") and int(line.split()[1]) in small_alerts
    assert "5/5" in done.stderr  # the progress bar, on stderr


def test_consume_json_until_eos(demo, small_alerts) -> None:
    done = genesis("consume", url(demo), "--start-at", "earliest", "--until-eos", "--format", "json")
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(d["candid"] for d in docs) == sorted(small_alerts)
    doc = docs[0]
    raw = small_alerts[doc["candid"]]
    assert base64.b64decode(doc["cutoutScience"]["stampData"]) == raw["cutoutScience"]["stampData"]
    assert doc["candidate"]["magpsf"] == raw["candidate"]["magpsf"]


def test_consume_filter(demo, small_alerts) -> None:
    done = genesis(
        "consume",
        url(demo),
        "--start-at=earliest",
        "--until-eos",
        "--format",
        "json",
        "--no-cutouts",
        "--filter",
        "genesis.filters:filter_asteroids",
    )
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    expected = {c for c, a in small_alerts.items() if filter_asteroids(a)}
    assert expected and {d["candid"] for d in docs} == expected
    assert "stampData" not in docs[0]["cutoutScience"]


def test_consume_avro_files_decode_to_the_same_alerts(demo, small_alerts, tmp_path: Path) -> None:
    out = tmp_path / "alerts"
    genesis("consume", url(demo), "--start-at", "earliest", "--until-eos", "--format", "avro", "--output", str(out))
    files = sorted(out.glob("*.avro"))
    assert {int(f.stem) for f in files} == set(small_alerts)
    for f in files:
        with f.open("rb") as fh:
            records = list(fastavro.reader(fh))
        assert len(records) == 1 and same(records[0], small_alerts[int(f.stem)])


def test_consume_start_at_last_n_and_time(demo) -> None:
    lines = genesis("consume", url(demo), "--start-at=-1", "--until-eos").stdout.splitlines()
    assert len(lines) == 6  # the last alert of each of the 6 partitions
    lines = genesis("consume", url(demo), "--start-at", "2000-01-01T00:00:00Z", "--until-eos").stdout.splitlines()
    assert len(lines) == SMALL


def test_consume_commit_then_topics_lag(demo, small_alerts) -> None:
    group = f"cli-{uuid.uuid4().hex[:8]}"
    genesis("consume", url(demo, group=group), "--start-at", "earliest", "--limit", "30", "--commit")
    info = json.loads(genesis("topics", url(demo, group=group), "--json").stdout)
    assert info["group"] == group
    (topic,) = info["topics"]
    assert topic["messages"] == SMALL and topic["lag"] == SMALL - 30
    # partitions the group never committed start at --start-at (default latest), so say earliest
    rest = genesis(
        "consume", url(demo, group=group), "--start-at", "earliest", "--until-eos", "--commit"
    ).stdout.splitlines()
    assert len(rest) == SMALL - 30
    table = genesis("topics", url(demo, group=group)).stdout
    assert f"consumer group '{group}'" in table and table.splitlines()[-1].split()[-1] == "0"


def test_consume_processes_share_the_group(demo, small_alerts) -> None:
    group = f"cli-{uuid.uuid4().hex[:8]}"
    done = genesis(
        "consume",
        url(demo, group=group),
        "--start-at",
        "earliest",
        "--until-eos",
        "--commit",
        "--processes",
        "2",
        "--timeout",
        "15",
    )
    ids = [int(line.split()[1]) for line in done.stdout.splitlines()]
    assert set(ids) == set(small_alerts)  # at least once: a rebalance may repeat a few


def test_topics_lists_the_demo_topics(demo) -> None:
    out = genesis("topics", f"kafka://{demo.bootstrap_servers}/").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert {"small", "medium", "lsst"} <= set(rows)
    assert rows["small"][1:4] == ["6", str(demo.replication_factor), "100"]
    assert rows["medium"][3] == "20,000"
    assert rows["lsst"][4:] == ["1", "h", "1", "GiB"]


def test_show_file(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro"
    out = genesis("show", str(path)).stdout
    assert out.splitlines()[0].startswith("ZTF  1060135832015015002  ZTF19acihgng")
    assert "magpsf" in out and "detections 33, upper limits 2" in out
    png = tmp_path / "alert.png"
    genesis("show", str(data_dir / "lsst/real_fink/part-2-918301.avro"), "--index", "4", "--plot", str(png))
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 30_000


def test_show_url(demo, small_alerts, tmp_path: Path) -> None:
    first = genesis("show", url(demo)).stdout.splitlines()
    assert int(first[0].split()[1]) in small_alerts and first[1].startswith("from small[")
    at = genesis("show", url(demo), "--partition", "2", "--offset", "3", "--json").stdout
    assert json.loads(at)["candid"] in small_alerts
    png = tmp_path / "first.png"
    genesis("show", url(demo), "--plot", str(png))
    assert png.stat().st_size > 30_000
