"""Avro building blocks shared by the message formats: varints, schema parsing, record reading.

Everything here turns fastavro's assorted exceptions (``EOFError``, ``IndexError``,
``UnicodeDecodeError``, ``SchemaParseException``...) into :class:`DecodeError` with a
reason a user can act on, so no decoder has to repeat that translation.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from io import BytesIO
from typing import Any, Generic, TypeVar

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from genesis.errors import ConfigError, DecodeError, DeliveryError

#: A varint longer than this cannot hold a 64-bit long: the data is corrupt.
_MAX_VARINT_BYTES = 10

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small bounded mapping that forgets the least recently used entry first."""

    __slots__ = ("_data", "_size")

    def __init__(self, size: int = 256) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._data[key] = value
        if len(self._data) > self._size:
            self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)


def read_long(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read one zig-zag varint (Avro ``long``) at ``pos``; return ``(value, new_pos)``.

    ``what`` names the field for the error message ("block record count", ...).
    """
    shift = result = 0
    end = len(buf)
    start = pos
    while True:
        if pos >= end:
            raise DecodeError(f"truncated Avro data: the {what} at byte {start} is cut off")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise DecodeError(f"corrupt Avro data: the {what} at byte {start} is not a valid varint")


def write_long(value: int) -> bytes:
    """Encode one Avro ``long`` as a zig-zag varint."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def parse_schema(schema: Any, where: str) -> dict | list | str:
    """Parse an Avro schema given as JSON text/bytes or as a dict, for fastavro's readers and writers.

    The expensive step (20 KB for a ZTF alert schema) that callers cache; ``where``
    says where the schema came from for the error message.
    """
    try:
        if isinstance(schema, memoryview):
            schema = bytes(schema)
        if isinstance(schema, (bytes, bytearray, str)):
            schema = json.loads(schema)
        return fastavro.parse_schema(schema)
    except Exception as exc:  # json, fastavro and recursion errors alike
        raise DecodeError(f"invalid Avro schema in {where}: {_describe(exc)}") from exc


def plain_schema(schema: Any) -> Any:
    """The schema as JSON-ready data: text is parsed, fastavro's parse markers are dropped."""
    if isinstance(schema, (bytes, bytearray, str)):
        return json.loads(schema)
    if isinstance(schema, dict) and "__fastavro_parsed" in schema:
        return {k: v for k, v in schema.items() if k not in ("__fastavro_parsed", "__named_schemas")}
    return schema


_NAMED_KINDS = ("record", "error", "enum", "fixed")


def self_contained(schema: Any) -> Any:
    """The schema as JSON-ready data with every named type defined where it is first used.

    fastavro keeps types it was given separately (a registry schema's references) by name only;
    a decoder that compiles the JSON on its own needs their definitions inline, once each.
    """
    named: dict[str, Any] = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    defined: set[str] = set()

    def full(name: str, namespace: str | None) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def walk(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            name = full(node, namespace)
            if name in named and name not in defined:
                return walk(named[name], namespace)
            return node
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            return node
        node = {k: v for k, v in node.items() if not k.startswith("__")}
        kind = node.get("type")
        if kind in _NAMED_KINDS and "name" in node:
            name = full(node["name"], node.get("namespace", namespace))
            defined.add(name)
            namespace = name.rpartition(".")[0] or None
        if kind in ("record", "error"):
            node["fields"] = [{**f, "type": walk(f["type"], namespace)} for f in node.get("fields", ())]
        elif kind == "array":
            node["items"] = walk(node["items"], namespace)
        elif kind == "map":
            node["values"] = walk(node["values"], namespace)
        elif isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _NAMED_KINDS):
            node["type"] = walk(kind, namespace)
        return node

    return walk(plain_schema(schema), None)


def schema_name(schema: Any) -> str:
    """The full name of a parsed schema's top-level type, for messages."""
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("type"))
    return str(schema)


def read_records(buf: bytes, start: int, end: int, count: int, schema: Any, what: str) -> list[dict]:
    """Decode ``count`` schemaless records laid end to end in ``buf[start:end]``.

    The records must fill the span exactly: a short read means truncation, a long
    one trailing garbage, both reported as :class:`DecodeError`.
    """
    bio = BytesIO(buf)
    if start:
        bio.seek(start)
    records: list[dict] = []
    append = records.append
    try:
        for _ in range(count):
            append(schemaless_reader(bio, schema))  # type: ignore[arg-type]  # fastavro types the schema narrowly
    except EOFError as exc:
        raise DecodeError(
            f"truncated {what}: record {len(records) + 1} of {count} ends early ({exc or 'no more bytes'})"
        ) from exc
    except Exception as exc:
        raise DecodeError(
            f"{what} does not match its schema {schema_name(schema)}: {_describe(exc)} "
            f"(record {len(records) + 1} of {count})"
        ) from exc
    used = bio.tell()
    if used > end:
        raise DecodeError(f"corrupt {what}: its records take {used - start} bytes, but {end - start} were declared")
    if used < end:
        raise DecodeError(
            f"{what} has {end - used} bytes of trailing garbage after "
            f"{'its record' if count == 1 else f'its {count} records'}"
        )
    return records


