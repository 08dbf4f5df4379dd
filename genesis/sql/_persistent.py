"""Persistent queries: ``CREATE STREAM name AS SELECT ... FROM 'kafka://group@host/topic' ...``, exactly once.

The query runs as an exactly-once pipe (:mod:`genesis.pipe`, Kafka transactions) from the FROM
topic into the topic ``name`` on the same cluster, created if missing: every input alert's rows
appear there once to read_committed readers, whatever crashes, because the rows and the input
offsets are committed in one transaction. The SQL runs in DuckDB over each batch of messages
the pipe takes (up to 1,000 alerts, fewer when no more are waiting):

* ``SELECT * ... WHERE ...`` writes the input messages that pass unchanged, byte for byte (a
  message holding several alerts of which some pass is re-encoded with its own schema);
* a projection writes, per input message with rows, one Avro container of its rows, with a schema
  derived from the result's types (:mod:`genesis.sql._avro`), readable by ``gs.open`` and
  ``genesis consume``.

Only the fields the SQL reads are decoded. The group in FROM is required: its committed offsets
are where a restarted query goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from .._codecs import Decoder, encode_container
from .._kafka import Credentials
from .._models import Processed
from .._urls import parse_url
from ..errors import QueryError
from ..pipe import Pipe, output_partitions, pipe
from ._avro import ResultSchema
from ._engine import Engine, TableSource, writer_schema
from ._parse import ROW, Plan, plan


class SqlStep:
    """A planned ``CREATE STREAM`` as a pipe's :class:`~genesis.pipe.BatchStep`."""

    def __init__(self, the_plan: Plan, engine: Engine) -> None:
        assert the_plan.create is not None
        self.plan = the_plan
        self.stream = the_plan.create
        self._engine = engine
        #: what DuckDB reads: for SELECT * only the WHERE's fields (the message itself is written)
        self.fields = the_plan.fields or None
        self._schemas: dict[Any, ResultSchema] = {}  # Arrow result schema -> its Avro schema

    def __call__(self, batch: Sequence[Processed], decoder: Decoder) -> list[Processed | bytes | None]:
        alerts: list[dict[str, Any]] = []
        schemas: list[Any] = []
        origin: list[tuple[int, int]] = []  # (message in the batch, alert in the message) of each alert
        for m, processed in enumerate(batch):
            if not processed.kept:
                continue
            schema = writer_schema(decoder, processed.meta)
            for (i, _), alert in zip(processed.kept, processed.survivors(), strict=True):
                alerts.append(alert)
                schemas.append(schema)
                origin.append((m, i))
        outputs: list[Processed | bytes | None] = [None] * len(batch)
        if not alerts:
            return outputs
        tables = self._engine.run_arrow(alerts, schemas)
        if self.plan.star:
            passed: dict[int, list[int]] = {}
            for table in tables:
                for position in table.column(ROW).to_pylist():
                    m, i = origin[position]
                    passed.setdefault(m, []).append(i)
            # a message of which some alerts pass is re-encoded: from its whole alerts
            whole = lambda key, value: decoder.decode(value, key)
            for m, indices in passed.items():
                outputs[m] = replace(batch[m], kept=tuple((i, None) for i in sorted(indices)), decode=whole)
            return outputs
        rows: dict[int, tuple[ResultSchema, list[tuple[int, dict[str, Any]]]]] = {}
        for table in tables:
            result = self._result_schema(table.schema)
            for row in result.rows(table.to_pylist()):
                position = row.pop(ROW)
                rows.setdefault(origin[position][0], (result, []))[1].append((position, row))
        for m, (result, found) in rows.items():
            found.sort(key=lambda r: r[0])
            outputs[m] = encode_container([row for _, row in found], result.avro)
        return outputs

    def _result_schema(self, arrow: Any) -> ResultSchema:
        found = self._schemas.get(arrow)
        if found is None:
            found = self._schemas[arrow] = ResultSchema(arrow, self.stream)
        return found

    def close(self) -> None:
        self._engine.close()


def persistent_query(
    sql: str, tables: Mapping[str, TableSource] | None = None, *, slot: int = 0, **read_options: Any
) -> Pipe:
    """Open a persistent query (``CREATE STREAM name AS SELECT ...``) as an exactly-once pipe.

    ::

        import genesis.streaming as gs

        sql = '''CREATE STREAM bright AS
                 SELECT * FROM 'kafka://bright@localhost/ztf' WHERE candidate.magpsf < 16'''
        with gs.persistent_query(sql, start_at="earliest") as p:
            p.run(until_eos=True)
        print(p.stats)            # alerts read, outputs written, transactions

    The FROM URL must name a consumer group; the topic ``name`` is made on the same cluster if
    missing. ``tables``: as in :func:`genesis.sql.query`; ``slot``: this process among the group's
    (``genesis query --processes N``); ``read_options`` are :func:`genesis.pipe`'s (``start_at``,
    ``auth``, ``on_decode_error``, ``commit_every`` ...).
    """
    the_plan, out_url = _planned(sql, tables)
    engine = Engine(the_plan, tables)
    try:
        made = pipe(the_plan.source, out_url, step=SqlStep(the_plan, engine), slot=slot, create=True, **read_options)
        return cast(Pipe, made)  # out_url is the kafka:// topic of CREATE STREAM: never a webhook
    except BaseException:
        engine.close()
        raise


def output_topic(sql: str, tables: Mapping[str, TableSource] | None = None, *, auth: Credentials = None) -> str:
    """Make the topic of a ``CREATE STREAM`` if it is missing (before N processes race to), and name it."""
    the_plan, out_url = _planned(sql, tables)
    output_partitions(parse_url(the_plan.source), parse_url(out_url), create=True, auth=auth)
    return out_url


def _planned(sql: str, tables: Mapping[str, TableSource] | None) -> tuple[Plan, str]:
    """The plan of a ``CREATE STREAM`` and the URL of its topic, or the QueryError that says why not."""
    the_plan = plan(sql, tuple(tables or ()))
    if the_plan.create is None:
        raise QueryError(
            "a persistent query begins with CREATE STREAM name AS SELECT ...; run a plain SELECT with gs.query"
        )
    if the_plan.limit is not None:
        raise QueryError(
            f"CREATE STREAM {the_plan.create}: LIMIT has no meaning in a persistent query (it runs until stopped); "
            "stop it after N input alerts with run(limit=N) (genesis query --limit N)"
        )
    spec = parse_url(the_plan.source)
    if spec.scheme != "kafka" or spec.group is None:
        raise QueryError(
            f"CREATE STREAM {the_plan.create} reads a Kafka topic as a consumer group, whose commits say where a "
            f"restarted query goes on: FROM 'kafka://GROUP@host/topic', not {the_plan.source!r}"
        )
    return the_plan, replace(spec, topics=(the_plan.create,), group=None).url()
