"""``genesis consume``, ``genesis topics`` and ``genesis show`` against the real demo topics."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import fastavro
import pytest
from helpers import same

import genesis.streaming as gs
from genesis.demo import PARTITIONS
from genesis.filters import filter_asteroids
from genesis.samples import DEMO_SIZES

pytestmark = pytest.mark.integration

SMALL, MEDIUM = DEMO_SIZES["small"], DEMO_SIZES["medium"]  # the demo sets' definition


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
    assert "had no commits" not in done.stderr  # asked for the beginning: nothing to explain


@pytest.mark.edit_loop
def test_consume_until_eos_in_a_new_group_says_it_started_at_the_end(demo) -> None:
    # a new group, the default start (latest) and --until-eos: nothing, at once; say why and what to do
    done = genesis("consume", url(demo, group=f"new-{uuid.uuid4().hex[:6]}"), "--until-eos", "--format", "json")
    assert done.stdout == ""
    assert f"had no commits on small[{','.join(map(str, range(PARTITIONS)))}]" in done.stderr, done.stderr
    assert "started there at the end" in done.stderr and "--start-at earliest" in done.stderr


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


def test_consume_fields_holds_only_those_fields(demo, small_alerts) -> None:
    done = genesis(
        "consume",
        url(demo),
        "--start-at",
        "earliest",
        "--until-eos",
        "--fields",
        "objectId,candidate",
        "--format",
        "json",
    )
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(list(d) == ["objectId", "candidate"] for d in docs)
    assert sorted(d["candidate"]["candid"] for d in docs) == sorted(small_alerts)


def test_consume_fields_with_avro_writes_the_whole_alert(demo, small_alerts, tmp_path: Path) -> None:
    out = tmp_path / "alerts"
    genesis(
        "consume",
        url(demo),
        "--start-at",
        "earliest",
        "--until-eos",
        "--fields",
        "candidate",
        "--filter",
        "genesis.filters:filter_asteroids",
        "--format",
        "avro",
        "--output",
        str(out),
    )
    files = sorted(out.glob("*.avro"))
    expected = {c for c, a in small_alerts.items() if filter_asteroids(a)}
    assert expected and {int(f.stem) for f in files} == expected
    for f in files:
        with f.open("rb") as fh:
            records = list(fastavro.reader(fh))
        assert len(records) == 1 and same(records[0], small_alerts[int(f.stem)])


def test_consume_start_at_last_n_and_time(demo) -> None:
    lines = genesis("consume", url(demo), "--start-at=-1", "--until-eos").stdout.splitlines()
    assert len(lines) == PARTITIONS  # the last alert of each partition (each holds some of the 100)
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
    assert rows["small"][1:4] == [str(PARTITIONS), str(demo.replication_factor), str(SMALL)]
    assert rows["medium"][3] == f"{MEDIUM:,}"
    assert rows["lsst"][4:] == ["1", "h", "1", "GiB"]


def test_show_file(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro"
    with path.open("rb") as fh:
        (alert,) = fastavro.reader(fh)
    history = alert["prv_candidates"]
    limits = sum(row["magpsf"] is None for row in history)  # rows without a magnitude: upper limits
    out = genesis("show", str(path)).stdout
    assert out.splitlines()[0].startswith(f"ZTF  {alert['candid']}  {alert['objectId']}")
    # the alert itself and its previous detections (33), and the upper limits (2)
    assert "magpsf" in out and f"detections {1 + len(history) - limits}, upper limits {limits}" in out
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


def test_load_writes_one_alert_per_message_and_reads_back(cluster, data_dir: Path) -> None:
    """``genesis load URL DIR FILE``: every alert of the files, one per message, in file order;
    a one-alert file is sent byte for byte, a file of several alerts is split."""
    topic = "load-" + uuid.uuid4().hex[:8]
    cluster.create_topic(topic, partitions=1)  # one partition: the topic keeps the order of loading
    folder = data_dir / "ztf/raw/fink-client"  # 2 one-alert files and one of 3 (data README)
    lsst = data_dir / "lsst/real_fink/part-2-918301.avro"  # 7 Rubin alerts re-published by Fink
    files = sorted(folder.rglob("*.avro")) + [lsst]
    expected = []
    for f in files:
        with f.open("rb") as fh:
            records = list(fastavro.reader(fh))
        expected += [(f, record, len(records)) for record in records]
    assert len(expected) > len(files)  # some file is split
    try:
        done = genesis("load", cluster.url(topic), str(folder), str(lsst))
        assert f"loaded {len(expected)} alerts into {cluster.url(topic)}" in done.stdout
        with gs.open(cluster.url(topic), start_at="earliest") as stream:
            rows = list(stream(until_eos=True, metadata=True))
        assert len(rows) == len(expected)
        for (_, alert, meta), (f, record, n) in zip(rows, expected):
            assert same(alert, record), f
            if n == 1:
                assert meta.value == f.read_bytes()
            else:  # its own container, with the file's writer schema
                with f.open("rb") as fh:
                    schema = fastavro.reader(fh).writer_schema
                written = fastavro.reader(io.BytesIO(meta.value)).writer_schema
                assert [x["name"] for x in written["fields"]] == [x["name"] for x in schema["fields"]]
    finally:
        cluster.delete_topic(topic)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command line, for commands expected to fail (stdin: none, as in CI)."""
    return subprocess.run(
        [sys.executable, "-m", "genesis", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_topics_create_and_delete(cluster) -> None:
    name = "made-" + uuid.uuid4().hex[:8]
    url = cluster.url(name)
    done = genesis("topics", "create", url, "--partitions", "3", "--replication", "2", "--retention", "7d")
    assert f"created topic '{name}'" in done.stdout
    info = json.loads(genesis("topics", url, "--json").stdout)["topics"][0]
    assert len(info["partitions"]) == 3 and {len(p["replicas"]) for p in info["partitions"]} == {2}
    assert info["retention_ms"] == 7 * 86_400_000
    exists = run_cli("topics", "create", url)
    assert exists.returncode == 1 and f"topic '{name}' already exists" in exists.stderr
    assert "--if-not-exists" in exists.stderr and "Traceback" not in exists.stderr
    assert "exists; left as it is" in genesis("topics", "create", url, "--if-not-exists").stdout
    unasked = run_cli("topics", "delete", url)  # no terminal to ask on, no --yes
    assert unasked.returncode == 1 and "pass --yes" in unasked.stderr
    assert f"deleted topic '{name}'" in genesis("topics", "delete", url, "--yes").stdout
    gone = run_cli("topics", "delete", url, "--yes")
    assert gone.returncode == 1 and f"topic '{name}' does not exist" in gone.stderr


def test_topics_create_with_more_replicas_than_brokers_says_how_many(cluster) -> None:
    url = cluster.url("too-many-" + uuid.uuid4().hex[:8])
    done = run_cli("topics", "create", url, "--replication", "4", "--config", "cleanup.policy=delete")
    assert done.returncode == 1
    assert "cannot have 4 replicas" in done.stderr and "has 3 brokers" in done.stderr


def test_load_create_makes_the_topic_it_loads(cluster, data_dir: Path) -> None:
    name = "loaded-" + uuid.uuid4().hex[:8]
    folder = data_dir / "ztf/raw/fink-client"  # 2 one-alert files and one of 3 (data README)
    missing = run_cli("load", cluster.url(name), str(folder))
    assert missing.returncode == 1 and f"topic '{name}' does not exist" in missing.stderr
    assert "--create" in missing.stderr
    try:
        done = genesis("load", cluster.url(name), str(folder), "--create")
        assert f"created topic '{name}'" in done.stdout and f"loaded 5 alerts into {cluster.url(name)}" in done.stdout
        with gs.open(cluster.url(name), start_at="earliest") as stream:
            assert len(list(stream(until_eos=True))) == 5
        again = genesis("load", cluster.url(name), str(folder), "--create")  # exists now: just loads
        assert "created topic" not in again.stdout and "loaded 5 alerts" in again.stdout
    finally:
        cluster.delete_topic(name)
