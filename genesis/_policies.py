"""What happens to a packet that cannot be decoded: ``gs.open(..., on_decode_error=, quarantine=)``.

* ``"raise"`` (default): the stream raises :class:`~genesis.errors.DecodeError` naming
  topic, partition, offset and why; nothing from that message on is committed.
* ``"skip"``: the packet is logged, counted in ``stream.stats.skipped`` and stepped over;
  its offset counts as processed, so the next ``commit()`` moves past it.
* ``"quarantine"``: as ``"skip"``, after the raw bytes, key, headers and the error were
  kept in ``quarantine=``: a directory, or a ``kafka://`` URL of a dead-letter topic.
* a function ``f(meta, raw_bytes, error)``: called instead; it may raise to stop the stream.

The policy covers decoding only; an exception in the user's filter always propagates.
A packet whose quarantine fails (disk full, dead-letter topic unreachable) stops the
stream with that error rather than being stepped over: it is never lost silently.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._models import Metadata
from .errors import ConfigError, DecodeError

log = logging.getLogger("genesis")

#: ``policy(meta, raw_bytes, error)``, called for each undecodable packet
Policy = Callable[[Metadata, "bytes | None", DecodeError], None]

_CHOICES = "'raise', 'skip', 'quarantine' or a function f(meta, raw_bytes, error)"


def decode_error_policy(choice: str | Policy, quarantine: str | Path | None) -> Policy | None:
    """The handler for undecodable packets, or ``None`` for ``"raise"`` (the default)."""
    if quarantine is not None and choice != "quarantine":
        raise ConfigError(
            f"quarantine={str(quarantine)!r} is used only with on_decode_error='quarantine' (it is {choice!r})"
        )
    if callable(choice):
        return choice
    if choice == "raise":
        return None
    if choice == "skip":
        return skip
    if choice == "quarantine":
        if quarantine is None or str(quarantine) == "":
            raise ConfigError(
                "on_decode_error='quarantine' needs quarantine=: a directory or a kafka:// URL of a dead-letter topic"
            )
        if str(quarantine).startswith("kafka://"):
            return TopicQuarantine(str(quarantine))
        return DirectoryQuarantine(Path(quarantine))
    raise ConfigError(f"on_decode_error={choice!r} is not understood: use {_CHOICES}")


def skip(meta: Metadata, value: bytes | None, error: DecodeError) -> None:
    """``on_decode_error="skip"``: log the packet's position and why it was skipped."""
    log.warning("skipped an undecodable packet at %s: %s", error.where, error.reason)


def record(meta: Metadata, error: DecodeError) -> dict[str, Any]:
    """Where the packet came from and why it failed, as JSON-ready values."""
    return {
        "topic": meta.topic,
        "partition": meta.partition,
        "offset": meta.offset,
        "timestamp": meta.timestamp.isoformat() if meta.timestamp else None,
        "key": meta.key.hex() if meta.key else None,
        "headers": [[k, v.hex() if isinstance(v, bytes) else v] for k, v in meta.headers],
        "error": error.reason,
        "error_type": type(error).__name__,
        "quarantined_at": time.time(),
    }


def quarantine_headers(meta: Metadata, error: DecodeError) -> list[tuple[str, str | bytes | None]]:
    """The packet's own headers, then ``genesis.<field>`` for where it came from and why it failed."""
    added = [(f"genesis.{k}", str(v).encode()) for k, v in record(meta, error).items() if k not in ("headers", "key")]
    return [*meta.headers, *added]


class DirectoryQuarantine:
    """Writes ``<topic>-<partition>-<offset>.bin`` (the raw bytes) and ``.json`` beside it (where, why).

    The ``.json`` is written last: its presence means the packet is complete on disk.
    """

    def __init__(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot use {path} as the quarantine directory: {exc}") from None
        self.path = path

    def __call__(self, meta: Metadata, value: bytes | None, error: DecodeError) -> None:
        name = f"{meta.topic}-{meta.partition}-{meta.offset}"  # topic names may hold dots: no with_suffix
        (self.path / f"{name}.bin").write_bytes(value or b"")
        (self.path / f"{name}.json").write_text(json.dumps(record(meta, error), indent=1))
        log.warning("quarantined an undecodable packet at %s in %s: %s", error.where, self.path, error.reason)


class TopicQuarantine:
    """Re-publishes the raw bytes and key to a dead-letter topic.

    The original headers are kept; ``genesis.error``, ``genesis.topic``,
    ``genesis.partition``, ``genesis.offset`` (and the error type and time) are added.
    Each packet is flushed before the stream moves on, so a crash cannot lose it.
    """

    def __init__(self, url: str) -> None:
        from ._producer import Writer
        from ._urls import parse_url

        self.url = url
        self.writer = Writer(parse_url(url))

    def __call__(self, meta: Metadata, value: bytes | None, error: DecodeError) -> None:
        self.writer.write(value or b"", key=meta.key, headers=quarantine_headers(meta, error))
        self.writer.flush()
        log.warning("quarantined an undecodable packet at %s to %s: %s", error.where, self.url, error.reason)
