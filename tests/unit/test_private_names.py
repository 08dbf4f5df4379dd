"""No module reaches into another's private names (read with ``ast``, nothing is imported).

Over ``genesis/``, ``bench/`` and ``notebooks/``:

* a private name (``_x``) may be imported only by a module of the package that defines it:
  ``genesis._codecs`` anywhere in ``genesis``, ``genesis._codecs._avro`` only inside
  ``genesis/_codecs/``, a private function or class of a module never from another module;
* an attribute ``obj._x`` is read only on ``self``/``cls`` (an object's own state), except the
  names of other libraries' public APIs that happen to start with ``_`` (listed below);
* ``bench/`` and ``notebooks/`` use what users get: no ``genesis._`` module at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("genesis", "bench", "notebooks")

#: other libraries' public names that start with "_": librdkafka's local error codes
#: (``KafkaError._PARTITION_EOF`` ...), ``os._exit``, argparse's subparsers type, namedtuple's API
FOREIGN_PUBLIC = {
    ("KafkaError", "*"),
    ("os", "_exit"),
    ("argparse", "_SubParsersAction"),
    ("*", "_replace"),
    ("*", "_asdict"),
    ("*", "_fields"),
}
#: the one place that reads another library's private state, and why: multiprocessing.Pool has no
#: public list of its worker processes or of its state, which the pool health check needs (a worker
#: killed by the OOM killer is replaced silently and its task never completes)
FOREIGN_PRIVATE = {("genesis/_parallel.py", "_pool"), ("genesis/_parallel.py", "_state")}


def _files() -> list[Path]:
    out = []
    for top in SCANNED:
        out += [p for p in sorted((ROOT / top).rglob("*.py")) if ".peers" not in p.parts]
    return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(dotted: str, importer: Path | None = None) -> bool:
    rel = Path(*dotted.split("."))
    roots = [ROOT] + ([importer.parent] if importer is not None else [])  # scripts import their siblings
    return any(
        (r / rel).is_dir()
        or (r / rel).with_suffix(".py").is_file()
        or (r / rel).with_suffix(".pyi").is_file()  # a compiled extension (genesis._native) and its stub
        for r in roots
    )


def _check_path(importer: Path, dotted: str) -> str | None:
    """Why importing ``dotted`` from ``importer`` reaches into a private name, or None."""
    parts = dotted.split(".")
    top = _module_name(importer).split(".")[0]
    if parts[0] == "genesis" and top != "genesis" and any(_private(p) for p in parts):
        return f"{top}/ uses genesis' private module {dotted}"
    for i, part in enumerate(parts):
        if not _private(part):
            continue
        owner = ".".join(parts[:i])  # the package (or module) that defines the private name
        if not _is_module(".".join(parts[: i + 1]), importer if i == 0 else None):
            return f"imports the private name {part} of {owner}"
        mine = _module_name(importer)
        if owner and not (mine == owner or mine.startswith(owner + ".")):
            return f"imports {'.'.join(parts[: i + 1])}, private to {owner}"
    return None


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(path, node)
            for alias in node.names:
                why = _check_path(path, f"{base}.{alias.name}" if base else alias.name)
                if why:
                    found.append(f"{rel}:{node.lineno}: {why}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                why = _check_path(path, alias.name)
                if why:
                    found.append(f"{rel}:{node.lineno}: {why}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue  # the object's own state, through its base class
            name = owner.id if isinstance(owner, ast.Name) else "*"
            if {(name, node.attr), (name, "*"), ("*", node.attr)} & FOREIGN_PUBLIC:
                continue
            if (str(rel), node.attr) not in FOREIGN_PRIVATE:
                found.append(f"{rel}:{node.lineno}: reads {ast.unparse(owner)}.{node.attr}")
        elif _getattr_private(node) and (str(rel), _getattr_private(node)) not in FOREIGN_PRIVATE:
            found.append(f"{rel}:{node.lineno}: reads {_getattr_private(node)} with getattr")
    return found


def _getattr_private(node: ast.AST) -> str | None:
    """The private name read by ``getattr(obj, "_x"[, default])`` (a spelled-out attribute read)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _private(node.args[1].value)
    ):
        return node.args[1].value
    return None


def test_the_scanned_trees_hold_the_package() -> None:
    names = {_module_name(p) for p in _files()}
    assert {"genesis", "genesis._stream", "genesis._sources.kafka", "genesis.cli.consume"} <= names
    assert any(n.startswith("bench.") for n in names) and any(n.startswith("notebooks.") for n in names)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_access(path: Path) -> None:
    assert _violations(path) == []


def test_the_checker_finds_each_kind_of_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules catch what they claim to (so an empty result above means something)."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "genesis" / "_codecs").mkdir(parents=True)
    (tmp_path / "genesis" / "__init__.py").write_text("")
    (tmp_path / "genesis" / "_codecs" / "__init__.py").write_text("")
    (tmp_path / "genesis" / "_codecs" / "_avro.py").write_text("def _helper(): pass\ndef read(): pass\n")
    (tmp_path / "genesis" / "_stream.py").write_text(
        "from ._codecs._avro import read\nfrom ._codecs._avro import _helper\nfrom ._codecs import _avro\n"
        "def f(stream, self):\n    return stream._buffer, self._ok, getattr(stream, '_tracker', None)\n"
    )
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "b.py").write_text("import genesis._codecs\nfrom genesis import _stream\n")
    inside = tmp_path / "genesis" / "_codecs" / "_other.py"
    inside.write_text("from ._avro import read\nfrom . import _avro\n")
    stream = _violations(tmp_path / "genesis" / "_stream.py")
    # lines 1-3 reach into _codecs._avro (line 2 for _helper too); line 5: stream._buffer and
    # getattr(stream, '_tracker'), not self._ok
    assert sorted(int(v.split(":")[1]) for v in stream) == [1, 2, 3, 5, 5], stream
    assert any("stream._buffer" in v for v in stream) and any("_tracker with getattr" in v for v in stream)
    assert len(_violations(tmp_path / "bench" / "b.py")) == 2
    assert _violations(inside) == []
