"""The options of ``genesis pipe IN_URL https://...`` (a webhook): parsed here, handed to ``gs.pipe``."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..webhook import FORMATS

HELP = """webhooks (an http(s):// OUT_URL): every output is POSTed as JSON with an Idempotency-Key
(topic/partition/offset/index), at least once: the group commits only what a 2xx acknowledged"""


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("webhook", HELP)
    g.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a request header, e.g. 'Authorization: Bearer TOKEN' (repeatable)",
    )
    g.add_argument("--concurrency", type=int, default=16, metavar="N", help="requests in flight at most (16)")
    g.add_argument("--max-retries", type=int, metavar="N", help="give up on an output after N retries (no limit)")
    g.add_argument("--request-timeout", type=float, default=10.0, metavar="S", help="seconds per request (10)")
    g.add_argument(
        "--dead-letter",
        metavar="KAFKA_URL",
        help="kafka://host/topic for refused outputs (with the status and response in headers); without it "
        "a refusal stops the pipe",
    )
    g.add_argument("--format", choices=FORMATS, default="json", help='json (default) or slack ({"text": ...})')
    g.add_argument(
        "--link", metavar="TEMPLATE", help="slack: a link per alert, e.g. https://alerce.online/object/{objectId}"
    )
    g.add_argument("--no-cutouts", action="store_true", help="json: leave bytes fields (the cutouts) out")
    g.add_argument("--ca", metavar="FILE", help="trust this CA certificate (PEM) for an https:// webhook")
    g.add_argument("--insecure", action="store_true", help="do not check the webhook's TLS certificate")


def headers(values: list[str]) -> dict[str, str]:
    """``NAME:VALUE`` options as a header mapping; a :class:`ConfigError` for one without a colon."""
    out: dict[str, str] = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"--header takes NAME:VALUE (e.g. 'Authorization: Bearer TOKEN'), not {value!r}")
        out[name.strip()] = text.strip()
    return out


def options(args: argparse.Namespace) -> dict[str, Any]:
    """``gs.pipe``'s webhook keyword arguments from the parsed command line."""
    return {
        "headers": headers(args.header),
        "concurrency": args.concurrency,
        "max_retries": args.max_retries,
        "request_timeout": args.request_timeout,
        "dead_letter": args.dead_letter,
        "format": args.format,
        "link": args.link,
        "drop_bytes": args.no_cutouts,
        "ca": args.ca,
        "insecure": args.insecure,
    }


def child_values(args: argparse.Namespace) -> tuple[list[tuple[str, object]], list[tuple[str, bool]]]:
    """The webhook options again, for each process of ``--processes N``."""
    values: list[tuple[str, object]] = [("--header", h) for h in args.header]
    values += [
        ("--concurrency", args.concurrency),
        ("--max-retries", args.max_retries),
        ("--request-timeout", args.request_timeout),
        ("--dead-letter", args.dead_letter),
        ("--format", args.format),
        ("--link", args.link),
        ("--ca", args.ca),
    ]
    return values, [("--no-cutouts", args.no_cutouts), ("--insecure", args.insecure)]
