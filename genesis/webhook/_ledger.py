"""Which input messages still have a delivery in flight, per partition: what a commit must not pass."""

from __future__ import annotations

from collections import Counter

TopicPartition = tuple[str, int]


class InFlight:
    """Per partition, the offsets of messages with unfinished deliveries (several per message allowed)."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, Counter[int]] = {}
        self._count = 0

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._parts.setdefault(tp, Counter())[offset] += 1
        self._count += 1

    def settle(self, tp: TopicPartition, offset: int) -> None:
        """One delivery of the message at ``offset`` finished (delivered, dead-lettered or abandoned)."""
        offsets = self._parts.get(tp)
        if offsets is None or offsets[offset] <= 0:
            raise KeyError(f"no delivery of {tp}@{offset} is in flight")
        offsets[offset] -= 1
        self._count -= 1
        if offsets[offset] == 0:
            del offsets[offset]
            if not offsets:
                del self._parts[tp]

    def hold(self) -> dict[TopicPartition, int]:
        """Per partition, the first offset a commit must stay at (its message is not delivered yet)."""
        return {tp: min(offsets) for tp, offsets in self._parts.items()}

    def __len__(self) -> int:
        return self._count
