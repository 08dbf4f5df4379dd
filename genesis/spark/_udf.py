"""What runs on Spark's executors: Kafka messages (Arrow batches) in, decoded and filtered alerts out.

One :class:`Work` is the function of a ``mapInArrow``: per message it asks genesis'
:class:`~genesis._processing.Processor` (the same decoder, prefix decoding, declared-fields guard
and verdicts as ``gs.open``), turns what is kept into Arrow rows of the DataFrame's columns, and
carries Kafka's columns (and, for unchanged alerts, the message's own bytes) along. Any failure
raises the genesis error that names the message (``topic[partition]@offset``): Spark fails the
task, retries it, and then fails the query with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._fields import Filter, fields_of
from .._processing import Processor
from ..errors import DecodeError, FilterError, SchemaMismatchError
from ._types import META, RAW, SchemaMismatch, Shape

#: the input columns of every Work, in this order
INPUT = (*RAW, *META)


class Transformed:
    """What a filter returned instead of the alert (so it is not taken for a kept alert)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Tagging:
    """A user's filter whose outputs other than the alert come back as :class:`Transformed`."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, alert: dict[str, Any]) -> Any:
        verdict = self.fn(alert)
        if verdict is None or verdict is False or verdict is True or verdict is alert:
            return verdict
        return Transformed(verdict)


def filter_name(flt: Any) -> str:
    """How messages name a filter: ``module:function`` where it has them."""
    module, name = getattr(flt, "__module__", None), getattr(flt, "__qualname__", None)
    return f"{module}:{name}" if module and name else repr(flt)


def tagging(flt: Any) -> Any:
    """``flt`` wrapped by :class:`Tagging`, declaring the same fields (so prefix decoding still applies)."""
    declared = fields_of(flt)
    if declared is None:
        return Tagging(flt)
    return Filter(Tagging(flt), fields=declared, name=getattr(flt, "__name__", None) or "filter")


@dataclass
class Columns:
    """The output of a Work: alert columns (a ``StructType``) then Kafka's, under ``names``."""

    alert: Any  #: StructType of the alert fields (or of what a filter returns)
    converted: set[tuple[str, ...]] = field(default_factory=set)
    #: Kafka's columns as they are named in the output (renamed when an alert field has the name)
    names: dict[str, str] = field(default_factory=dict)
    raw: bool = True  #: whether the message's key and value travel along
    large_types: bool = False  #: spark.sql.execution.arrow.useLargeVarTypes

    def meta(self) -> tuple[str, ...]:
        return (*META, *RAW) if self.raw else META

    def spark_schema(self) -> Any:
        """The whole output row: alert fields, then Kafka's columns."""
        from pyspark.sql import types as t

        kafka = {
            "topic": t.StringType(),
            "partition": t.IntegerType(),
            "offset": t.LongType(),
            "timestamp": t.TimestampType(),
            "key": t.BinaryType(),
            "value": t.BinaryType(),
        }
        extra = [t.StructField(self.names.get(n, n), kafka[n], True) for n in self.meta()]
        return t.StructType([*self.alert.fields, *extra])


def meta_names(alert_fields: list[str]) -> dict[str, str]:
    """Kafka's column names next to these alert fields: ``kafka_<name>`` where an alert field has the name."""
    taken = set(alert_fields)
    return {n: (f"kafka_{n}" if n in taken else n) for n in (*META, *RAW)}


