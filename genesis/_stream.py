"""The loop every alert stream shares: fetch, decode and filter, hand over, account.

:class:`AlertStream` turns batches of raw messages (from Kafka in
:mod:`genesis._consumer`, from files in :mod:`genesis._archive`) into the
generator users iterate: ``stream(timeout=, limit=, progress=, filter=, pool=,
until_eos=, metadata=)``. Decoding and filtering run inline or in pool workers
(:class:`_Pipeline`); each message is marked done in the offset tracker only
once every alert it holds was handed over, which is what makes commits
at-least-once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from . import errors
from ._offsets import OffsetTracker
from ._parallel import Task, WorkerLost, pool_size
from ._processing import Outcome, Processor, load_outcomes
from ._progress import ProgressBar

log = logging.getLogger("genesis")


@dataclass(frozen=True, slots=True)
class Metadata:
    """Where an alert came from (``stream(metadata=True)`` yields ``(idx, alert, meta)``)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    #: the message's bytes as received (to archive or forward an alert unchanged)
    value: bytes | None = None


@dataclass
class Stats:
    """Counters of a stream: messages received, alerts processed, yielded, filtered out, skipped."""

    received: int = 0
    alerts: int = 0
    yielded: int = 0
    filtered: int = 0
    skipped: int = 0
    bytes: int = 0
    lag: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(slots=True)
class _Message:
    """A fetched message on its way to the user, with the cursor of its next record."""

    tp: tuple[str, int]
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    headers: Any
    outcome: Outcome | None = None
    processor: Processor | None = None
    generation: int = 0
    cursor: int = 0
    kept_pos: int = 0

    @property
    def raw(self) -> tuple[bytes | None, bytes | None]:
        return self.key, self.value

    def metadata(self) -> Metadata:
        ts = (
            datetime.fromtimestamp(self.timestamp / 1000, tz=timezone.utc)
            if self.timestamp and self.timestamp > 0
            else None
        )
        return Metadata(self.tp[0], self.tp[1], self.offset, ts, self.key, tuple(self.headers or ()), self.value)


