"""The options of ``genesis pipe IN_URL https://...`` (a webhook): parsed here, handed to ``gs.pipe``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..webhook import FORMATS

HELP = """webhooks (an http(s):// OUT_URL): every output is POSTed as JSON with an Idempotency-Key
(topic/partition/offset/index), at least once: the group commits only what a 2xx acknowledged"""


@dataclass(frozen=True)
class _Option:
    """One webhook option: its flag, the ``gs.pipe`` keyword it becomes, and its argparse settings."""

    flag: str
    keyword: str
    settings: dict[str, Any]
    convert: Callable[[Any], Any] = lambda value: value

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def headers(values: list[str]) -> dict[str, str]:
    """``NAME:VALUE`` options as a header mapping; a :class:`ConfigError` for one without a colon."""
    out: dict[str, str] = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"--header takes NAME:VALUE (e.g. 'Authorization: Bearer TOKEN'), not {value!r}")
        out[name.strip()] = text.strip()
    return out


#: the one list the parser, ``gs.pipe``'s arguments and each ``--processes`` child's command line come from
_OPTIONS = (
    _Option(
        "--header",
        "headers",
        {
            "action": "append",
            "default": [],
            "metavar": "NAME:VALUE",
            "help": "a request header, e.g. 'Authorization: Bearer TOKEN' (repeatable)",
        },
        headers,
    ),
    _Option(
        "--concurrency",
        "concurrency",
        {"type": int, "default": 16, "metavar": "N", "help": "requests in flight at most (16)"},
    ),
    _Option(
        "--max-retries",
        "max_retries",
        {"type": int, "metavar": "N", "help": "give up on an output after N retries (no limit)"},
    ),
    _Option(
        "--request-timeout",
        "request_timeout",
        {"type": float, "default": 10.0, "metavar": "S", "help": "seconds per request (10)"},
    ),
    _Option(
        "--dead-letter",
        "dead_letter",
        {
            "metavar": "KAFKA_URL",
            "help": "kafka://host/topic for refused outputs (with the status and response in headers); without "
            "it a refusal stops the pipe",
        },
    ),
    _Option(
        "--format",
        "format",
        {"choices": FORMATS, "default": "json", "help": 'json (default) or slack ({"text": ...})'},
    ),
    _Option(
        "--link",
        "link",
        {"metavar": "TEMPLATE", "help": "slack: a link per alert, e.g. https://alerce.online/object/{objectId}"},
    ),
    _Option(
        "--no-cutouts", "drop_bytes", {"action": "store_true", "help": "json: leave bytes fields (the cutouts) out"}
    ),
    _Option("--ca", "ca", {"metavar": "FILE", "help": "trust this CA certificate (PEM) for an https:// webhook"}),
    _Option("--insecure", "insecure", {"action": "store_true", "help": "do not check the webhook's TLS certificate"}),
)


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("webhook", HELP)
    for option in _OPTIONS:
        g.add_argument(option.flag, **option.settings)


def options(args: argparse.Namespace) -> dict[str, Any]:
    """``gs.pipe``'s webhook keyword arguments from the parsed command line."""
    return {option.keyword: option.convert(getattr(args, option.dest)) for option in _OPTIONS}


def child_argv(args: argparse.Namespace) -> list[str]:
    """The webhook options again, for each process of ``--processes N``."""
    argv: list[str] = []
    for option in _OPTIONS:
        value, action = getattr(args, option.dest), option.settings.get("action")
        if action == "store_true":
            argv += [option.flag] if value else []
        elif action == "append":
            argv += [part for item in value for part in (option.flag, item)]
        elif value is not None:
            argv += [option.flag, str(value)]
    return argv