class Work:
    """The ``mapInArrow`` function of a read (``filter`` None) or of an ``apply``.

    ``output``: the columns of what is kept; ``transformed``: whether they are those of what the
    filter returns (``apply(..., schema=)``) rather than those of the alert. Picklable: Spark sends
    it to the executors, where the Processor's decoder compiles each writer schema once per worker.
    """

    def __init__(self, processor: Processor, output: Columns, *, name: str = "", transformed: bool = False) -> None:
        self.processor = processor
        self.output = output
        self.name = name
        self.transformed = transformed
        self._ready = False

    def __getstate__(self) -> dict[str, Any]:
        return {"processor": self.processor, "output": self.output, "name": self.name, "transformed": self.transformed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._ready = False

    def _prepare(self) -> None:
        from pyspark.sql.pandas.types import to_arrow_schema

        out = self.output
        self._schema = to_arrow_schema(out.spark_schema(), timezone="UTC", prefers_large_types=out.large_types)
        self._alert_schema = to_arrow_schema(out.alert, timezone="UTC", prefers_large_types=out.large_types)
        self._shape = Shape.of(out.alert, out.converted)
        self._single = len(out.alert.fields) == 1
        self._ready = True

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        if not self._ready:
            self._prepare()
        for batch in batches:
            yield self.batch(batch)

    def batch(self, batch: Any) -> Any:
        """One Arrow batch of messages (:data:`INPUT` columns) as a batch of output rows."""
        import pyarrow as pa

        keys = batch.column(0).to_pylist()
        values = batch.column(1).to_pylist()
        rows: list[dict[str, Any]] = []
        sources: list[int] = []  # the input row of each output row
        own_bytes: list[bytes | None] = []  # each row's value bytes (differs from the message's for
        split = False  # an alert of a container holding several)
        for i, (key, value) in enumerate(zip(keys, values)):
            outcome = self.processor.process(key, value)
            if outcome.decode_error is not None:
                topic, partition, offset = self._location(batch, i)
                raise DecodeError(
                    outcome.decode_error.reason, topic=topic, partition=partition, offset=offset
                ) from outcome.decode_error
            if outcome.filter_error is not None:
                raise self._filter_error(batch, i, outcome) from (
                    outcome.filter_error if isinstance(outcome.filter_error, BaseException) else None
                )
            for _, kept in outcome.kept:
                row = self._row(kept, batch, i)
                try:
                    rows.append(self._shape.fit(row))
                except SchemaMismatch as exc:
                    raise self._mismatch(
                        batch,
                        i,
                        exc.field,
                        f"it holds the field {exc.field!r}, which they do not have. The columns are those of "
                        "read(schema=...), else of the newest writer schema in the topic when the query "
                        "started: pass a schema= that has the field, or fields= without it",
                    ) from None
                sources.append(i)
                if self.output.raw:
                    if outcome.records == 1:
                        own_bytes.append(value)
                    else:
                        split = True
                        own_bytes.append(self._alone(row, value, key))
        alert_columns = self._arrow(rows, batch, sources)
        take = pa.array(sources, type=pa.int64())
        columns = list(alert_columns)
        for name in self.output.meta():
            target = self._schema.field(self.output.names.get(name, name)).type
            if name == "value" and split:
                columns.append(pa.array(own_bytes, type=target))
            else:
                columns.append(batch.column(INPUT.index(name)).take(take).cast(target))
        return pa.RecordBatch.from_arrays(columns, schema=self._schema)

    def _row(self, kept: Any, batch: Any, i: int) -> dict[str, Any]:
        """The row of a kept output: the alert, or (``apply(schema=)``) what the filter returned."""
        if isinstance(kept, Transformed):
            if not self.transformed:
                where = self._where(batch, i)
                err = FilterError(
                    f"the filter {self.name} returned a {type(kept.value).__name__} instead of the alert at {where}: "
                    "a filter that returns something else needs its type, apply(df, filter, schema=...) "
                    "(a StructType, a DDL string or an Avro schema)"
                )
                err.topic, err.partition, err.offset = self._location(batch, i)
                raise err
            kept = kept.value
        if isinstance(kept, dict):
            return kept
        if self._single:
            return {self.output.alert.fields[0].name: kept}
        raise self._mismatch(
            batch,
            i,
            None,
            f"the filter returned a {type(kept).__name__}, not a dict of the columns "
            f"{', '.join(self.output.alert.fieldNames())}",
        )

    def _alone(self, alert: dict[str, Any], value: bytes, key: bytes | None) -> bytes:
        """One alert of a message holding several, as a message of its own."""
        try:
            return self.processor.decoder.as_container(alert, value, key)  # type: ignore[attr-defined]
        except (AttributeError, DecodeError):
            return json.dumps(alert, default=str).encode()

    def _arrow(self, rows: list[dict[str, Any]], batch: Any, sources: list[int]) -> list[Any]:
        """The alert columns of ``rows``; a row that does not convert names its message and field."""
        import pyarrow as pa

        try:
            return pa.RecordBatch.from_pylist(rows, schema=self._alert_schema).columns
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
        for row, i in zip(rows, sources):
            for f in self._alert_schema:
                try:
                    pa.array([row.get(f.name)], type=f.type)
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                    raise self._mismatch(
                        batch, i, f.name, f"its field {f.name!r} does not fit the column type {f.type}: {exc}"
                    ) from None
        raise AssertionError("a batch failed to convert, but none of its rows does")

    def _mismatch(self, batch: Any, i: int, name: str | None, why: str) -> SchemaMismatchError:
        """The error for an output row that does not fit the columns (``why`` says how)."""
        topic, partition, offset = self._location(batch, i)
        return SchemaMismatchError(
            f"does not fit the DataFrame's columns: {why}", field=name, topic=topic, partition=partition, offset=offset
        )

    def _filter_error(self, batch: Any, i: int, outcome: Any) -> FilterError:
        where = self._where(batch, i)
        exc = outcome.filter_error
        text = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
        which = f" (alert {outcome.failed_at + 1} of {outcome.records} in the message)" if outcome.records > 1 else ""
        err = FilterError(f"the filter {self.name} raised {text} on the alert at {where}{which}")
        err.topic, err.partition, err.offset = self._location(batch, i)
        return err

    @staticmethod
    def _location(batch: Any, i: int) -> tuple[str, int, int]:
        return (
            batch.column(2)[i].as_py(),
            batch.column(3)[i].as_py(),
            batch.column(4)[i].as_py(),
        )

    @classmethod
    def _where(cls, batch: Any, i: int) -> str:
        topic, partition, offset = cls._location(batch, i)
        return f"{topic}[{partition}]@{offset}"
