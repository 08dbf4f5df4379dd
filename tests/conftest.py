"""Fixtures shared by unit and integration tests.

* ``data_dir`` (session): the real alert packets; tests never invent alerts.
* ``pid_alive`` (session): ``pid_alive(pid)``, the one check of "is this process still running".
* ``notebook_filters`` (session): ``filter_asteroids`` and ``is_transient`` exactly as the demo
  notebook defines them (its source, executed), to derive expected selections from.
* ``registry_server`` (function): a real HTTP server speaking the Confluent schema registry API.
* unit tests (``tests/unit``) get a private ``GENESIS_CACHE`` per module, so they never read or
  write the user's ``~/.cache/genesis``; integration tests keep the real cache (Kafka's jars).
"""

from __future__ import annotations

import ast
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import timing
from fastavro.schema import load_schema_ordered

from genesis.demo import alert_data_dir

TESTS = Path(__file__).resolve().parent
UNIT = TESTS / "unit"
NOTEBOOK = TESTS.parent / "notebooks" / "streaming-demo.py"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real alert packets (``$GENESIS_ALERTS`` or ``../shared/data``); tests never invent alerts."""
    path = alert_data_dir()
    if path is None:
        pytest.fail("real alert data not found: set GENESIS_ALERTS or check out beside ../shared/data")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--seed N``: the seed of randomised fault schedules (``test_nemesis.py``; else $GENESIS_NEMESIS_SEED);
    ``--timing-table``: the time per test file (``tests/timing.py``); ``--edit-loop``: the unit tests and
    the integration tests marked ``edit_loop`` only (``make test-fast``)."""
    parser.addoption("--seed", type=int, default=None, help="seed of the nemesis' fault schedule (default: random)")
    parser.addoption(
        "--edit-loop", action="store_true", help="the unit tests and one integration test per module (edit_loop)"
    )
    timing.addoption(parser)


