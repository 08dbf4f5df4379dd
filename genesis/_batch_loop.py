"""The loop of a pipe: batches taken from a stream, handed on, committed every N alerts or T seconds.

The exactly-once pipe (:mod:`genesis.pipe`, batches into a Kafka transaction) and the webhook pipe
(:mod:`genesis.webhook`, batches to an HTTP delivery) run the same loop; what differs is how a
batch is handed on and what a commit means, which they pass in. The loop commits every
``commit_every`` alerts or ``commit_seconds`` seconds, and whenever the input pauses (an open
transaction, or acknowledged deliveries, would otherwise wait for the next alert); it ends at a
limit, after ``timeout`` seconds without input, at the end of every partition (``until_eos``), or
when ``stop`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from ._models import Processed


def run_batches(
    stop: threading.Event,
    *,
    batch_size: Callable[[], int],
    batches: Callable[[int], Iterable[Sequence[Processed]]],
    hand_on: Callable[[Sequence[Processed]], None],
    commit: Callable[[], None],
    reached: Callable[[], bool],
    at_end: Callable[[], bool],
    commit_every: int,
    commit_seconds: float,
    timeout: float | None,
    until_eos: bool,
) -> None:
    """Run until ``reached()`` (the limit), ``stop``, ``timeout`` idle seconds or ``until_eos`` and ``at_end()``.

    ``batch_size()`` is the number of alerts to ask ``batches(size)`` for (it shrinks near a
    limit: the loop then asks again with the smaller size); ``hand_on(batch)`` does a batch's work;
    ``commit()`` makes what was handed on durable.
    """
    stop.clear()
    idle_since = last_commit = time.monotonic()
    since = 0
    while not stop.is_set():
        moved = False
        size = batch_size()
        for batch in batches(size):
            moved = True
            hand_on(batch)
            since += sum(processed.records for processed in batch)
            if since >= commit_every or time.monotonic() - last_commit >= commit_seconds:
                commit()
                since, last_commit = 0, time.monotonic()
            if stop.is_set() or reached() or batch_size() < size:
                break
        commit()
        since, last_commit = 0, time.monotonic()
        if reached():
            return
        if moved:
            idle_since = time.monotonic()
        elif (until_eos and at_end()) or (timeout is not None and time.monotonic() - idle_since >= timeout):
            return
