"""The demo sets are built once into genesis' cache: by one process when several ask at once.

Several test workers (or notebooks) loading the demo topics at the same time each built their own
copy of ``medium`` before (20,000 alerts encoded: minutes of CPU each, on a machine of 2 cores).
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from genesis.demo import demo_messages, topics
from genesis.demo.samples import DEMO_SIZES


def _count(data_dir: Path) -> int:
    return sum(1 for _ in demo_messages("small", data_dir))


def test_processes_asking_at_once_build_the_set_once(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    builds = tmp_path / "builds"
    build = topics._build

    def counted(*args, **kwargs):
        with builds.open("a") as f:
            f.write(f"{os.getpid()}\n")
        yield from build(*args, **kwargs)

    monkeypatch.setattr(topics, "_build", counted)  # inherited by the forked readers
    with multiprocessing.get_context("fork").Pool(3) as readers:
        counts = readers.map(_count, [data_dir] * 3)
    assert counts == [DEMO_SIZES["small"]] * 3
    assert len(builds.read_text().splitlines()) == 1  # one built it; the others waited and read its file
