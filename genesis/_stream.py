"""The alert stream: fetch, decode and filter, hand over, account, commit.

:class:`Stream` turns the messages of a :class:`~genesis._sources.Source` (a Kafka
consumer group, or a ``file://`` archive) into the generator users iterate:
``stream(timeout=, limit=, progress=, filter=, pool=, until_eos=, metadata=)``. It
owns all of a stream's state: the buffer of fetched messages, the assignment
generation of every partition, the offset tracker, the counters and the pool
pipeline. Each message is marked done in the tracker only once every alert it holds
was handed over, and ``commit()`` never goes past that: at-least-once, always.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from . import errors
from ._codecs import MessageDecoder
from ._fields import check_fields
from ._models import Metadata, Processed, Stats
from ._offsets import OffsetTracker
from ._parallel import PoolLike
from ._pipeline import Pipeline
from ._policies import Policy
from ._processing import Filter, Processor
from ._progress import ProgressBar
from ._sources import Message, Source, TopicPartition
from ._urls import StreamSpec

log = logging.getLogger("genesis")

#: what :meth:`Stream.batches` asks the loop to yield before each fetch
_FETCH = object()


class Stream:
    """An open alert stream; iterate ``stream(...)`` (or the stream itself) for ``(idx, alert)``.

    Made by :func:`genesis.streaming.open`; use it as a context manager so the source
    is closed (and offsets marked by ``commit()`` flushed) also when the loop fails.
    """

    def __init__(
        self, spec: StreamSpec, source: Source, decoder: MessageDecoder, on_decode_error: Policy | None
    ) -> None:
        self.spec = spec
        self._source = source
        self._decoder = decoder
        self._on_decode_error = on_decode_error
        self._tracker = OffsetTracker()
        self._buffer: deque[Message] = deque()
        #: per partition, how many times it was assigned or taken away: a message fetched under an
        #: earlier value belongs to an assignment that ended, and is dropped
        self._generation: dict[TopicPartition, int] = {}
        self._idx = 0
        self._stop = threading.Event()
        #: held by the thread running the stream, except while the user holds an alert (the
        #: generator suspended at a yield): a source may then keep the consumer in its group
        self.owner = threading.RLock()
        self._closed = False
        self._stats = Stats()
        #: True: when partitions are revoked, commit everything handed over so far, as ``commit()`` would.
        #: Right only for loops that finish each alert before asking for the next (revocation happens
        #: while the stream fetches, i.e. between alerts), as :func:`genesis.scaleout.run_group` does.
        self.commit_on_revoke = False
        source.bind(self)

    # ------------------------------------------------------------------ what the user reads
    @property
    def decoder(self) -> MessageDecoder:
        """What turns a message into alerts (``decode(value, key) -> list``); replace it to read a
        format of your own. It runs in the pool workers too, so it must be picklable."""
        return self._decoder

    @decoder.setter
    def decoder(self, decoder: MessageDecoder) -> None:
        self._decoder = decoder

    @property
    def group(self) -> str | None:
        """The consumer group id (``None`` for an archive)."""
        return self._source.group

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters (cheap); ``stream.lag()`` asks the brokers for the lag."""
        return replace(
            self._stats,
            assigned_at=self._source.assigned_at,
            started_at_end=frozenset(self._source.started_at_end),
            _lag=self.lag,
        )

    def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition, the messages not fetched yet (one broker query per partition)."""
        with self.owner:
            return self._source.lag()

    @property
    def assignment(self) -> set[TopicPartition]:
        """The (topic, partition) pairs this stream currently reads."""
        return self._source.assignment

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self()

    def __call__(
        self,
        timeout: float | None = None,
        limit: int | None = None,
        progress: bool = False,
        filter: Filter | None = None,
        pool: PoolLike | None = None,
        until_eos: bool = False,
        metadata: bool = False,
        fields: Iterable[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Yield ``(idx, alert)`` (or ``(idx, alert, meta)`` with ``metadata=True``).

        timeout:   stop after this many seconds without a new message (the clock starts
                   once partitions are assigned); ``None`` waits forever.
        limit:     stop after this many yielded alerts; the rest of the fetched batch
                   stays for the next call on this stream.
        progress:  show a progress bar (terminal or notebook).
        filter:    ``filter(alert)`` returns None/False to drop the alert, True to keep
                   it, anything else to yield that instead. A :class:`genesis.Filter`
                   declares the fields it reads: alerts are decoded only that far for it.
        pool:      decode and filter in these worker processes (``gs.Pool(n)``,
                   ``multiprocessing.Pool``, ``ProcessPoolExecutor``).
        until_eos: stop once caught up with the end of every assigned partition (always
                   on for an archive, which has an end).
        fields:    the top-level fields each yielded alert holds (e.g. ``("objectId",
                   "candidate")``); an alert is decoded only as far as the last of them.
        ``idx`` counts every alert this stream processed, filtered-out ones included.
        """
        self._check(timeout, limit, filter)
        processor = Processor(self._decoder, filter, check_fields(fields))
        hand_out = self._with_metadata if metadata else self._alerts
        return self._run(timeout, limit, progress, processor, pool, until_eos or self._source.bounded, hand_out)

    def outcomes(
        self,
        timeout: float | None = None,
        limit: int | None = None,
        filter: Filter | None = None,
        pool: PoolLike | None = None,
        until_eos: bool = False,
    ) -> Iterator[Processed]:
        """Yield every message as a whole once it was processed: a :class:`~genesis.Processed`.

        For tools that act per message rather than per alert, as the exactly-once pipe
        (:func:`genesis.pipe`) does: it forwards a message whose alerts all passed unchanged
        byte for byte. ``limit`` counts messages; the other options are those of ``stream(...)``.
        A message is yielded after it counts as handed over: ``commit()`` then covers it.
        """
        self._check(timeout, limit, filter)
        processor = Processor(self._decoder, filter, mark_unchanged=True)
        return self._run(timeout, limit, False, processor, pool, until_eos or self._source.bounded, self._processed)

    def batches(
        self,
        size: int,
        timeout: float | None = None,
        filter: Filter | None = None,
        pool: PoolLike | None = None,
        until_eos: bool = False,
        fields: Iterable[str] | None = None,
        forwarding: bool = True,
    ) -> Iterator[list[Processed]]:
        """Yield processed messages (as :meth:`outcomes` does) in lists that close at ``size`` alerts,
        or when nothing fetched waits any more, before the stream fetches again.

        For work done over many alerts at once (a SQL query in DuckDB): a batch never waits for
        alerts that have not come, and no fetch (so no rebalance, which commits what was handed
        over) happens while the caller holds a batch it has not written out. ``fields``: the
        top-level fields :meth:`~genesis.Processed.survivors` decodes (None: whole alerts).
        ``forwarding``: alerts kept unchanged are left undecoded (the message stands for them;
        :meth:`~genesis.Processed.survivors` decodes them when asked); False: they come decoded,
        for a caller that needs every one as a dict (decoding it again would cost twice).
        """
        if not isinstance(size, int) or size < 1:
            raise errors.ConfigError(f"size must be a positive whole number, not {size!r}")
        self._check(timeout, None, filter)
        processor = Processor(self._decoder, filter, check_fields(fields), mark_unchanged=forwarding)
        bounded = until_eos or self._source.bounded
        run = self._run(timeout, None, False, processor, pool, bounded, self._processed, _FETCH)
        batch: list[Processed] = []
        alerts = 0
        for item in run:
            if item is not _FETCH:
                batch.append(item)
                alerts += item.records
            if batch and (item is _FETCH or alerts >= size):
                yield batch
                batch, alerts = [], 0
        if batch:
            yield batch

    def _check(self, timeout: float | None, limit: int | None, filter: Filter | None) -> None:
        if self._closed:
            raise errors.ConfigError("this stream is closed; open a new one with gs.open(...)")
        for name, value in (("timeout", timeout), ("limit", limit)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise errors.ConfigError(f"{name} must be a non-negative number or None, not {value!r}")
        if filter is not None and not callable(filter):
            raise errors.ConfigError(f"filter must be a function taking an alert, not {type(filter).__name__}")

    def _run(
        self,
        timeout: float | None,
        limit: int | None,
        progress: bool,
        processor: Processor,
        pool: PoolLike | None,
        until_eos: bool,
        hand_out: Callable[[Message, ProgressBar], Iterator[Any]],
        before_fetch: object = None,
    ) -> Iterator[Any]:
        """The loop behind every iteration: hand out what is buffered, fetch, repeat. ``before_fetch``:
        yielded (uncounted) each time the buffer is empty and the loop is about to fetch."""
        self._stop.clear()
        bar = ProgressBar(progress, total=limit)
        pipeline = Pipeline(pool, processor) if pool is not None else None
        yielded = 0
        last_message = time.monotonic()  # the idle clock of timeout= (the user's time does not count)
        owner = self.owner
        owner.acquire()
        try:
            while not self._stop.is_set():
                while self._buffer and not self._stop.is_set():  # stop() ends the loop after this alert
                    if limit is not None and yielded >= limit:
                        return
                    msg = self._buffer[0]
                    if msg.outcome is None or msg.processor is None or not msg.processor.same_work(processor):
                        self._reprocess(msg, processor)
                    for item in hand_out(msg, bar):
                        yielded += 1
                        owner.release()
                        try:
                            yield item
                        finally:
                            owner.acquire()
                        self._source.handed_back()
                        last_message = max(last_message, time.monotonic())
                        if (limit is not None and yielded >= limit) or self._stop.is_set():
                            break
                if limit is not None and yielded >= limit:
                    return
                idle = pipeline is None or not pipeline.busy
                if until_eos and idle and not self._buffer and self._source.caught_up():
                    return
                if timeout is not None and idle and self._source.idle_for(last_message) >= timeout:
                    return
                if before_fetch is not None:
                    owner.release()
                    try:
                        yield before_fetch
                    finally:
                        owner.acquire()
                fetched = self._fetch()
                if fetched:
                    last_message = time.monotonic()
                    if until_eos and bar.total is None:
                        bar.set_total(self._source.backlog() + self._stats.alerts)
                self._admit(pipeline.push(fetched) if pipeline is not None else fetched)
        except BaseException as exc:
            if pipeline is not None and not isinstance(exc, GeneratorExit):
                # failing (a worker died, Ctrl-C, ...): do not wait for the workers; the
                # in-flight messages stay fetched-but-unprocessed and are redone on the next call
                self._admit(pipeline.abandon())
            raise
        finally:
            try:
                if pipeline is not None:  # break / limit / the end: finished work is kept for the next call
                    self._admit(pipeline.drain())
                bar.close()
            finally:
                owner.release()

    def _fetch(self) -> list[Message]:
        """The source's next messages, each counted and tracked once, under its partition's generation."""
        fetched = self._source.fetch()
        gen, tracker, stats = self._generation, self._tracker, self._stats
        for msg in fetched:
            msg.generation = gen.get(msg.tp, 0)
            tracker.fetched(msg.tp, msg.offset)
            stats.received += 1
            stats.bytes += len(msg.value) if msg.value else 0
        return fetched

    def _admit(self, messages: list[Message]) -> None:
        """Queue messages for the user, except those of partitions revoked since they were fetched."""
        gen = self._generation
        self._buffer.extend(m for m in messages if gen.get(m.tp) == m.generation)

    @staticmethod
    def _reprocess(msg: Message, processor: Processor) -> None:
        """(Re)decode and filter a message inline, e.g. one left over from a call with another filter."""
        msg.outcome, msg.processor, msg.alerts = processor.process(msg.key, msg.value), processor, None
        msg.kept_at = sum(1 for i, _ in msg.outcome.kept if i < msg.cursor)

    def _alerts(self, msg: Message, bar: ProgressBar) -> Iterator[tuple[int, Any]]:
        for value in self._hand_out(msg, bar):
            yield self._idx - 1, value

    def _with_metadata(self, msg: Message, bar: ProgressBar) -> Iterator[tuple[int, Any, Metadata]]:
        for value in self._hand_out(msg, bar):
            yield self._idx - 1, value, _metadata(msg)

    def _processed(self, msg: Message, bar: ProgressBar) -> Iterator[Processed]:
        """The message at the buffer head as a whole, once every record of it is counted."""
        out = msg.outcome
        assert out is not None and msg.processor is not None
        for _ in self._hand_out(msg, bar, decode=False):
            pass
        if out.decode_error is None:  # (a skipped undecodable message yields nothing)
            yield Processed(_metadata(msg), out.records, tuple(out.kept), msg.processor.decoded)

    def _hand_out(self, msg: Message, bar: ProgressBar, decode: bool = True) -> Iterator[Any]:
        """Yield the kept alerts of the message at the buffer head, counting each record once
        (``decode=False``: what a worker sent, without decoding alerts it kept as decoded)."""
        out = msg.outcome
        assert out is not None  # processed before it reaches the head of the buffer
        if out.decode_error is not None:
            self._decode_failed(msg)
            return
        kept = out.kept
        while msg.cursor < out.records:
            i = msg.cursor
            if out.filter_error is not None and i == out.failed_at:
                self._filter_failed(msg)
            msg.cursor += 1
            self._idx += 1
            self._stats.alerts += 1
            bar.update()
            if msg.kept_at < len(kept) and kept[msg.kept_at][0] == i:
                value = kept[msg.kept_at][1]
                if value is None and decode:  # a pool worker kept it as decoded: decode it here
                    value = self._decoded(msg)[i]
                msg.kept_at += 1
                if msg.cursor == out.records:
                    self._finish(msg)
                self._stats.yielded += 1
                yield value
            else:
                self._stats.filtered += 1
                if msg.cursor == out.records:
                    self._finish(msg)
        if out.records == 0:
            self._finish(msg)

    @staticmethod
    def _decoded(msg: Message) -> list[dict[str, Any]]:
        if msg.alerts is None:
            assert msg.processor is not None
            msg.alerts = msg.processor.decoded(msg.key, msg.value)
        return msg.alerts

    def _finish(self, msg: Message) -> None:
        self._buffer.popleft()
        self._tracker.done(msg.tp, msg.offset)

    def _decode_failed(self, msg: Message) -> None:
        assert msg.outcome is not None and msg.outcome.decode_error is not None
        err = msg.outcome.decode_error.located(msg.tp[0], msg.tp[1], msg.offset)
        if self._on_decode_error is None:
            raise err
        self._on_decode_error(_metadata(msg), msg.value, err)  # may raise to stop the stream
        self._stats.skipped += 1
        self._finish(msg)

    @staticmethod
    def _filter_failed(msg: Message) -> None:
        out = msg.outcome
        assert out is not None
        exc = out.filter_error
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        topic, partition = msg.tp
        raise errors.FilterError(
            f"the filter raised {text} on alert {out.failed_at} of the message at "
            f"{topic}[{partition}]@{msg.offset}; nothing from this message on is committed.\n"
            f"{out.filter_traceback}",
            topic=topic,
            partition=partition,
            offset=msg.offset,
        ) from (exc if isinstance(exc, BaseException) else None)

    # ------------------------------------------------------------------ the source's callbacks
    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions were assigned: messages fetched from now on belong to a new generation."""
        for tp in tps:
            self._generation[tp] = self._generation.get(tp, 0) + 1

    def revoking(self, tps: set[TopicPartition]) -> None:
        """Partitions go to another consumer: send what ``commit()`` marked for them, then forget them."""
        if self.commit_on_revoke:
            self._tracker.mark()
        # a transaction commits everything produced so far: it must carry every partition's position
        unsent = self._tracker.unsent(None if self._source.atomic_commits else tps)
        if unsent:
            try:
                self._send(unsent, asynchronous=False)
            except errors.GenesisError as exc:  # the alerts will be redelivered: duplicates, not loss
                log.warning("could not commit offsets of revoked partitions: %s", exc)
        self.lost(tps)

    def handed_out(self, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Per partition, the position after what was handed over so far (committed or not)."""
        return self._tracker.watermarks(tps)

    def lost(self, tps: set[TopicPartition]) -> None:
        """Partitions already belong to someone else: drop their messages and bookkeeping."""
        self._tracker.forget(tps)
        self._buffer = deque(m for m in self._buffer if m.tp not in tps)
        for tp in tps:
            self._generation[tp] = self._generation.get(tp, 0) + 1

    # ------------------------------------------------------------------ commits
    def commit(self, asynchronous: bool = False, *, hold: dict[TopicPartition, int] | None = None) -> None:
        """Remember, in Kafka, that every alert handed to you so far is processed.

        Per partition the committed position is the one after the last alert that
        was handed over (or dropped by the filter), never beyond; a message holding
        several alerts counts once all of them were handed over. With
        ``asynchronous=False`` (default) it returns when the brokers acknowledged it.
        An archive has nothing to remember: there, ``commit()`` does nothing.
        ``hold``: per partition an offset not to commit past, for code that received alerts
        but has not finished them (``gs.query`` holds its batch's unreturned rows so).
        """
        with self.owner:
            unsent = self._tracker.mark(hold)
            if unsent:
                self._send(unsent, asynchronous)

    def _send(self, offsets: dict[TopicPartition, int], asynchronous: bool) -> None:
        if self._source.commit(offsets, asynchronous):
            self._tracker.sent(offsets)

    def caught_up(self) -> bool:
        """True when nothing fetched waits and every assigned partition was read to its end (what
        ``until_eos=True`` waits for); an archive, once read."""
        with self.owner:
            return not self._buffer and self._source.caught_up()

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """End the running loop after the current alert; safe from another thread or a signal handler."""
        self._stop.set()

    def close(self) -> None:
        """Flush offsets marked by ``commit()`` (nothing else) and close the source."""
        with self.owner:
            if self._closed:
                return
            self._closed = True
            try:
                unsent = self._tracker.unsent()
                if unsent:
                    self._send(unsent, asynchronous=False)
            finally:
                self._source.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<genesis Stream {self._source.describe()}{' closed' if self._closed else ''}>"


def _metadata(msg: Message) -> Metadata:
    """The metadata of the alert of ``msg`` handed over last (or of the message, before any)."""
    return Metadata.of(msg.tp, msg.offset, msg.key, msg.value, msg.timestamp, msg.headers, max(0, msg.cursor - 1))
