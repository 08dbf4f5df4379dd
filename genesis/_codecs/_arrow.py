"""Avro writer schemas as Apache Arrow schemas, for Parquet files (``genesis consume --format parquet``).

Nested stays nested: a record is a struct, an array a list, a map a map, so ``candidate.magpsf``
or ``prvDiaSources[].psfFlux`` keep the shape the alert has. A union with null is a nullable
column of its other branch; enums are strings, fixed is fixed-size binary, and the logical types
fastavro decodes (timestamps, dates, times, decimals, uuids) become Arrow's. Only what the alert
dicts hold is mapped: the top-level fields asked for (``fields``), without bytes (the cutouts)
when ``drop_bytes``. pyarrow is imported only here, and only when called.
"""

from __future__ import annotations

from typing import Any

import fastavro

from genesis.errors import ConfigError

from ._avro import plain_schema


def require_pyarrow() -> Any:
    """The ``pyarrow`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ConfigError(
            f"Parquet files need pyarrow, a dependency of genesis ({exc}): reinstall it (pip install genesis-streaming)"
        ) from None
    return pyarrow


def arrow_schema(schema: Any, *, fields: tuple[str, ...] | None = None, drop_bytes: bool = False) -> Any:
    """The ``pyarrow.Schema`` of records written with the Avro record ``schema`` (JSON-ready or parsed).

    ``fields``: only these top-level fields (in the writer schema's order; names it lacks are
    left out). ``drop_bytes``: no bytes fields at any depth (a struct left empty goes too).
    """
    pa = require_pyarrow()
    # forced: a header written by fastavro may carry its parse marker but not the named types
    parsed: Any = fastavro.parse_schema(plain_schema(schema), _force=True)
    if parsed.get("type") not in ("record", "error"):
        raise ConfigError(f"Parquet rows need a record schema, not {parsed.get('type')!r}")
    named = parsed.get("__named_schemas", {})
    columns = []
    for field in parsed["fields"]:
        if fields is not None and field["name"] not in fields:
            continue
        column = _field(pa, field["name"], field["type"], named, drop_bytes)
        if column is not None:
            columns.append(column)
    return pa.schema(columns, metadata={"avro.schema.name": str(parsed.get("name", ""))})


def _field(pa: Any, name: str, node: Any, named: dict[str, Any], drop_bytes: bool) -> Any:
    """An Arrow field for Avro type ``node`` (None: left out)."""
    nullable = False
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        nullable = len(branches) < len(node)
        if len(branches) > 1:
            raise ConfigError(
                f"field {name!r} is a union of {', '.join(map(str, branches))}: a Parquet column has one "
                "type; leave it out with --fields"
            )
        node = branches[0] if branches else "null"
    kind = _type(pa, name, node, named, drop_bytes)
    if kind is None:
        return None
    return pa.field(name, kind, nullable=nullable or kind == pa.null())


_PRIMITIVES = {
    "null": "null",
    "boolean": "bool_",
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "bytes": "binary",
    "string": "string",
}


def _type(pa: Any, name: str, node: Any, named: dict[str, Any], drop_bytes: bool) -> Any:
    if isinstance(node, str) and node in named:
        node = named[node]
    if isinstance(node, str):
        if node == "bytes" and drop_bytes:
            return None
        return getattr(pa, _PRIMITIVES[node])()
    if isinstance(node, list):  # {"type": [...]}: a union given as a type's type
        field = _field(pa, name, node, named, drop_bytes)
        return None if field is None else field.type
    logical = node.get("logicalType")
    if logical is not None:
        found = _logical(pa, node, logical)
        if found is not None:
            return found
    kind = node.get("type")
    if kind in ("record", "error"):
        children = [_field(pa, f["name"], f["type"], named, drop_bytes) for f in node["fields"]]
        children = [c for c in children if c is not None]
        return pa.struct(children) if children else None  # Parquet has no empty structs
    if kind == "array":
        item = _field(pa, "item", node["items"], named, drop_bytes)
        return None if item is None else pa.list_(item)
    if kind == "map":
        value = _field(pa, "value", node["values"], named, drop_bytes)
        return None if value is None else pa.map_(pa.string(), value)
    if kind == "enum":
        return pa.string()
    if kind == "fixed":
        return None if drop_bytes else pa.binary(node["size"])
    return _type(pa, name, kind, named, drop_bytes)  # {"type": "long", ...}


def _logical(pa: Any, node: dict[str, Any], logical: str) -> Any:
    """Arrow's type for the Avro logical types fastavro decodes to Python objects (None: use the base type)."""
    if logical in ("timestamp-millis", "timestamp-micros"):
        return pa.timestamp("ms" if logical.endswith("millis") else "us", tz="UTC")
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        return pa.timestamp("ms" if logical.endswith("millis") else "us")
    if logical == "date":
        return pa.date32()
    if logical == "time-millis":
        return pa.time32("ms")
    if logical == "time-micros":
        return pa.time64("us")
    if logical == "decimal":
        return pa.decimal128(node["precision"], node.get("scale", 0))
    if logical == "uuid":
        return pa.string()
    return None
