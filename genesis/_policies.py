"""What happens to a packet that cannot be decoded: ``gs.open(..., errors=, quarantine=)``.

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
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, DecodeError

log = logging.getLogger("genesis")

#: ``policy(meta, raw_bytes, error)``, called for each undecodable packet
Policy = Callable[[Any, "bytes | None", DecodeError], None]

_CHOICES = "'raise', 'skip', 'quarantine' or a function f(meta, raw_bytes, error)"


def decode_error_policy(errors: str | Callable[..., Any], quarantine: str | Path | None) -> Policy | None:
    """The handler for undecodable packets, or ``None`` for ``errors="raise"`` (the default)."""
    if quarantine is not None and errors != "quarantine":
        raise ConfigError(
            f"quarantine={str(quarantine)!r} is used only with errors='quarantine' (errors is {errors!r})"
        )
    if callable(errors):
        return errors
    if errors == "raise":
        return None
    if errors == "skip":
        return skip
    if errors == "quarantine":
        if quarantine is None or str(quarantine) == "":
            raise ConfigError(
                "errors='quarantine' needs quarantine=: a directory or a kafka:// URL of a dead-letter topic"
            )
        if str(quarantine).startswith("kafka://"):
            return TopicQuarantine(str(quarantine))
        return DirectoryQuarantine(Path(quarantine))
    raise ConfigError(f"errors={errors!r} is not understood: use {_CHOICES}")


def skip(meta: Any, value: bytes | None, error: DecodeError) -> None:
    """``errors="skip"``: log the packet's position and why it was skipped."""
    log.warning("skipped an undecodable packet at %s: %s", error.where, error.reason)


def record(meta: Any, error: DecodeError) -> dict[str, Any]:
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

    def __call__(self, meta: Any, value: bytes | None, error: DecodeError) -> None:
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
        from .streaming import open as gs_open

        self.url = url
        self.writer = gs_open(url, "w")

    def __call__(self, meta: Any, value: bytes | None, error: DecodeError) -> None:
        info = record(meta, error)
        added = [(f"genesis.{k}", str(v).encode()) for k, v in info.items() if k not in ("headers", "key")]
        self.writer.write(value or b"", key=meta.key, headers=list(meta.headers) + added)
        self.writer.flush()
        log.warning("quarantined an undecodable packet at %s to %s: %s", error.where, self.url, error.reason)
