"""The Avro schema of a query's result, derived from its Arrow types, for ``CREATE STREAM`` outputs.

A persistent query that selects columns (not ``SELECT *``) writes its rows as Avro containers
whose schema follows the result's types: DuckDB's BIGINT is a ``long``, DOUBLE a ``double``, a
STRUCT a record, a LIST an array, TIMESTAMP a ``timestamp-micros`` long, DECIMAL a ``decimal``,
and so on, every field nullable (a value may be NULL in any row). The schema is embedded in each
message, as ZTF sends alerts, so ``gs.open`` and ``genesis consume`` read the topic without a
registry. A column whose name Avro does not allow, or whose type it cannot hold, is a
:class:`~genesis.errors.QueryError` that says what to write instead.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import QueryError
from ._parse import ROW

#: what Avro allows as a name
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: the namespace of the records genesis writes for persistent queries
NAMESPACE = "genesis.query"


class ResultSchema:
    """The Avro schema of one Arrow result schema (``__genesis_row`` left out), and how rows fit it."""

    def __init__(self, arrow: Any, stream: str) -> None:
        import pyarrow as pa

        self._pa = pa
        self.stream = stream
        fields = [f for f in arrow if f.name != ROW]
        names = [f.name for f in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise QueryError(
                f"CREATE STREAM {stream}: the columns {', '.join(dup)} appear more than once; name each "
                "with AS (e.g. SELECT a.objectId, w.name AS watchlist_name ...)"
            )
        self._maps = [f for f in fields if _has_map(f.type, pa)]
        self.avro: dict[str, Any] = {
            "type": "record",
            "name": _record_name(stream),
            "namespace": NAMESPACE,
            "doc": f"rows of the persistent query {stream} (genesis query CREATE STREAM)",
            "fields": [self._field(f.name, f.type, _record_name(stream)) for f in fields],
        }

    def rows(self, table_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows of the result (``to_pylist()``) as Avro records: maps become dicts."""
        for row in table_rows if self._maps else ():
            for f in self._maps:
                row[f.name] = _dicts(row[f.name], f.type, self._pa)
        return table_rows

    # ------------------------------------------------------------------ schema
    def _field(self, name: str, arrow_type: Any, parent: str) -> dict[str, Any]:
        if not _NAME.match(name):
            raise QueryError(
                f"CREATE STREAM {self.stream}: the column {name!r} is not a name Avro allows (letters, digits "
                f"and _, not first a digit): name it with AS, e.g. ... AS {_suggest(name)}"
            )
        avro = self._type(arrow_type, f"{parent}_{name}", name)
        return {"name": name, "type": avro if avro == "null" else ["null", avro], "default": None}

    def _type(self, t: Any, record: str, column: str) -> Any:
        pa, types = self._pa, self._pa.types
        if pa.types.is_dictionary(t):
            return self._type(t.value_type, record, column)
        simple = _simple(t, types)
        if simple is not None:
            return simple
        if types.is_decimal(t):
            return {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
        if types.is_timestamp(t):
            return {"type": "long", "logicalType": "timestamp-micros"}
        if types.is_struct(t):
            return {
                "type": "record",
                "name": record,
                "fields": [self._field(t.field(i).name, t.field(i).type, record) for i in range(t.num_fields)],
            }
        if types.is_map(t):
            if not (types.is_string(t.key_type) or types.is_large_string(t.key_type)):
                raise QueryError(
                    f"CREATE STREAM {self.stream}: the column {column!r} is a MAP with {t.key_type} keys; Avro "
                    "maps have text keys: cast them (map_from_entries(... CAST(key AS VARCHAR) ...))"
                )
            value = self._type(t.item_type, record, column)
            return {"type": "map", "values": value if value == "null" else ["null", value]}
        if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
            item = self._type(t.value_type, record, column)
            return {"type": "array", "items": item if item == "null" else ["null", item]}
        raise QueryError(
            f"CREATE STREAM {self.stream}: the column {column!r} has the type {t}, which genesis cannot write "
            "as Avro: cast it (e.g. CAST(... AS VARCHAR) or CAST(... AS DOUBLE))"
        )


def _simple(t: Any, types: Any) -> Any:
    """The Avro type of an Arrow scalar type without parameters, or None."""
    if types.is_null(t):
        return "null"
    if types.is_boolean(t):
        return "boolean"
    if types.is_int8(t) or types.is_int16(t) or types.is_int32(t) or types.is_uint8(t) or types.is_uint16(t):
        return "int"
    if types.is_integer(t):  # int64, uint32, uint64
        return "long"
    if types.is_float16(t) or types.is_float32(t):
        return "float"
    if types.is_float64(t):
        return "double"
    if types.is_string(t) or types.is_large_string(t) or getattr(types, "is_string_view", lambda _: False)(t):
        return "string"
    if types.is_binary(t) or types.is_large_binary(t) or types.is_fixed_size_binary(t):
        return "bytes"
    if types.is_date(t):
        return {"type": "int", "logicalType": "date"}
    if types.is_time(t):
        return {"type": "long", "logicalType": "time-micros"}
    return None


def _has_map(t: Any, pa: Any) -> bool:
    if pa.types.is_map(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_map(t.field(i).type, pa) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_map(t.value_type, pa)
    return False


def _dicts(value: Any, t: Any, pa: Any) -> Any:
    """A value of Arrow type ``t`` as Avro takes it: Arrow's maps (lists of (key, value) pairs) as dicts."""
    if value is None:
        return None
    if pa.types.is_map(t):
        return {k: _dicts(v, t.item_type, pa) for k, v in value}
    if pa.types.is_struct(t):
        return {f.name: _dicts(value.get(f.name), f.type, pa) for f in t}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [_dicts(v, t.value_type, pa) for v in value]
    return value


def _record_name(stream: str) -> str:
    """A stream's name as an Avro record name (``bright-sn`` -> ``bright_sn``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stream)
    return name if _NAME.match(name) else f"_{name}"


def _suggest(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "value"
    return cleaned if _NAME.match(cleaned) else f"c_{cleaned}"
