"""What pyproject.toml tells setuptools: every package listed, the files the commands need, one version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import genesis
from genesis.cluster._jars import kafka_version, pom_path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PROJECT["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed() -> None:
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "genesis").rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == found | {"genesis.notebooks"}
    assert SETUPTOOLS["package-dir"] == {"genesis.notebooks": "notebooks"}


def test_the_files_the_commands_need_are_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    assert "pom.xml" in data["genesis.cluster"] and pom_path().parent == ROOT / "genesis" / "cluster"
    assert re.fullmatch(r"\d+\.\d+\.\d+", kafka_version())  # read from the packaged POM
    assert data["genesis.spark"] == ["pom.xml"] and (ROOT / "genesis" / "spark" / "pom.xml").is_file()
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks == ["alert-structure.ipynb", "streaming-demo.ipynb"] and data["genesis.notebooks"] == ["*.ipynb"]


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT["project"] and PROJECT["project"]["dynamic"] == ["version"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "genesis.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", genesis.__version__)


def test_every_extra_is_pinned_where_the_issue_says_and_documented() -> None:
    extras = PROJECT["project"]["optional-dependencies"]
    assert extras["rubin"] == ["lsst-alert-packet==30.2026.2700"]
    # SQL (issue: duckdb and sqlglot are core dependencies, pinned) and Parquet need no extra
    assert {"duckdb==2.0.1", "sqlglot==30.31.0", "pyarrow==26.0.1"} <= set(PROJECT["project"]["dependencies"])
    readme = (ROOT / "README.md").read_text()
    for name in extras:
        if name != "test":
            assert f"genesis-streaming[{name}]" in readme, name
