"""``gs.dedup``: drop alerts seen before, with bounded memory.

Kafka delivers at least once: after a consumer crash, a rebalance or a broker
failover, the alerts handed over since the last commit come again. Code that
must act once per alert wraps its loop::

    for idx, alert in gs.dedup(stream(timeout=10), key="candid"):   # ZTF
    for idx, alert in gs.dedup(stream(), key="diaSourceId"):        # Rubin/LSST

Only the ``maxsize`` most recently seen keys are remembered (an LRU), so memory
stays bounded on a night-long stream; redeliveries arrive within the uncommitted
window, far closer together than that.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["dedup", "Dedup"]

T = TypeVar("T")

#: keys remembered by default: ~10 MB, several minutes of the LSST stream
DEFAULT_MAXSIZE = 100_000


class Dedup(Iterator[T]):
    """An iterator over ``items`` without repeats; ``dropped`` counts the repeats it skipped.

    Items may be plain alerts, or the ``(idx, alert)`` and ``(idx, alert, meta)``
    tuples a stream yields; the key is taken from the alert in either case.
    """

    def __init__(
        self, items: Iterable[T], key: str | Callable[[Any], Hashable] = "candid", maxsize: int = DEFAULT_MAXSIZE
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize <= 0:
            raise ConfigError(f"maxsize must be a positive integer (how many keys to remember), not {maxsize!r}")
        if not (isinstance(key, str) or callable(key)):
            raise ConfigError(
                f"key must be a field name (e.g. 'candid', 'diaSourceId') or a function of the "
                f"alert, not {type(key).__name__}"
            )
        self._items = iter(items)
        self._key = key
        self.maxsize = maxsize
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        #: how many repeats were dropped so far
        self.dropped = 0

    def __iter__(self) -> Dedup[T]:
        return self

    def __next__(self) -> T:
        seen = self._seen
        for item in self._items:
            k = self._key_of(_alert_of(item))
            if k in seen:
                seen.move_to_end(k)  # a key that keeps coming back stays remembered
                self.dropped += 1
                continue
            seen[k] = None
            if len(seen) > self.maxsize:
                seen.popitem(last=False)
            return item
        raise StopIteration

    def _key_of(self, alert: Any) -> Hashable:
        if callable(self._key):
            return self._key(alert)
        if not isinstance(alert, Mapping):
            raise ConfigError(
                f"dedup(key={self._key!r}) needs alerts that are dicts, got {type(alert).__name__} "
                "(a filter that transforms alerts?); pass key= a function of what the stream yields"
            )
        try:
            return alert[self._key]
        except KeyError:
            fields = ", ".join(sorted(map(str, alert))[:12])
            raise ConfigError(
                f"the alert has no field {self._key!r} to deduplicate on; top-level fields: "
                f"{fields}... (ZTF: 'candid', LSST: 'diaSourceId'; or pass key= a function)"
            ) from None


def _alert_of(item: Any) -> Any:
    """The alert in a stream item: ``(idx, alert)`` and ``(idx, alert, meta)`` tuples, or the alert itself."""
    if type(item) is tuple and len(item) in (2, 3) and isinstance(item[0], int):
        return item[1]
    return item


def dedup(
    items: Iterable[T], key: str | Callable[[Any], Hashable] = "candid", maxsize: int = DEFAULT_MAXSIZE
) -> Dedup[T]:
    """``items`` with repeated alerts left out (the first occurrence is kept).

    key:     the alert's top-level field that identifies it (``"candid"`` for ZTF,
             ``"diaSourceId"`` for LSST), or a function ``key(alert)``.
    maxsize: how many keys to remember (least recently seen are forgotten first).

    The result iterates like ``items``; its ``dropped`` attribute counts the repeats.
    """
    return Dedup(items, key, maxsize)
