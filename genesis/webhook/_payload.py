"""What a webhook receives for one output: its JSON body and the headers that name it.

``json``: the output as ``genesis consume --format json`` writes it (bytes as base64, integers as
integers, NaN as null; ``drop_bytes`` leaves the cutouts out). ``slack``: ``{"text": ...}`` with the
alert's one-line summary (survey, id, object, UTC time, position, magnitude) and, with a ``link``
template, a link: ``https://alerce.online/object/{objectId}`` is filled from the alert's top-level
fields and those of its ``candidate`` (ZTF) or ``diaSource`` (Rubin).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import alerts
from .._models import Metadata
from ..errors import ConfigError

FORMATS = ("json", "slack")


def idempotency_key(meta: Metadata, index: int) -> str:
    """``topic/partition/offset/index``: the same for every delivery of one output, so the receiver
    can drop what it has seen (a redelivery after a crash or a rebalance)."""
    return f"{meta.topic}/{meta.partition}/{meta.offset}/{index}"


class Payloads:
    """Turns outputs into bodies in one ``format`` (see the module's docstring)."""

    def __init__(self, format: str = "json", *, link: str | None = None, drop_bytes: bool = False) -> None:
        if format not in FORMATS:
            raise ConfigError(f"the webhook format is one of {', '.join(FORMATS)}, not {format!r}")
        if link is not None and format != "slack":
            raise ConfigError("a link template is for format='slack' (--format slack)")
        self.format, self.link, self.drop_bytes = format, link, drop_bytes

    def body(self, output: Any) -> bytes:
        if self.format == "slack":
            return json.dumps({"text": self.text(output)}).encode()
        return alerts.to_json(output, drop_bytes=self.drop_bytes).encode()

    def text(self, output: Any) -> str:
        """The Slack message of one output: an alert's summary (and link); anything else as JSON."""
        try:
            line = alerts.summary(output)
        except (ValueError, KeyError, TypeError, AttributeError):
            return json.dumps(alerts.jsonable(output, drop_bytes=True), allow_nan=False)
        if self.link is None:
            return line
        url = self.link.format_map(_LinkFields(output))
        return f"{line}  <{url}>"


class _LinkFields(dict):
    """The alert's top-level fields, then those of its candidate/diaSource, for a link template."""

    def __init__(self, alert: Mapping[str, Any]) -> None:
        inner = alert.get("candidate") or alert.get("diaSource") or {}
        super().__init__({**inner, **alert})

    def __missing__(self, name: str) -> str:
        raise ConfigError(f"the link template names {{{name}}}, which the alert does not have")
