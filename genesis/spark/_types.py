"""Column types of decoded alerts: Avro writer schemas as Spark types, and the check of each alert.

An Avro record becomes a ``StructType`` (nested records stay structs, arrays ``ArrayType``, maps
``MapType``); every column is nullable, so an alert written with an older schema, which lacks a
field, gets a null there. A :class:`Shape` walks each decoded alert before it becomes an Arrow
row: a field the columns do not have fails the query naming it (Arrow would drop it silently),
and the few logical types Arrow cannot take from Python as they are (``uuid``, ``time-*``) are
turned into strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

#: Kafka's columns next to the alert's fields, in this order
META = ("topic", "partition", "offset", "timestamp")
#: the message's own bytes, kept with unchanged alerts (for writing them on, byte for byte)
RAW = ("key", "value")

_PRIMITIVE = {
    "boolean": "BooleanType",
    "int": "IntegerType",
    "long": "LongType",
    "float": "FloatType",
    "double": "DoubleType",
    "bytes": "BinaryType",
    "string": "StringType",
    "null": "NullType",
}
_NUMERIC = ("int", "long", "float", "double")


def _t() -> Any:
    from pyspark.sql import types

    return types


def avro_to_spark(schema: Any) -> tuple[Any, set[tuple[str, ...]]]:
    """The Spark ``StructType`` of a record schema's values, and the paths whose values are turned
    into strings (``uuid``, ``time-*``) before they become Arrow."""
    import fastavro.schema

    if isinstance(schema, (str, bytes)):
        schema = json.loads(schema)
    expanded = fastavro.schema.expand_schema(schema)
    if not (isinstance(expanded, dict) and expanded.get("type") in ("record", "error")):
        raise ConfigError(f"alerts must be Avro records, not {str(expanded)[:100]}")
    converted: set[tuple[str, ...]] = set()
    t = _t()
    struct = t.StructType(
        [t.StructField(f["name"], _spark_type(f["type"], (f["name"],), converted), True) for f in expanded["fields"]]
    )
    return struct, converted


def _spark_type(avro: Any, path: tuple[str, ...], converted: set[tuple[str, ...]]) -> Any:
    t = _t()
    where = ".".join(path).replace(".[]", "[]").replace(".{}", "{}")
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if not branches:
            return t.NullType()
        if len(branches) == 1:
            return _spark_type(branches[0], path, converted)
        if all(b in _NUMERIC for b in branches):
            return t.LongType() if set(branches) <= {"int", "long"} else t.DoubleType()
        raise ConfigError(
            f"the field {where} is a union of {', '.join(map(str, branches))[:200]}, which has no one Spark type: "
            "give read() a schema= that leaves it out, or fields= without it"
        )
    if isinstance(avro, str):
        if avro in _PRIMITIVE:
            return getattr(t, _PRIMITIVE[avro])()
        raise ConfigError(f"the field {where} has the unresolved Avro type {avro!r}")
    kind, logical = avro.get("type"), avro.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return t.TimestampType()
    if logical in ("local-timestamp-millis", "local-timestamp-micros"):
        return t.TimestampNTZType()
    if logical == "date":
        return t.DateType()
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = int(avro.get("precision", 0)), int(avro.get("scale", 0))
        if not 0 < precision <= 38:
            raise ConfigError(f"the decimal field {where} has precision {precision}; Spark takes 1 to 38")
        return t.DecimalType(precision, scale)
    if logical in ("uuid", "time-millis", "time-micros"):
        converted.add(path)
        return t.StringType()
    if kind in ("record", "error"):
        return t.StructType(
            [
                t.StructField(f["name"], _spark_type(f["type"], (*path, f["name"]), converted), True)
                for f in avro["fields"]
            ]
        )
    if kind == "array":
        return t.ArrayType(_spark_type(avro["items"], (*path, "[]"), converted), True)
    if kind == "map":
        return t.MapType(t.StringType(), _spark_type(avro["values"], (*path, "{}"), converted), True)
    if kind == "enum":
        return t.StringType()
    if kind == "fixed":
        return t.BinaryType()
    if isinstance(kind, (str, list, dict)):
        return _spark_type(kind, path, converted)
    raise ConfigError(f"the field {where} has an Avro type genesis cannot map to Spark: {str(avro)[:200]}")


def as_struct(schema: Any) -> Any:
    """A ``StructType`` from what ``schema=`` may be: a ``StructType``, a DDL string
    (``"objectId string, candidate struct<magpsf: float>"``), or an Avro record schema (dict or JSON)."""
    t = _t()
    if isinstance(schema, t.StructType):
        return schema
    if isinstance(schema, dict) or (isinstance(schema, str) and schema.lstrip().startswith("{")):
        return avro_to_spark(schema)[0]
    if isinstance(schema, str):
        try:
            parsed = t.DataType.fromDDL(schema)
        except Exception as exc:
            raise ConfigError(f"schema={schema[:200]!r} is not a Spark DDL schema: {exc}") from None
        if isinstance(parsed, t.StructType):
            return parsed
    raise ConfigError(
        f"schema= must be a pyspark StructType, a DDL string or an Avro record schema, not {type(schema).__name__}"
    )


class SchemaMismatch(Exception):
    """An alert does not fit the columns: ``field`` is the dotted path of what does not fit."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field, self.why = field, why


