"""The ``genesis`` command line: one module per subcommand, each a thin layer over the library.

Every subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import GenesisError

#: subcommand modules, in the order ``genesis --help`` lists them
SUBCOMMANDS = ["cluster", "load"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesis",
        description="Receive, filter and act on astronomical alert streams over Apache Kafka.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genesis`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GenesisError as exc:
        print(f"genesis: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
