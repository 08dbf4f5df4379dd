"""Alerts sent as JSON text: one object, or an array of objects."""

from __future__ import annotations

import json

from genesis.errors import DecodeError

#: First bytes a JSON object or array can start with (after optional whitespace).
JSON_START = frozenset(b"{[ \t\r\n")


def decode_json(buf: bytes) -> list[dict]:
    """The records of a JSON message."""
    try:
        doc = json.loads(buf)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DecodeError(f"invalid JSON message: {exc}") from exc
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list) and all(isinstance(item, dict) for item in doc):
        return doc
    raise DecodeError(f"a JSON message must be an object or an array of objects, not {type(doc).__name__}")
