"""Noticing a consumer whose fetcher stopped: the clock and the verdict behind ``gs.open(stall_timeout=)``.

librdkafka can stop fetching an assigned partition without reporting any error (seen for ~35 s
during the exactly-once chaos runs; upstream has reports of the same kind). Nothing then arrives,
although the partition has messages and the brokers answer. :class:`StallWatch` keeps the clock:
how long the stream has been polling without receiving a message. Time the stream spends away
from the consumer (the user holding an alert, while the keeper pauses the partitions, or between
two calls of ``stream(...)``) does not count: only a stream that keeps asking and gets nothing can
be stalled. Once that lasted ``timeout`` seconds the source asks the brokers for the ends of its
partitions (:func:`behind`); partitions whose position is short of the end are stalled, and the
source heals by rebuilding its consumer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import TopicPartition as TP

#: ``gs.open(stall_timeout=)``'s default: seconds of receiving nothing, with messages waiting, before a rebuild
STALL_TIMEOUT = 30.0
#: a stream that did not poll for this long was away (the user's time), not waiting on the consumer
_AWAY = 1.0


@dataclass(frozen=True)
class Behind:
    """A partition short of its end: ``position`` is where the consumer stands, ``end`` its high watermark."""

    tp: TP
    position: int
    end: int

    def __str__(self) -> str:
        return f"{self.tp[0]}[{self.tp[1]}] at {self.position} of {self.end}"


def check_stall_timeout(value: object) -> float:
    """``stall_timeout`` as seconds, or :class:`~genesis.errors.ConfigError`."""
    from .. import errors

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise errors.ConfigError(
            f"stall_timeout must be a positive number of seconds (default {STALL_TIMEOUT:g}), not {value!r}; "
            "float('inf') turns stall detection off"
        )
    return float(value)


class StallWatch:
    """How long a stream has polled its consumer without receiving anything, and when to look why."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._quiet_since: float | None = None  # polling without a message since then
        self._left: float = time.monotonic()  # when the stream last returned from a fetch
        self._looked: float = 0.0  # when the brokers were last asked for the ends

    def polling(self) -> None:
        """A fetch begins: a stream that was away for a while starts the clock again."""
        now = time.monotonic()
        if now - self._left > _AWAY:
            self._quiet_since = None

    def polled(self, received: bool) -> None:
        """A fetch ended, with or without messages."""
        now = self._left = time.monotonic()
        if received:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = now

    def quiet_for(self) -> float:
        """Seconds of polling without a message (0 when the last fetch received something)."""
        return 0.0 if self._quiet_since is None else time.monotonic() - self._quiet_since

    def due(self) -> bool:
        """Quiet for ``timeout`` seconds, and not looked at the brokers within the last ``timeout``."""
        now = time.monotonic()
        if self.quiet_for() < self.timeout or now - self._looked < min(self.timeout, 5.0):
            return False
        self._looked = now
        return True

    def healed(self) -> None:
        """The consumer was rebuilt: a new clock."""
        self._quiet_since = None
        self._left = time.monotonic()


def behind(positions: dict[TP, int], ends: dict[TP, tuple[int, int]]) -> list[Behind]:
    """The partitions whose ``position`` is short of their end (``ends``: low and high watermarks).

    A position below the low watermark (retention deleted what it pointed at) still has messages
    to read from the low one on: behind too.
    """
    out = []
    for tp, position in sorted(positions.items()):
        low, high = ends[tp]
        if max(position, low) < high:
            out.append(Behind(tp, position, high))
    return out
