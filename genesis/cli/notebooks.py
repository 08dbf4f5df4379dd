"""``genesis notebooks [DIR]``: copy the demo notebooks (installed with genesis) into DIR to open them.

``streaming-demo.ipynb`` runs the mission notebook's cells against ``genesis cluster up --demo``;
``alert-structure.ipynb`` shows what is in a ZTF and an LSST packet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  genesis notebooks                 # into the current directory
  genesis notebooks ~/genesis-notebooks --overwrite
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notebooks",
        help="copy the demo notebooks into a directory",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", nargs="?", default=".", type=Path, help="where to put them (default: here)")
    p.add_argument("--overwrite", action="store_true", help="replace notebooks already there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import copy_notebooks

    for copy in copy_notebooks(args.dir, overwrite=args.overwrite):
        print(copy)
    return 0