class Shape:
    """How one Spark type is checked and fixed in a decoded value (built once, applied per alert).

    Only the parts of a type that hold structs or converted leaves get a node; a struct node
    remembers the key tuples it has accepted, so the check per alert is a tuple lookup per
    struct.
    """

    __slots__ = ("kind", "names", "children", "element", "convert", "seen", "path")

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind  #: "struct", "array", "map" or "leaf"
        self.path = path
        self.names: frozenset[str] = frozenset()
        self.children: tuple[tuple[str, Shape], ...] = ()
        self.element: Shape | None = None
        self.convert: Callable[[Any], Any] | None = None
        self.seen: set[tuple[str, ...]] = set()

    @classmethod
    def of(cls, struct: Any, converted: set[tuple[str, ...]] = frozenset()) -> Shape:  # type: ignore[assignment]
        """The shape of a ``StructType`` of alert columns (``converted``: paths turned into strings)."""
        shape = cls._build(struct, (), converted)
        assert shape is not None
        return shape

    @classmethod
    def _build(cls, dtype: Any, path: tuple[str, ...], converted: set[tuple[str, ...]]) -> Shape | None:
        t = _t()
        where = ".".join(path).replace(".[]", "[]").replace(".{}", "{}")
        if isinstance(dtype, t.StructType):
            node = cls("struct", where)
            node.names = frozenset(dtype.fieldNames())
            children = []
            for f in dtype.fields:
                child = cls._build(f.dataType, (*path, f.name), converted)
                if child is not None:
                    children.append((f.name, child))
            node.children = tuple(children)
            return node
        if isinstance(dtype, (t.ArrayType, t.MapType)):
            inner = dtype.elementType if isinstance(dtype, t.ArrayType) else dtype.valueType
            mark = "[]" if isinstance(dtype, t.ArrayType) else "{}"
            element = cls._build(inner, (*path, mark), converted)
            if element is None:
                return None
            node = cls("array" if mark == "[]" else "map", where)
            node.element = element
            return node
        if path in converted:
            node = cls("leaf", where)
            node.convert = str
            return node
        return None

    def fit(self, value: Any) -> Any:
        """``value`` checked against this shape, converted leaves replaced (dicts and lists in place).

        Raises :class:`SchemaMismatch` for a field the type does not have.
        """
        kind = self.kind
        if kind == "struct":
            if not isinstance(value, dict):
                return value  # Arrow says what is wrong with it
            keys = tuple(value)
            if keys not in self.seen:
                extra = [k for k in keys if k not in self.names]
                if extra:
                    name = f"{self.path}.{extra[0]}" if self.path else extra[0]
                    raise SchemaMismatch(name, "a field the columns do not have")
                self.seen.add(keys)
            for name, child in self.children:
                v = value.get(name)
                if v is not None:
                    fitted = child.fit(v)
                    if fitted is not v:
                        value[name] = fitted
            return value
        if kind == "leaf":
            return self.convert(value) if self.convert is not None else value
        element = self.element
        assert element is not None
        if kind == "array" and isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None:
                    fitted = element.fit(item)
                    if fitted is not item:
                        value[i] = fitted
        elif kind == "map" and isinstance(value, dict):
            for k, item in value.items():
                if item is not None:
                    fitted = element.fit(item)
                    if fitted is not item:
                        value[k] = fitted
        return value


def merge(types: list[Any], path: tuple[str, ...] = (), converted: set[tuple[str, ...]] | None = None) -> Any:
    """One Spark type holding every field of ``types`` (the newest first): the newest's fields in its
    order, then those only older ones have; nested structs (also inside arrays and maps) are merged
    the same way. Numbers of different types become the widest (bigint, else double); a field whose
    types differ otherwise becomes a string column, its path added to ``converted``."""
    t = _t()
    converted = set() if converted is None else converted
    first = types[0]
    if all(isinstance(o, t.StructType) for o in types):
        fields: dict[str, list[Any]] = {}
        for struct in types:
            for f in struct.fields:
                fields.setdefault(f.name, []).append(f.dataType)
        return t.StructType(
            [t.StructField(name, merge(kinds, (*path, name), converted), True) for name, kinds in fields.items()]
        )
    if all(isinstance(o, t.ArrayType) for o in types):
        return t.ArrayType(merge([o.elementType for o in types], (*path, "[]"), converted), True)
    if all(isinstance(o, t.MapType) for o in types):
        return t.MapType(first.keyType, merge([o.valueType for o in types], (*path, "{}"), converted), True)
    if all(o == first for o in types):
        return first
    numbers = (t.IntegerType, t.LongType, t.FloatType, t.DoubleType)
    if all(isinstance(o, numbers) for o in types):
        return t.LongType() if all(isinstance(o, (t.IntegerType, t.LongType)) for o in types) else t.DoubleType()
    converted.add(path)
    return t.StringType()