def write_record(bio: BytesIO, schema: Any, record: Any) -> None:
    """Append one schemaless record to ``bio``; a record that does not fit raises :class:`DeliveryError`."""
    try:
        schemaless_writer(bio, schema, record)
    except Exception as exc:
        raise DeliveryError(
            f"cannot encode the record: it does not fit the schema {schema_name(schema)}: {_describe(exc)}"
        ) from exc


def encode_schemaless(record: Any, schema: Any) -> bytes:
    """``record`` as schemaless Avro (Fink's messages, whose key holds the schema)."""
    bio = BytesIO()
    write_record(bio, writer_schema(schema).parsed, record)
    return bio.getvalue()


def may_be_empty(schema: Any, named: dict | None = None, seen: frozenset = frozenset()) -> bool:
    """True when a value of ``schema`` can take zero bytes (null, empty record, fixed of size 0).

    Only such records can legitimately outnumber the bytes of an Avro block; for
    every other schema a larger record count is corruption, refused before looping.
    """
    if named is None:
        named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    if isinstance(schema, str):
        if schema == "null":
            return True
        if schema in named and schema not in seen:
            return may_be_empty(named[schema], named, seen | {schema})
        return False
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record" or kind == "error":
            return all(may_be_empty(f["type"], named, seen) for f in schema.get("fields", ()))
        if kind == "fixed":
            return schema.get("size") == 0
        if isinstance(kind, (str, dict, list)) and kind not in ("array", "map", "enum"):
            return may_be_empty(kind, named, seen)
    return False  # unions, arrays, maps, enums and other primitives take at least one byte


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return f"a string is not valid UTF-8 ({text})"
    if isinstance(exc, IndexError):
        return f"a union or enum index is out of range ({text})"
    return text


class SchemaCache:
    """Compiled schemas keyed by their JSON bytes (container headers, message keys), compiled once.

    Bounded (LRU) so a stream of ever-new schemas cannot grow memory; the previous hit is
    checked first with a plain byte comparison, which is all a stream with one schema costs.
    ``compile(raw, where)`` makes what the reader needs (default: fastavro's parsed schema).
    """

    __slots__ = ("_lru", "_last_key", "_last", "_where", "_compile")

    def __init__(self, where: str, size: int = 256, compile: Callable[[bytes, str], Any] | None = None) -> None:
        self._lru: LRU[bytes, Any] = LRU(size)
        self._last_key: bytes | None = None
        self._last: Any = None
        self._where = where
        self._compile = compile or parse_schema

    def get(self, raw: bytes) -> Any:
        """The compiled schema for ``raw`` JSON; :class:`DecodeError` when it is not an Avro schema."""
        if raw == self._last_key:
            return self._last
        schema = self._lru.get(raw)
        if schema is None:
            schema = self._lru.put(raw, self._compile(raw, self._where))
        self._last_key, self._last = raw, schema
        return schema


class WriterSchema:
    """A schema prepared for encoding: parsed once, plus its JSON text for container headers."""

    __slots__ = ("source", "parsed", "json", "headers")

    def __init__(self, source: Any) -> None:
        self.source = source  # kept alive so that the id() key of the cache stays valid
        try:
            plain = plain_schema(source)
            self.parsed = fastavro.parse_schema(plain)
        except Exception as exc:
            raise ConfigError(f"not a valid Avro schema: {_describe(exc)}") from exc
        self.json = json.dumps(fastavro.parse_schema(plain, _write_hint=False), separators=(",", ":")).encode()
        self.headers: dict[str, bytes] = {}


_writers: LRU[Any, WriterSchema] = LRU(1024)  # one entry per schema object: the demo sets use ~100


def writer_schema(schema: Any) -> WriterSchema:
    """The cached :class:`WriterSchema` of ``schema`` (JSON text, dict or fastavro-parsed dict).

    Dicts are keyed by identity, so a schema object is parsed once however often a
    producer sends with it; schemas are treated as immutable once used.
    """
    key = schema if isinstance(schema, (str, bytes)) else id(schema)
    entry = _writers.get(key)
    if entry is None or entry.source is not schema and not isinstance(schema, (str, bytes)):
        entry = _writers.put(key, WriterSchema(schema))
    return entry