#: test files that take minutes (measured with ``--timing-table``), in the order they start. pytest-xdist
#: (``--dist loadfile --no-loadscope-reorder``) hands the first three files to the three workers, then
#: one more file to each worker with at most two tests pending (the second and the third: the first
#: has ten), and the next file to whichever worker gets down to two pending tests. So the nemesis
#: and the long night, which load both cores, run one after the other on the second worker.
LONGEST_FIRST = (
    "test_chaos.py",
    "test_nemesis.py",
    "test_token_login.py",
    "test_long_night.py",
    "test_readme.py",
    "test_notebooks.py",
    "test_install.py",
    "test_slow_users.py",
    "test_spark.py",
    "test_hostile_network.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest test files first (order is free: tests are independent of it); ``--edit-loop``:
    keep the unit tests and the integration tests marked ``edit_loop``."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)) if UNIT not in item.path.parents else len(rank))
    if not config.getoption("--edit-loop"):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if UNIT in item.path.parents or item.get_closest_marker("edit_loop") else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (CI's time limit, a killed job) ends the run like Ctrl-C, so fixtures tear down
    their Kafka clusters and processes instead of leaving them behind."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    # A process forked by a test (a multiprocessing.Pool worker) must die of SIGTERM as any process
    # does: a Python handler runs only when the interpreter gets control back, which a worker stuck
    # in C (a lock its parent's threads held at the fork) never does, and Pool.terminate() then
    # joins it for ever (CI: test_limit_and_break_...[multiprocessing] hung 600 s in p.join()).
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    timing.register(config)


# ------------------------------------------------------------------ processes


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists and is not a zombie (ended, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # "pid (comm) state ...": comm may itself hold ") ", so split at the last one
            state = f.read().rsplit(") ", 1)[1][:1]
    except (FileNotFoundError, ProcessLookupError):  # reaped between the two looks
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="session", name="pid_alive")
def pid_alive_fixture():
    """``pid_alive(pid)``: see :func:`pid_alive`."""
    return pid_alive


# ------------------------------------------------------------------ a private cache for unit tests


@pytest.fixture(scope="module", autouse=True)
def _unit_tests_use_a_private_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``GENESIS_CACHE`` points into a temporary directory for every module under ``tests/unit``.

    Module scope, so that module-scoped fixtures (which run before function-scoped ones) are
    covered too; worker processes the tests start inherit it through the environment.
    """
    if UNIT not in Path(request.path).resolve().parents:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENESIS_CACHE", str(tmp_path_factory.mktemp("genesis-cache")))
        yield


# ------------------------------------------------------------------ the notebook's own filters


@pytest.fixture(scope="session")
def notebook_filters() -> SimpleNamespace:
    """``filter_asteroids`` and ``is_transient`` as ``notebooks/streaming-demo.py`` writes them,
    executed from its source (with the notebook's own pandas/numpy/astropy imports)."""
    tree = ast.parse(NOTEBOOK.read_text(), str(NOTEBOOK))
    wanted = {"filter_asteroids", "is_transient"}
    nodes = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name in wanted)
        or (
            isinstance(node, ast.Import)
            and all(alias.name.split(".")[0] in ("pandas", "numpy", "astropy") for alias in node.names)
        )
    ]
    assert {n.name for n in nodes if isinstance(n, ast.FunctionDef)} == wanted, f"{NOTEBOOK} changed"
    namespace: dict = {}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return SimpleNamespace(**{name: namespace[name] for name in wanted})


# ------------------------------------------------------------------ a schema registry


class RegistryHandler(BaseHTTPRequestHandler):
    """The endpoints of a Confluent schema registry genesis uses, in memory.

    ``GET /schemas/ids/N``, ``GET /subjects/S/versions/V``, ``POST /subjects/S/versions``
    (registering the same schema again returns its id); ``auth``: the ``Authorization``
    header required (``None``: none). The fixture makes a subclass per test, so the class
    attributes below are that test's state.
    """

    schemas: list[dict] = []
    auth: str | None = None
    seen_content_types: list[str] = []
    url: str = ""

    def _reply(self, code: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        if self.auth and self.headers.get("Authorization") != self.auth:
            self._reply(401, {"error_code": 401, "message": "Unauthorized"})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["schemas", "ids"] and parts[2].isdigit() and 0 < int(parts[2]) <= len(self.schemas):
            return self._reply(200, self.schemas[int(parts[2]) - 1])
        if parts[0] == "subjects" and len(parts) == 4:
            for doc in self.schemas:
                if doc["subject"] == parts[1]:
                    return self._reply(200, doc)
        if self.path == "/boom":
            return self._reply(500, {"message": "internal"})
        self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        self.seen_content_types.append(self.headers.get("Content-Type"))
        parts = self.path.strip("/").split("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        doc = {"schema": body["schema"], "subject": parts[1], "references": body.get("references", [])}
        for i, known in enumerate(self.schemas):
            if known["schema"] == doc["schema"]:
                return self._reply(200, {"id": i + 1})
        self.schemas.append(doc)
        self._reply(200, {"id": len(self.schemas)})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def registry_server() -> Iterator[type[RegistryHandler]]:
    """A running registry (see :class:`RegistryHandler`) on a free port of 127.0.0.1; its ``url``
    attribute is where; ``schemas``, ``auth`` and ``seen_content_types`` are its state."""
    handler = type("Registry", (RegistryHandler,), {"schemas": [], "auth": None, "seen_content_types": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: ZTF's split schema files, dependencies first (fp_hist exists from schema 4.01 on)
_ZTF_PARTS = ("cutout", "candidate", "prv_candidate", "fp_hist", "alert")


def _load_ztf_schema(directory: Path) -> dict:
    """ZTF's alert schema from its split files (``ztf/schema/4.02/``), as one self-contained dict.

    The file names (``candidate.avsc``) are not the type names (``ztf.alert.candidate``), so
    fastavro cannot resolve them by name: the parts are parsed dependencies first.
    """
    files = [str(directory / f"{part}.avsc") for part in _ZTF_PARTS if (directory / f"{part}.avsc").is_file()]
    if not files or not files[-1].endswith("alert.avsc"):
        raise FileNotFoundError(f"{directory} holds no ZTF alert.avsc")
    return load_schema_ordered(files, _write_hint=False)


@pytest.fixture(scope="session")
def ztf_schema(data_dir: Path) -> Callable[[str], dict]:
    """``ztf_schema("4.02")``: ZTF's official alert schema of that version, from the data's split files."""
    return lambda version: _load_ztf_schema(data_dir / "ztf" / "schema" / version)
