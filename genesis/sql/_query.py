"""A push query: the rows of SQL over an alert stream, as they arrive, with gs.open's guarantees.

Alerts are taken from the stream in micro-batches that close at ``batch_size`` alerts or
``batch_seconds`` after their first alert, whichever comes first (so a quiet stream does not hold
an alert back), and each batch is run in DuckDB (:mod:`genesis.sql._engine`).

Commits keep gs.open's contract: a row's alert counts as processed when the row after it is asked
for (an alert without rows, once the row of a later alert is). The stream itself counts a batch's
alerts as handed over as soon as the batch is taken, so :meth:`Query.commit` holds every
partition back at the first alert of the batch that is not processed yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from .._models import Metadata, Stats
from .._parallel import PoolLike
from .._stream import Stream
from ..errors import ConfigError, QueryError
from ._engine import Engine, TableSource, writer_schema
from ._parse import Plan, plan

#: a batch closes at this many alerts ...
BATCH_SIZE = 1000
#: ... or this many seconds after its first alert
BATCH_SECONDS = 0.1

TopicPartition = tuple[str, int]


class Query:
    """An open query; iterate ``q(...)`` for ``(idx, row)``. Made by :func:`genesis.sql.query`."""

    def __init__(self, the_plan: Plan, stream: Stream, engine: Engine) -> None:
        self.plan = the_plan
        self.stream = stream
        self._engine = engine
        #: the batch being returned: its alerts as (idx, alert, meta), its rows as (position, row),
        #: the next row to return, and the position of the first alert not processed yet
        self._batch: list[tuple[int, dict[str, Any], Metadata]] = []
        self._results: list[tuple[int, dict[str, Any]]] = []
        self._next = 0
        self._done = 0
        self._rows = 0
        self._failed: BaseException | None = None
        #: what each alert is decoded to for the batch (SELECT *: the WHERE's fields, and the alerts
        #: that pass are decoded whole; None: whole, for a query naming no field)
        self._fields = the_plan.fields or None
        #: the message last decoded whole for SELECT * rows, and its alerts
        self._last_whole: tuple[Any, list[dict[str, Any]]] | None = None

    @property
    def stats(self) -> Stats:
        """The stream's counters (alerts read, filtered, ...): ``yielded`` counts alerts, not rows."""
        return self.stream.stats

    @property
    def rows(self) -> int:
        """How many rows this query returned so far."""
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self()

    def __call__(
        self,
        timeout: float | None = None,
        limit: int | None = None,
        until_eos: bool = False,
        pool: PoolLike | None = None,
        metadata: bool = False,
        batch_size: int = BATCH_SIZE,
        batch_seconds: float = BATCH_SECONDS,
    ) -> Iterator[tuple[Any, ...]]:
        """Yield ``(idx, row)`` (``(idx, row, meta)`` with ``metadata=True``) for each result row.

        ``idx`` is the stream index of the row's alert (as ``gs.open`` counts), ``row`` a dict of
        exactly the selected names (for ``SELECT *`` over the stream alone: the alert itself).
        ``timeout``: stop after this many seconds without a new alert; ``limit``: after this many
        rows (the SQL's ``LIMIT`` is a limit over the whole query); ``until_eos``, ``pool``: as in
        ``stream(...)``. Rows of a batch not returned when the loop breaks or reaches ``limit``
        come first on the next call.
        """
        for name, value in (("batch_size", batch_size), ("batch_seconds", batch_seconds)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, not {value!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"limit must be a non-negative whole number or None, not {limit!r}")
        if self.plan.limit is not None:
            left = self.plan.limit - self._rows
            limit = left if limit is None else min(limit, left)
        return self._run(timeout, limit, until_eos, pool, metadata, int(batch_size), float(batch_seconds))

    def _run(
        self,
        timeout: float | None,
        limit: int | None,
        until_eos: bool,
        pool: PoolLike | None,
        metadata: bool,
        batch_size: int,
        batch_seconds: float,
    ) -> Iterator[tuple[Any, ...]]:
        if self._failed is not None:
            raise QueryError(
                f"this query failed on a batch ({type(self._failed).__name__}: {self._failed}); its alerts stay "
                "uncommitted: fix the query and open it again"
            )
        yielded = 0
        last_alert = time.monotonic()
        while limit is None or yielded < limit:
            if self._next < len(self._results):
                position, row = self._results[self._next]
                self._next += 1
                self._done = position  # every alert before this one is processed
                idx, alert, meta = self._batch[position]
                value = (self._whole(meta) if self._fields is not None else alert) if self.plan.star else row
                self._rows += 1
                yielded += 1
                yield (idx, value, meta) if metadata else (idx, value)
                continue
            if self._batch:
                self._batch, self._results, self._next, self._done = [], [], 0, 0  # all processed
            if self._take(timeout, until_eos, pool, batch_size, batch_seconds):
                last_alert = time.monotonic()
            elif until_eos and self.stream.caught_up():
                return
            elif timeout is not None and time.monotonic() - last_alert >= timeout:
                return

    def _take(
        self, timeout: float | None, until_eos: bool, pool: PoolLike | None, batch_size: int, batch_seconds: float
    ) -> bool:
        """Take the next batch from the stream and run the query over it; False if none came."""
        batch: list[tuple[int, dict[str, Any], Metadata]] = []
        deadline = None
        wait = batch_seconds if timeout is None else min(batch_seconds, timeout)
        items = self.stream(
            timeout=wait,
            limit=batch_size,
            until_eos=until_eos,
            pool=pool,
            metadata=True,
            fields=self._fields,
        )
        schemas = []
        decoder = self.stream.decoder
        for item in items:
            batch.append(item)  # metadata=True: (idx, alert, meta)
            # asked at once: the decoder has just read this message's header (the last it decoded)
            schemas.append(writer_schema(decoder, item[2]))
            if deadline is None:
                deadline = time.monotonic() + batch_seconds
            elif time.monotonic() >= deadline:
                break
        if not batch:
            return False
        self._batch, self._results, self._next, self._done = batch, [], 0, 0
        try:
            self._results = self._engine.run([alert for _, alert, _ in batch], schemas)
        except BaseException as exc:
            self._failed = exc  # the batch stays held: no commit passes alerts whose rows never came
            raise
        return True

    def _whole(self, meta: Metadata) -> dict[str, Any]:
        """The alert of a ``SELECT *`` row, decoded whole (the batch held only the WHERE's fields), as
        ``gs.open`` finishes an alert a declared-fields filter kept."""
        value = meta.value
        last = self._last_whole
        if last is None or last[0] is not value:  # a container's alerts: decoded once for all its rows
            last = self._last_whole = (value, self.stream.decoder.decode(value, meta.key))
        return last[1][meta.index]

    def _hold(self) -> dict[TopicPartition, int]:
        """Per partition, the offset of the first alert of the batch not processed yet."""
        hold: dict[TopicPartition, int] = {}
        for _, _, meta in self._batch[self._done :]:
            hold.setdefault((meta.topic, meta.partition), meta.offset)
        return hold

    def commit(self, asynchronous: bool = False) -> None:
        """Remember, in Kafka, that the alerts of every row returned so far are processed (the
        alert of the row you hold, and those after it in its batch, are not)."""
        self.stream.commit(asynchronous, hold=self._hold())

    def close(self) -> None:
        """Close the stream (flushing what :meth:`commit` marked) and the DuckDB connection."""
        try:
            self.stream.close()
        finally:
            self._engine.close()

    def __enter__(self) -> Query:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<genesis Query {self.plan.source} {self.plan.sql!r}>"


def query(sql: str, tables: Mapping[str, TableSource] | None = None, **open_options: Any) -> Query:
    """Open a push query: SQL (DuckDB's dialect) over the alert stream its FROM names.

    ::

        import genesis.streaming as gs

        sql = '''SELECT objectId, candid, candidate.magpsf AS mag
                 FROM 'kafka://localhost/ztf'
                 WHERE candidate.ssnamenr <> 'null' AND candidate.magpsf < 19'''
        with gs.query(sql, start_at="earliest") as q:
            for idx, row in q(until_eos=True):
                print(row["objectId"], row["mag"])
            q.commit()

    ``tables``: names the query may join, each a CSV or Parquet path, a pyarrow Table or a pandas
    DataFrame (``JOIN watchlist w ON cone(a.candidate.ra, a.candidate.dec, w.ra, w.dec, w.radius)``
    is bucketed by sky cell). ``open_options`` are :func:`genesis.streaming.open`'s (``start_at``,
    ``auth``, ``on_decode_error``, ...).
    """
    from ..streaming import open as open_stream

    the_plan = plan(sql, tuple(tables or ()))
    if the_plan.create is not None:
        raise QueryError(
            f"CREATE STREAM {the_plan.create} is a persistent query (into the topic {the_plan.create}, exactly "
            "once): open it with gs.persistent_query(sql) and run() it, or run it with genesis query; "
            "gs.query takes a SELECT"
        )
    engine = Engine(the_plan, tables)
    try:
        stream = open_stream(the_plan.source, **open_options)
    except BaseException:
        engine.close()
        raise
    return Query(the_plan, stream, engine)