class _Missing:
    """A field the record does not have (unlike ``None``, a value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_PRIMITIVE: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bytes": lambda v: isinstance(v, (bytes, bytearray)),
    "string": lambda v: isinstance(v, str),
}
_ZERO: dict[str, Any] = {"null": None, "boolean": False, "int": 0, "long": 0, "float": 0.0, "double": 0.0}
_ZERO.update(bytes=b"", string="")


def fit(record: Any, schema: Any, fallback: Any = MISSING) -> Any:
    """``record`` made to fit ``schema`` (fastavro-parsed), taking what it lacks from ``fallback``.

    A value that fits its field is kept, recursively (records field by field, arrays and maps item
    by item, each item against the fallback's first item). A field the record lacks, or whose
    value does not fit its type (a null where a value is now required), takes the fallback's
    value at the same place, else the field's default, else the type's zero. A record whose every
    field is null stands for an absent one where null is allowed (Spark writes missing nested
    records that way). Used to convert an alert to another version of its schema.
    """
    named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    return _fit(record, schema, fallback, MISSING, named)


def _fit(value: Any, schema: Any, fallback: Any, default: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if value is MISSING:
        if fallback is not MISSING:
            return _fit(fallback, schema, MISSING, default, named)
        return default if default is not MISSING else _zero(schema, named)
    again = (MISSING, schema, fallback, default, named)  # the value does not fit: what else there is
    if isinstance(schema, list):
        if "null" in schema and (value is None or _all_null(value)):
            return None
        for branch in schema:
            if branch != "null" and _kind_fits(value, branch, named):
                return _fit(value, branch, fallback if _kind_fits(fallback, branch, named) else MISSING, MISSING, named)
        return _fit(*again)
    if isinstance(schema, str):
        check = _PRIMITIVE.get(schema)
        if check is not None and check(value):
            return float(value) if schema in ("float", "double") else value
        return _fit(*again)
    kind = schema.get("type")
    if kind in ("record", "error"):
        if not isinstance(value, dict):
            return _fit(*again)
        backup = fallback if isinstance(fallback, dict) else {}
        return {
            f["name"]: _fit(
                value.get(f["name"], MISSING),
                f["type"],
                backup.get(f["name"], MISSING),
                f.get("default", MISSING),
                named,
            )
            for f in schema["fields"]
        }
    if kind == "array":
        if not isinstance(value, list):
            return _fit(*again)
        first = fallback[0] if isinstance(fallback, list) and fallback else MISSING
        return [_fit(item, schema["items"], first, MISSING, named) for item in value]
    if kind == "map":
        if not isinstance(value, dict):
            return _fit(*again)
        first = next(iter(fallback.values())) if isinstance(fallback, dict) and fallback else MISSING
        return {k: _fit(v, schema["values"], first, MISSING, named) for k, v in value.items()}
    if kind == "enum":
        return value if value in schema["symbols"] else _fit(*again)
    if kind == "fixed":
        return value if isinstance(value, bytes) and len(value) == schema["size"] else _fit(*again)
    return _fit(value, kind, fallback, default, named)  # {"type": "long", "logicalType": ...}


def _all_null(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(v is None for v in value.values())


def _kind_fits(value: Any, schema: Any, named: dict[str, Any]) -> bool:
    """Whether ``value`` is of the kind ``schema`` describes (not checking inside records and arrays)."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, str):
        check = _PRIMITIVE.get(schema)
        return check is not None and check(value)
    if isinstance(schema, list):
        return any(_kind_fits(value, branch, named) for branch in schema)
    kind = schema.get("type")
    if kind in ("record", "error", "map"):
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "enum":
        return value in schema["symbols"]
    if kind == "fixed":
        return isinstance(value, bytes) and len(value) == schema["size"]
    return _kind_fits(value, kind, named)


def _zero(schema: Any, named: dict[str, Any]) -> Any:
    """The simplest valid value of ``schema``: null where allowed, else 0, "", empty, the first symbol."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, str):
        return _ZERO[schema]
    if isinstance(schema, list):
        return None if "null" in schema else _zero(schema[0], named)
    kind = schema.get("type")
    if kind in ("record", "error"):
        return {f["name"]: f["default"] if "default" in f else _zero(f["type"], named) for f in schema["fields"]}
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "fixed":
        return bytes(schema["size"])
    return _zero(kind, named)
