"""``genesis doctor URL``: check, step by step, that a stream can be read, and say what to fix."""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  genesis doctor kafka://localhost/small
  genesis doctor kafka://kafka.example.org:9092/ztf_public --timeout 20

Checks, in order: which decoder reads alerts (compiled, or fastavro and why); the URL parses;
each bootstrap host resolves; each port accepts TCP; the TLS handshake (when TLS is configured)
and which CA is trusted; the login; the topic exists; a message can be read; the consumer group
can be used. One line per check; exit status 0 when
all pass. Credentials come from the environment or the credentials file (genesis auth).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``genesis doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="diagnose why a stream URL cannot be read",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="kafka://[group@]host[:port][,host2...]/topic")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds each network step may take (default: 10)"
    )
    parser.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from ..doctor import FAILED, run

    results = run(args.url, timeout=args.timeout, report=lambda check: print(check.line(), flush=True))
    return 1 if any(c.status == FAILED for c in results) else 0
