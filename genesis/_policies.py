"""What happens to a packet that cannot be decoded: ``gs.open(..., errors=, quarantine=)``.

The policy covers decoding only; an exception in the user's filter always propagates.
Whatever the policy, a skipped packet is never silent: it is logged, counted in
``stream.stats.skipped``, and (with ``"quarantine"``) kept for later inspection.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, DecodeError

log = logging.getLogger("genesis")

Policy = Callable[[Any, "bytes | None", DecodeError], None]


def decode_error_policy(errors: str | Callable[..., Any], quarantine: str | Path | None) -> Policy | None:
    """The handler for undecodable packets, or ``None`` for ``errors="raise"`` (the default)."""
    if callable(errors):
        return errors
    if errors == "raise":
        return None
    if errors == "skip":
        return _skip
    if errors == "quarantine":
        if quarantine is None:
            raise ConfigError("errors='quarantine' needs quarantine=: a directory or a kafka:// URL")
        if str(quarantine).startswith("kafka://"):
            return _TopicQuarantine(str(quarantine))
        return _DirectoryQuarantine(Path(quarantine))
    raise ConfigError(f"errors={errors!r} is not understood: use 'raise', 'skip', 'quarantine' "
                      "or a function f(meta, raw_bytes, error)")


def _skip(meta: Any, value: bytes | None, error: DecodeError) -> None:
    log.warning("skipped an undecodable packet: %s", error.reason if error.topic is None else
                f"{error.where}: {error.reason}")


def _record(meta: Any, error: DecodeError) -> dict[str, Any]:
    return {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset,
            "timestamp": meta.timestamp.isoformat() if meta.timestamp else None,
            "key": meta.key.hex() if meta.key else None,
            "headers": [[k, v.hex() if isinstance(v, bytes) else v] for k, v in meta.headers],
            "error": error.reason, "quarantined_at": time.time()}


class _DirectoryQuarantine:
    """Writes ``<topic>-<partition>-<offset>.bin`` (the raw bytes) and a ``.json`` beside it (where, why)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __call__(self, meta: Any, value: bytes | None, error: DecodeError) -> None:
        stem = self.path / f"{meta.topic}-{meta.partition}-{meta.offset}"
        stem.with_suffix(".bin").write_bytes(value or b"")
        stem.with_suffix(".json").write_text(json.dumps(_record(meta, error), indent=1))
        _skip(meta, value, error)


class _TopicQuarantine:
    """Re-publishes the raw bytes to a dead-letter topic, with where and why in headers."""

    def __init__(self, url: str) -> None:
        from .streaming import open as gs_open
        self.writer = gs_open(url, "w")

    def __call__(self, meta: Any, value: bytes | None, error: DecodeError) -> None:
        info = _record(meta, error)
        self.writer.write(value or b"", key=meta.key,
                          headers=[(f"genesis.{k}", str(v)) for k, v in info.items() if k != "headers"])
        self.writer.flush()
        _skip(meta, value, error)
