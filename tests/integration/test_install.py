"""genesis installed the way users install it, into a fresh virtualenv outside the checkout.

The source distribution installs on a machine without Rust: the compiled decoder is optional,
so the build goes on without it and genesis decodes with fastavro (and says so). The wheel
carries everything the commands need: from a fresh virtualenv, with no ``../shared`` beside it
(so the demo topics are simulated) and a fresh cache (so Maven reads the packaged POM),
``genesis cluster up --demo`` starts a cluster and ``genesis consume`` reads from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.install


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _without_rust(home: Path) -> dict[str, str]:
    """The environment with no cargo to be found: not on PATH, and a HOME with no ~/.cargo."""
    cargo = shutil.which("cargo")
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (cargo and Path(p) == Path(cargo).parent)]
    path = [p for p in path if ".cargo" not in p and not (Path(p) / "cargo").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP", "RUST"))}
    env.update(PATH=os.pathsep.join(path), HOME=str(home))
    env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")  # the real cache: no second download
    return env


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)])
    (found,) = out.glob("genesis_streaming-*.tar.gz")
    return found


@pytest.mark.edit_loop
def test_the_sdist_carries_the_pom_and_the_notebooks(sdist: Path) -> None:
    import tarfile

    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {
        "genesis/cluster/pom.xml",
        "genesis/spark/pom.xml",
        "notebooks/streaming-demo.ipynb",
        "notebooks/alert-structure.ipynb",
    } <= names


def test_the_sdist_installs_and_decodes_without_rust(sdist: Path, tmp_path: Path, data_dir: Path) -> None:
    env = _without_rust(tmp_path / "home")
    assert shutil.which("cargo", path=env["PATH"]) is None
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(sdist)], env=env)
    alert = data_dir / "ztf/raw/fink-client/ZTF19acihgng.avro"
    code = (
        "import genesis, importlib.util\n"
        "from genesis import Decoder, decode_file\n"
        "print(importlib.util.find_spec('genesis._native') is None, Decoder().compiled)\n"
        f"print(decode_file({str(alert)!r})[0]['objectId'])\n"
    )
    out = _run([str(python), "-c", code], env=env, cwd=tmp_path).split()  # cwd: not the checkout
    assert out == ["True", "False", "ZTF19acihgng"]
    doctor = subprocess.run(
        [str(venv / "bin" / "genesis"), "doctor", "kafka://127.0.0.1:1/x", "--timeout", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert "fastavro; the compiled decoder is not built" in doctor.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], timeout=1200)
    (found,) = out.glob("genesis_streaming-*.whl")
    print(f"wheel: {found.name}, {found.stat().st_size:,} bytes")
    return found


@pytest.mark.timeout(1500)  # the wheel is built first (the compiled decoder with it)
def test_the_wheel_carries_what_the_commands_need(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "genesis/cluster/pom.xml",
        "genesis/spark/pom.xml",
        "genesis/notebooks/streaming-demo.ipynb",
        "genesis/py.typed",
    } <= names
    assert any(n.startswith("genesis/_native") and n.endswith(".so") for n in names)  # CI builds it (cargo)


#: a user's session with the installed wheel; the extra [rubin] is not installed
USER_CODE = """
import importlib.metadata, sys
import genesis
from genesis import Decoder
print("version", importlib.metadata.version("genesis-streaming") == genesis.__version__)
try:
    Decoder().decode(bytes.fromhex("000000044d") + b"x")  # a Rubin id (1101) without the extra
except genesis.errors.DecodeError as exc:
    print("rubin", exc)
"""


@pytest.mark.timeout(1500)  # a wheel build, a fresh venv and 20,000 simulated alerts on a 2-core machine
def test_the_wheel_runs_a_demo_cluster_from_a_fresh_virtualenv(wheel: Path, tmp_path: Path, free_base_port) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    started = time.monotonic()
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)])
    print(f"install into a fresh venv: {time.monotonic() - started:.1f} s")
    genesis = str(venv / "bin" / "genesis")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESIS_", "KAFKA_HOME", "VIRTUAL_ENV"))}
    env["GENESIS_CACHE"] = str(tmp_path / "cache")  # no jars yet: fetched with the POM of the wheel
    env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    run = tmp_path / "home"  # the user's directory: no checkout, no ../shared
    run.mkdir()
    user = _run([str(venv / "bin" / "python"), "-c", USER_CODE], env=env, cwd=run)
    assert "version True" in user and "pip install 'genesis-streaming[rubin]'" in user
    state = tmp_path / "cluster"
    port = free_base_port(1)
    try:
        # one broker: what the wheel brings is under test here, replication in test_cluster.py
        up = subprocess.run(
            [genesis, "cluster", "up", "--demo", "--brokers", "1", "--port", str(port), "--dir", str(state)],
            capture_output=True, text=True, env=env, cwd=run, timeout=900,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        assert "SIMULATED" in up.stderr  # no real alerts beside an installed wheel: the simulator, and it says so
        assert any((tmp_path / "cache").glob("kafka-*/libs/kafka_2.13-*.jar"))
        url = f"kafka://127.0.0.1:{port}/small"
        consumed = _run([genesis, "consume", url, "--start-at", "earliest", "--limit", "5"], env=env, cwd=run)
        assert sum(line.startswith("ZTF  ") for line in consumed.splitlines()) == 5
        # pyarrow and DuckDB come with the wheel: Parquet files and SQL need no extra
        _run([genesis, "consume", url, "--start-at", "earliest", "--until-eos", "--format", "parquet", "--output", "pq"]
             + ["--limit", "5"], env=env, cwd=run)  # fmt: skip
        assert list((run / "pq").rglob("*.parquet"))
        rows = _run([genesis, "query", f"SELECT candid FROM '{url}'", "--start-at", "earliest", "--limit", "3"]
                    + ["--until-eos", "--jsonl"], env=env, cwd=run)  # fmt: skip
        assert len(rows.splitlines()) == 3
        copied = _run([genesis, "notebooks", "notebooks"], env=env, cwd=run)
        assert "streaming-demo.ipynb" in copied and (run / "notebooks" / "alert-structure.ipynb").is_file()
    finally:
        subprocess.run([genesis, "cluster", "down", "--dir", str(state)], env=env, timeout=120, capture_output=True)
