"""The notebooks run top to bottom, unattended, without an error.

``streaming-demo`` stops and restarts a broker, so it runs against a private cluster
(``fresh_cluster``) with the demo topics, found by the notebook through ``GENESIS_HOST`` and
``GENESIS_CLUSTER_DIR``. The kernel is this interpreter (a kernel spec written to a temporary
``JUPYTER_PATH``), so the notebooks see the genesis under test.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from genesis.samples import DEMO_SIZES

pytestmark = pytest.mark.integration

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "genesis-test"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running ``sys.executable``; the kernel inherits the environment set here."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "genesis tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    return KERNEL


def execute(name: str, kernel: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=240, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_notebooks_are_built_from_their_sources() -> None:
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import _build
    finally:
        sys.path.remove(str(NOTEBOOKS))
    assert _build.main(["--check"]) == 0, "run notebooks/_build.py"
    for name in _build.NOTEBOOKS:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit without outputs"


@pytest.mark.edit_loop
def test_alert_structure(kernel: str, tmp_path: Path) -> None:
    nb = execute("alert-structure", kernel, tmp_path)
    images = sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    assert images == 4  # two light curves, two cutout panels


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_streaming_demo(kernel: str, tmp_path: Path, fresh_cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from genesis.demo import create_demo_topics

    cluster = fresh_cluster()
    create_demo_topics(cluster.bootstrap_servers, cluster.replication_factor, say=lambda s: None, progress=False)
    monkeypatch.setenv("GENESIS_HOST", cluster.bootstrap_servers)
    monkeypatch.setenv("GENESIS_CLUSTER_DIR", str(cluster.dir))

    nb = execute("streaming-demo", kernel, tmp_path)

    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [text_of(c) for c in code]
    # the commit cells: without commit the second read starts over, with commit it continues
    reads = [o for c, o in zip(code, outputs) if "alerts1 = [" in c.source or "alerts2 = [" in c.source]
    # limit=25, then all of small (100, genesis.samples.DEMO_SIZES); with commit: 25, then the other 75
    small = DEMO_SIZES["small"]
    assert [r.split("Read ")[1].split(" ")[0] for r in reads] == ["25", str(small), "25", str(small - 25)]
    checks = [o.strip() for c, o in zip(code, outputs) if c.source.strip() == "set(alerts) == set(alerts1 + alerts2)"]
    assert checks == ["True"]
    robustness = next(o for o in outputs if "while a broker was down" in o)
    assert "broker 2 stopped" in robustness and f"received {DEMO_SIZES['medium']} alerts" in robustness
    webhook = next(o for o in outputs if "asteroids of" in o and "delivered" in o)  # the web service cell
    assert re.search(rf"^[1-9]\d* asteroids of {small} alerts delivered, 0 retries$", webhook, re.M), webhook
    assert "the first: ZTF" in webhook, webhook
    # (not checked: broker 2 still alive afterwards. The notebook restarted it, so its JVM is in
    # the kernel's process group and ends with the kernel; see LocalCluster._spawn.)
