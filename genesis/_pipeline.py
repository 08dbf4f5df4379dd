"""Keeping pool workers busy: decoding and filtering of fetched batches in worker processes, in order.

Used by :class:`genesis.Stream` with ``stream(pool=...)``: up to two fetched batches are
in flight while the user gets the previous one, and they come back in the order they
went out, so alerts of a partition reach the user in offset order.
"""

from __future__ import annotations

import logging
from collections import deque

from . import errors
from ._parallel import PoolLike, Task, WorkerLost, pool_size
from ._processing import Processor, load_outcomes
from ._sources import Message

log = logging.getLogger("genesis")


class Pipeline:
    """Keeps pool workers busy: up to two fetched batches in flight while the user gets the previous one.

    Messages leave the pipeline in the order they entered it, processed (``outcome``
    set) or, when abandoned, unprocessed (``outcome`` None: processed again later).
    Either way none is lost, which the offset tracker relies on: a fetched message
    that never came back would hold its partition's commits back for good.
    """

    def __init__(self, pool: PoolLike, processor: Processor) -> None:
        self.pool = pool
        self.processor = processor
        self.workers = pool_size(pool)
        self._inflight: deque[list[tuple[list[Message], Task]]] = deque()

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def push(self, batch: list[Message]) -> list[Message]:
        """Send ``batch`` to the workers; return the oldest finished batch once two are in flight
        (or the remaining one when nothing new arrived)."""
        if batch:
            size = max(1, min(50, -(-len(batch) // (2 * self.workers))))
            chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
            self._inflight.append(
                [(chunk, Task(self.pool, self.processor, [(m.key, m.value) for m in chunk])) for chunk in chunks]
            )
        if len(self._inflight) >= 2 or (not batch and self._inflight):
            return self._collect()
        return []

    def _collect(self) -> list[Message]:
        """Wait for the oldest batch; raise :class:`errors.FilterError` if a worker failed on it."""
        tasks = self._inflight[0]
        for chunk, task in tasks:
            if chunk[0].outcome is not None:  # collected before an error in a later chunk
                continue
            try:
                outcomes = load_outcomes(task.result())
            except Exception as exc:
                first = chunk[0]
                what = str(exc) if isinstance(exc, WorkerLost) else f"{type(exc).__name__}: {exc}"
                raise errors.FilterError(
                    f"a pool worker failed on the messages from {first.tp[0]}[{first.tp[1]}]@{first.offset} on: "
                    f"{what}; nothing from there on is committed",
                    topic=first.tp[0],
                    partition=first.tp[1],
                    offset=first.offset,
                ) from (None if isinstance(exc, WorkerLost) else exc)
            for msg, outcome in zip(chunk, outcomes):
                msg.outcome, msg.processor, msg.alerts = outcome, self.processor, None
        self._inflight.popleft()
        return [m for chunk, _ in tasks for m in chunk]

    def drain(self) -> list[Message]:
        """Every in-flight message, processed if the workers can finish it, else unprocessed."""
        done = []
        try:
            while self._inflight:
                done.extend(self._collect())
        except errors.GenesisError as exc:
            log.warning("in-flight alerts will be processed again on the next call: %s", exc)
            done.extend(self.abandon())
        return done

    def abandon(self) -> list[Message]:
        """Every in-flight message, without waiting for the workers (unfinished ones unprocessed)."""
        left = [m for tasks in self._inflight for chunk, _ in tasks for m in chunk]
        self._inflight.clear()
        return left
