"""Which offsets may be committed: at-least-once bookkeeping per partition.

A message's offset becomes *done* when every alert it holds was handed to the
user (or dropped by the filter). The committable position of a partition is
the offset after the longest run of done messages from the start, in the
order they were fetched; so a message finished early (by a pool worker) never
lets a commit jump over one still being processed. Kafka offsets need not be
contiguous (compaction, transaction markers), which is why the order of
fetching, not ``offset + 1``, decides what "contiguous" means.

Three positions per partition, each never ahead of the one before:
``watermark`` (done) >= ``marked`` (the user called ``commit()``) >= ``sent``
(Kafka acknowledged the commit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class _Partition:
    pending: deque = field(default_factory=deque)  # [offset, done] in fetch order
    finished: set = field(default_factory=set)  # done offsets not yet at the head
    watermark: int | None = None  # next offset to consume after the done prefix
    marked: int | None = None
    sent: int | None = None


class OffsetTracker:
    """Per-partition watermarks of what was handed over, what ``commit()`` marked and what was sent."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}

    def fetched(self, tp: TopicPartition, offset: int) -> None:
        """A message at ``offset`` was fetched and is on its way to the user."""
        self._parts.setdefault(tp, _Partition()).pending.append(offset)

    def done(self, tp: TopicPartition, offset: int) -> None:
        """Every alert of the message at ``offset`` was handed over (or filtered out)."""
        part = self._parts.get(tp)
        if part is None:  # partition revoked meanwhile: nothing to record
            return
        if part.pending and part.pending[0] == offset:
            part.pending.popleft()
            part.watermark = offset + 1
            while part.pending and part.pending[0] in part.finished:
                head = part.pending.popleft()
                part.finished.discard(head)
                part.watermark = head + 1
        else:
            part.finished.add(offset)

    def mark(self, hold: dict[TopicPartition, int] | None = None) -> dict[TopicPartition, int]:
        """The user said everything handed over so far is processed: mark every watermark, but
        none past ``hold[tp]`` (alerts handed over to a layer that has not finished them yet, as a
        query's batch). A mark never moves back. Returns the marks not yet sent to Kafka.
        """
        for tp, part in self._parts.items():
            if part.watermark is not None:
                limit = part.watermark if hold is None or tp not in hold else min(part.watermark, hold[tp])
                part.marked = limit if part.marked is None else max(part.marked, limit)
        return self.unsent()

    def unsent(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Marked positions that Kafka has not acknowledged yet (restricted to ``only``)."""
        return {
            tp: p.marked
            for tp, p in self._parts.items()
            if p.marked is not None and p.marked != p.sent and (only is None or tp in only)
        }

    def sent(self, offsets: dict[TopicPartition, int]) -> None:
        """Kafka acknowledged these commits."""
        for tp, offset in offsets.items():
            if tp in self._parts:
                self._parts[tp].sent = offset

    def forget(self, tps: set[TopicPartition]) -> None:
        """The partitions were revoked: their in-flight messages now belong to another consumer."""
        for tp in tps:
            self._parts.pop(tp, None)

    def watermarks(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Current done positions (restricted to ``only``)."""
        return {
            tp: p.watermark for tp, p in self._parts.items() if p.watermark is not None and (only is None or tp in only)
        }
