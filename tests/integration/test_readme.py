"""The README runs as written: every ``genesis ...`` line of its code blocks, in order, against real clusters.

Lines of ``genesis cluster ...`` run against private clusters started by the README's own
``genesis cluster up`` lines (one per ``up``: the plain one and the secure one), in a directory
and on ports of the test's own; every other line runs against the session's demo cluster. A
line is changed only by the substitutions listed in ``SUBSTITUTIONS`` (each says why), and no
line is skipped: ``test_every_line_is_run`` checks that the run covered all of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from webhook_server import WebhookServer

from genesis.cluster import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

README = Path(__file__).resolve().parents[2] / "README.md"

#: (pattern, replacement, why): the only changes made to a README line before it runs
SUBSTITUTIONS = [
    (
        r"kafka://(\w[\w-]*@)?localhost/",
        r"kafka://\1{bootstrap}/",
        "the test's clusters run on free ports, not 127.0.0.1:9092-9094",
    ),
    (r"\.\./shared/data", "{data}", "the test session's alert data (GENESIS_ALERTS, or ../shared/data)"),
    (
        r"(--rate \S+ )?--visits \d+",
        "--rate 200/1s --visits 1",
        "an LSST-rate run sends 10,000 alerts per 40 s visit: 200 in one second here (rates: test_inject.py)",
    ),
    (
        r"/medium --start-at earliest --until-eos",
        "/medium --start-at -20 --until-eos",
        "all 20,000 alerts of medium take minutes to read: the last 20 of each partition",
    ),
    (
        r" --demo\b",
        "",
        "loading the demo topics (20,000 alerts) again into a private cluster takes minutes: the session's "
        "demo fixture and the wheel test (test_install.py) run `cluster up --demo`",
    ),
    (
        r"^(genesis auth add .*)$",
        r"\1 --password-stdin",
        "no terminal to type the password on: it comes on stdin, into a temporary credentials file",
    ),
    (r"~/", "{tmp}/", "a temporary directory, not the user's home"),
    (r"http://localhost:8000/", "{webhook}/", "a receiver of the test's on a free port (tests/webhook_server.py)"),
]
#: and the one change to `genesis cluster` lines
CLUSTER = "each `genesis cluster` line gets `--dir` (and `up` a free `--port`) of a private cluster of the test's"


@dataclass
class Line:
    number: int  #: line of README.md where the command starts
    text: str  #: as written (continuation lines joined)


def readme_lines() -> list[Line]:
    """Every ``genesis ...`` command of the README's code blocks (``$ genesis`` in output blocks too)."""
    found, block, pending, start = [], None, "", 0
    for number, raw in enumerate(README.read_text().splitlines(), 1):
        if raw.startswith("```"):
            block = raw[3:].strip() if block is None else None
            continue
        if block is None:
            continue
        line = raw[2:] if block == "text" and raw.startswith("$ ") else raw
        if pending:
            pending += " " + line.strip()
        elif line.startswith("genesis ") and (block in ("bash", "sh") or raw.startswith("$ ")):
            pending, start = line.strip(), number
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        found.append(Line(start, re.sub(r"\s+#.*$", "", pending)))
        pending = ""
    return found


def substituted(text: str, values: dict[str, str]) -> str:
    for pattern, replacement, _ in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    return text.format(**values)


#: what a line's output must show, beyond exit status 0 (by a pattern of the line as written)
CHECKS = {
    r"consume kafka://localhost/small --start-at earliest --limit 5$": lambda out, tmp: (
        sum(row.startswith("ZTF  ") for row in out.splitlines()) == 5
    ),
    r"> asteroids\.jsonl": lambda out, tmp: (tmp / "asteroids.jsonl").stat().st_size > 0,
    r"--format avro --output alerts/": lambda out, tmp: len(list((tmp / "alerts").glob("*.avro"))) == 100,
    r"--format parquet --output parquet/": lambda out, tmp: any((tmp / "parquet").glob("*.parquet")),
    r"show .* --plot alert\.png": lambda out, tmp: (tmp / "alert.png").read_bytes()[:4] == b"\x89PNG",
    r"cluster status": lambda out, tmp: out.count("running, registered") == 3,
    r"cluster add-user carol": lambda out, tmp: "password:" in out,
    r"cluster grant carol": lambda out, tmp: "carol may now read,describe topic 'small'" in out,
    r"topics create kafka://localhost/mytopic": lambda out, tmp: "created topic 'mytopic'" in out,
    r"load kafka://localhost/another .* --create": lambda out, tmp: "created topic 'another'" in out,
    r"inject .* --format lsst": lambda out, tmp: "Rubin schema 11.1" in out,
    r"consume kafka://localhost/lsst": lambda out, tmp: bool(out.strip()),
    r"notebooks ~/genesis-notebooks": lambda out, tmp: (tmp / "genesis-notebooks" / "streaming-demo.ipynb").is_file(),
    r"auth add": lambda out, tmp: "saved the login of me for alerts.example.org" in out,
}