class AlertStream:
    """The generator machinery of a stream; subclasses provide the messages.

    Hooks: ``_fetch()`` returns the next batch of :class:`_Message` (empty when none
    arrived in a short while), ``_caught_up()`` says whether every source is at its
    end, ``_idle_for(last)`` how long the stream has waited for a message, and
    ``_backlog()`` how many messages remain (for the progress bar).
    """

    def __init__(
        self, decoder: Any, errors_policy: Callable[[Metadata, bytes | None, errors.DecodeError], None] | None
    ) -> None:
        self._decoder = decoder
        self._on_decode_error = errors_policy
        self._tracker = OffsetTracker()
        self._buffer: deque[_Message] = deque()
        self._generation: dict[tuple[str, int], int] = {}
        self._idx = 0
        self._stop = threading.Event()
        self._closed = False
        self._stats = Stats()

    @property
    def decoder(self) -> Any:
        """What turns a message into alerts (``decode(value, key) -> list``); replace it to read a
        format of your own. It runs in the pool workers too, so it must be picklable."""
        return self._decoder

    @decoder.setter
    def decoder(self, decoder: Any) -> None:
        self._decoder = decoder

    def _fetch(self) -> list[_Message]:
        raise NotImplementedError

    def _caught_up(self) -> bool:
        raise NotImplementedError

    def _idle_for(self, last_message: float) -> float:
        return time.monotonic() - last_message

    def _backlog(self) -> int:
        return 0

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self()

    def __call__(
        self,
        timeout: float | None = None,
        limit: int | None = None,
        progress: bool = False,
        filter: Callable[[dict], Any] | None = None,
        pool: Any = None,
        until_eos: bool = False,
        metadata: bool = False,
    ) -> Iterator[tuple]:
        """Yield ``(idx, alert)`` (or ``(idx, alert, meta)`` with ``metadata=True``).

        timeout:   stop after this many seconds without a new message (the clock starts
                   once partitions are assigned); ``None`` waits forever.
        limit:     stop after this many yielded alerts; the rest of the fetched batch
                   stays for the next call on this stream.
        progress:  show a progress bar (terminal or notebook).
        filter:    ``filter(alert)`` returns None/False to drop the alert, True to keep
                   it, anything else to yield that instead.
        pool:      decode and filter in these worker processes (``gs.Pool(n)``,
                   ``multiprocessing.Pool``, ``ProcessPoolExecutor``).
        until_eos: stop once caught up with the end of every assigned partition.
        ``idx`` counts every alert this stream processed, filtered-out ones included.
        """
        if self._closed:
            raise errors.ConfigError("this stream is closed; open a new one with gs.open(...)")
        for name, value in (("timeout", timeout), ("limit", limit)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise errors.ConfigError(f"{name} must be a non-negative number or None, not {value!r}")
        if filter is not None and not callable(filter):
            raise errors.ConfigError(f"filter must be a function taking an alert, not {type(filter).__name__}")
        return self._run(timeout, limit, progress, Processor(self._decoder, filter), pool, until_eos, metadata)

    def _run(
        self,
        timeout: float | None,
        limit: int | None,
        progress: bool,
        processor: Processor,
        pool: Any,
        until_eos: bool,
        metadata: bool,
    ) -> Iterator[tuple]:
        self._stop.clear()
        bar = ProgressBar(progress, total=limit)
        pipeline = _Pipeline(pool, processor) if pool is not None else None
        yielded = 0
        last_message = time.monotonic()
        try:
            while not self._stop.is_set():
                while self._buffer and not self._stop.is_set():  # stop() ends the loop after this alert
                    if limit is not None and yielded >= limit:
                        return
                    msg = self._buffer[0]
                    if msg.outcome is None or msg.processor.filter is not processor.filter:
                        self._reprocess(msg, processor)
                    for value in self._hand_out(msg, bar):
                        yielded += 1
                        yield (self._idx - 1, value, msg.metadata()) if metadata else (self._idx - 1, value)
                        if (limit is not None and yielded >= limit) or self._stop.is_set():
                            break
                if limit is not None and yielded >= limit:
                    return
                if until_eos and self._caught_up() and not self._buffer and (pipeline is None or not pipeline.busy):
                    return
                if timeout is not None and self._idle_for(last_message) >= timeout:
                    if pipeline is None or not pipeline.busy:
                        return
                fetched = self._fetch()
                if fetched:
                    last_message = time.monotonic()
                    if until_eos and bar.total is None:
                        bar.set_total(self._backlog() + self._stats.alerts)
                self._admit(pipeline.push(fetched) if pipeline is not None else fetched)
        except BaseException as exc:
            if pipeline is not None and not isinstance(exc, GeneratorExit):
                # failing (a worker died, Ctrl-C, ...): do not wait for the workers; the
                # in-flight messages stay fetched-but-unprocessed and are redone on the next call
                self._admit(pipeline.abandon())
            raise
        finally:
            if pipeline is not None:  # break / limit / the end: finished work is kept for the next call
                self._admit(pipeline.drain())
            bar.close()

    def _admit(self, messages: list[_Message]) -> None:
        """Queue messages for the user, except those of partitions revoked since they were fetched."""
        gen = self._generation
        self._buffer.extend(m for m in messages if gen.get(m.tp) == m.generation)

    @staticmethod
    def _reprocess(msg: _Message, processor: Processor) -> None:
        """(Re)decode and filter a message inline, e.g. one left over from a call with another filter."""
        msg.outcome, msg.processor = processor.process(msg.key, msg.value), processor
        msg.kept_pos = sum(1 for i, _ in msg.outcome.kept or () if i < msg.cursor)

    def _hand_out(self, msg: _Message, bar: ProgressBar) -> Iterator[Any]:
        """Yield the kept alerts of the message at the buffer head, counting each record once."""
        out = msg.outcome
        if out.decode_error is not None:
            self._decode_failed(msg)
            return
        kept = out.kept or []
        while msg.cursor < out.n:
            i = msg.cursor
            if out.filter_error is not None and i == out.failed_at:
                self._filter_failed(msg)
            msg.cursor += 1
            self._idx += 1
            self._stats.alerts += 1
            bar.update()
            if msg.kept_pos < len(kept) and kept[msg.kept_pos][0] == i:
                value = kept[msg.kept_pos][1]
                msg.kept_pos += 1
                if msg.cursor == out.n:
                    self._finish(msg)
                self._stats.yielded += 1
                yield value
            else:
                self._stats.filtered += 1
                if msg.cursor == out.n:
                    self._finish(msg)
        if out.n == 0:
            self._finish(msg)

    def _finish(self, msg: _Message) -> None:
        self._buffer.popleft()
        self._tracker.done(msg.tp, msg.offset)

    def _decode_failed(self, msg: _Message) -> None:
        err = msg.outcome.decode_error.located(msg.tp[0], msg.tp[1], msg.offset)
        if self._on_decode_error is None:
            raise err
        self._on_decode_error(msg.metadata(), msg.value, err)  # may raise to stop the stream
        self._stats.skipped += 1
        self._finish(msg)

    def _filter_failed(self, msg: _Message) -> None:
        out = msg.outcome
        exc = out.filter_error
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        err = errors.FilterError(
            f"the filter raised {text} on alert {out.failed_at} of the message at "
            f"{msg.tp[0]}[{msg.tp[1]}]@{msg.offset}; nothing from this message on is committed.\n"
            f"{out.filter_traceback}",
            topic=msg.tp[0],
            partition=msg.tp[1],
            offset=msg.offset,
        )
        raise err from (exc if isinstance(exc, BaseException) else None)

    def stop(self) -> None:
        """End the running loop after the current alert; safe from another thread or a signal handler."""
        self._stop.set()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "AlertStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Pipeline:
    """Keeps pool workers busy: up to two fetched batches in flight while the user gets the previous one.

    Messages leave the pipeline in the order they entered it, processed (``outcome``
    set) or, when abandoned, unprocessed (``outcome`` None: processed again later).
    Either way none is lost, which the offset tracker relies on: a fetched message
    that never came back would hold its partition's commits back for good.
    """

    def __init__(self, pool: Any, processor: Processor) -> None:
        self.pool = pool
        self.processor = processor
        self.workers = pool_size(pool)
        self._inflight: deque[list[tuple[list[_Message], Task]]] = deque()

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def push(self, batch: list[_Message]) -> list[_Message]:
        """Send ``batch`` to the workers; return the oldest finished batch once two are in flight
        (or the remaining one when nothing new arrived)."""
        if batch:
            size = max(1, min(50, -(-len(batch) // (2 * self.workers))))
            chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
            self._inflight.append(
                [(chunk, Task(self.pool, self.processor, [m.raw for m in chunk])) for chunk in chunks]
            )
        if len(self._inflight) >= 2 or (not batch and self._inflight):
            return self._collect()
        return []

    def _collect(self) -> list[_Message]:
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
                msg.outcome, msg.processor = outcome, self.processor
        self._inflight.popleft()
        return [m for chunk, _ in tasks for m in chunk]

    def drain(self) -> list[_Message]:
        """Every in-flight message, processed if the workers can finish it, else unprocessed."""
        done = []
        try:
            while self._inflight:
                done.extend(self._collect())
        except errors.GenesisError as exc:
            log.warning("in-flight alerts will be processed again on the next call: %s", exc)
            done.extend(self.abandon())
        return done

    def abandon(self) -> list[_Message]:
        """Every in-flight message, without waiting for the workers (unfinished ones unprocessed)."""
        left = [m for tasks in self._inflight for chunk, _ in tasks for m in chunk]
        self._inflight.clear()
        return left
