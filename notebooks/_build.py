"""Build the notebooks (``*.ipynb``) from their reviewable sources (``*.py``, percent format).

Each ``<name>.py`` here is a notebook written as plain text: ``# %%`` starts a code cell,
``# %% [markdown]`` a markdown cell whose lines are commented with ``# ``. This script turns
each into ``<name>.ipynb`` without outputs (run it after editing a source)::

    .venv/bin/python notebooks/_build.py          # writes notebooks/*.ipynb
    .venv/bin/python notebooks/_build.py --check  # fails when an .ipynb is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("streaming-demo", "alert-structure")
_MARKER = re.compile(r"^# %%( \[markdown\])?\s*$")


def cells(source: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of every cell of a percent-format source."""
    found: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        m = _MARKER.match(line)
        if m:
            found.append(("markdown" if m.group(1) else "code", []))
        elif found:
            kind, lines = found[-1]
            lines.append(re.sub(r"^# ?", "", line) if kind == "markdown" else line)
        elif line.strip():
            raise ValueError(f"text before the first cell marker: {line!r}")
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in found]


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` from ``name.py``, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, text) in enumerate(cells((HERE / f"{name}.py").read_text())):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text, id=f"{name}-{i:02d}"))  # stable ids: rebuilding changes nothing
    nbformat.validate(nb)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the .ipynb files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        text = nbformat.writes(build(name)) + "\n"
        target = HERE / f"{name}.ipynb"
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date (run notebooks/_build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