def test_every_line_is_run(demo, data_dir, free_base_port, tmp_path) -> None:
    lines = readme_lines()
    assert len(lines) >= 25 and any(line.text.startswith("genesis cluster up") for line in lines)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GENESIS_") or k in ("GENESIS_CACHE", "GENESIS_ALERTS")
    }
    env["GENESIS_AUTH_FILE"] = str(tmp_path / "auth.toml")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the `genesis` of this interpreter
    receiver = WebhookServer()
    values = {"bootstrap": demo.bootstrap_servers, "data": str(data_dir), "tmp": str(cwd), "webhook": receiver.base}
    parent = Path(tempfile.mkdtemp(prefix="genesis-readme-"))  # not under pytest's basetemp (see test_security)
    clusters: list[Path] = []
    for topic in ("mytopic", "another"):
        demo.delete_topic(topic)
    ran, checked = [], set()
    try:
        receiver.__enter__()
        for line in lines:
            command = substituted(line.text, values)
            if command.startswith("genesis cluster "):
                if command.startswith("genesis cluster up"):
                    clusters.append(parent / f"cluster{len(clusters) + 1}")
                    brokers = int(re.search(r"--brokers (\d+)", command)[1]) if "--brokers" in command else 3
                    command += f" --port {free_base_port(brokers)}"
                assert clusters, f"README.md:{line.number}: a cluster line before any `genesis cluster up`"
                command += f" --dir {clusters[-1]}"
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                input="a-password\n" if "--password-stdin" in command else None,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"README.md:{line.number}: {line.text}\nran: {command}\n{done.stderr[-3000:]}"
            for pattern, check in CHECKS.items():
                if re.search(pattern, line.text):
                    assert check(done.stdout, cwd), f"README.md:{line.number}: {line.text}\n{done.stdout[-3000:]}"
                    checked.add(pattern)
            ran.append(line.number)
    finally:
        receiver.__exit__()
        for directory in clusters:
            if (directory / "cluster.json").exists():
                LocalCluster.attach(directory, require_running=False).stop()
        shutil.rmtree(parent, ignore_errors=True)
        demo.delete_topic("another")
    assert ran == [line.number for line in lines]  # no line skipped
    asteroids = [json.loads(seen.body) for seen in receiver.seen]
    assert asteroids and all(a["candidate"]["ssnamenr"] not in (None, "null") for a in asteroids)  # the webhook line
    assert all(seen.headers["Authorization"] == "Bearer TOKEN" for seen in receiver.seen)
    assert checked == set(CHECKS), f"checks that matched no README line: {set(CHECKS) - checked}"
    assert "mytopic" not in LocalCluster.attach(demo.dir).status().topics  # the README's own delete ran


def test_the_substitutions_change_only_what_they_say() -> None:
    values = {"bootstrap": "127.0.0.1:1,127.0.0.1:2", "data": "/d", "tmp": "/t", "webhook": "http://127.0.0.1:7"}
    assert substituted("genesis pipe kafka://n@localhost/small http://localhost:8000/alerts", values).endswith(
        "/small http://127.0.0.1:7/alerts"
    )
    assert (
        substituted("genesis topics kafka://me@localhost/medium", values)
        == "genesis topics kafka://me@127.0.0.1:1,127.0.0.1:2/medium"
    )
    assert substituted("genesis load kafka://localhost/x ../shared/data/ztf/raw", values).endswith("/x /d/ztf/raw")
    assert substituted("genesis cluster up --demo", values) == "genesis cluster up"
    assert substituted("genesis inject kafka://localhost/lsst --format lsst --visits 3", values).endswith(
        "--format lsst --rate 200/1s --visits 1"
    )
    assert all(why for _, _, why in SUBSTITUTIONS) and CLUSTER
