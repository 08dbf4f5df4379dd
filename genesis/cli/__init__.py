"""The ``genesis`` command line: one module per subcommand, each a thin layer over the library.

Every subcommand module of this package defines ``register(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed arguments, returning the exit status).
Modules are found in the package; ``ORDER`` only decides how ``genesis --help`` lists them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..errors import GenesisError, QueryError

#: the order ``genesis --help`` lists subcommands in; others follow alphabetically
ORDER = ["consume", "pipe", "topics", "show", "load", "inject", "cluster", "doctor", "auth"]


def subcommands() -> list[str]:
    """Names of the subcommand modules in this package, in help order."""
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesis",
        description="Receive, filter and act on astronomical alert streams over Apache Kafka.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in subcommands():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genesis`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except QueryError as exc:  # the SQL given is wrong: a usage error, as argparse's are
        print(f"genesis: error: {exc}", file=sys.stderr)
        return 2
    except GenesisError as exc:
        print(f"genesis: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
