"""The job ``spark-submit`` runs: ``spark-submit [...] genesis/spark/__main__.py IN_URL --output ...``.

The same arguments as ``genesis spark`` (``genesis spark --submit-line`` prints the whole line);
the master is spark-submit's. ``python -m genesis.spark`` runs it locally as well.
"""

from __future__ import annotations

import sys

from genesis.cli import build_parser
from genesis.cli.spark import run
from genesis.errors import GenesisError


def main(argv: list[str] | None = None) -> int:
    """Parse ``genesis spark``'s arguments and run the job under the session spark-submit made."""
    args = build_parser().parse_args(["spark", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args, submitted=True)
    except GenesisError as exc:
        print(f"genesis spark: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
