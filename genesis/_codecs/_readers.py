"""How Avro records are read: by the compiled decoder (``genesis._native``, Rust) or by fastavro.

Both readers take the same :class:`Span` (``count`` records laid end to end in ``data[start:end]``,
all of one writer schema) and give identical dicts (``tests/unit/test_native*.py``); every failure
is a :class:`~genesis.errors.DecodeError` of the same wording. The compiled reader is used when it
was built (``pip install`` with cargo on ``PATH``) and not switched off with ``GENESIS_NATIVE=0``;
otherwise fastavro, the reference. ``genesis doctor`` and a DEBUG log line say which.

Besides whole records, a reader decodes a *prefix*: the first ``n`` top-level fields of each record
(a filter that declares the fields it reads needs no more), and later the rest of a record that
passed, from where the prefix stopped.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from io import BytesIO
from types import ModuleType
from typing import Any, Protocol

import fastavro
from fastavro import schemaless_reader

from genesis.errors import ConfigError, DecodeError

from ._avro import LRU, parse_schema, plain_schema, read_records, schema_name, self_contained

log = logging.getLogger("genesis")


def _load_native() -> tuple[ModuleType | None, str]:
    if os.environ.get("GENESIS_NATIVE", "").strip() == "0":
        return None, "switched off (GENESIS_NATIVE=0)"
    try:
        from .. import _native
    except ImportError as exc:
        return None, f"not built ({exc}); reinstall genesis-streaming with cargo (rustup.rs) on PATH"
    return _native, ""


_native, WHY_NOT_NATIVE = _load_native()


@dataclass(slots=True)
class Span:
    """``count`` Avro records laid end to end in ``data[start:end]``, written with ``schema``."""

    schema: Any  #: compiled by the reader that made the span
    data: bytes
    start: int
    end: int
    count: int
    what: str  #: names the data in errors ("block 2 of the Avro container")


class Reader(Protocol):
    """Compiles writer schemas and reads records, whole or as a prefix of their top-level fields."""

    name: str

    def compile(self, raw: bytes | str | dict[str, Any], where: str) -> Any:
        """The writer schema given as JSON text (or a dict) ready for this reader; DecodeError if invalid."""

    def field_names(self, schema: Any) -> list[str]:
        """The top-level fields of a compiled record schema, in order (``[]`` for other types)."""

    def records(self, span: Span) -> list[Any]:
        """Every record of the span; they must fill it exactly."""

    def prefixes(self, span: Span, nfields: int) -> list[Prefix]:
        """Every record of the span with only its first ``nfields`` fields decoded."""


class Prefix(Protocol):
    """A record of which only the first fields are decoded (``partial``); :meth:`complete` finishes it."""

    partial: dict[str, Any]

    def complete(self) -> dict[str, Any]:
        """The whole record, equal to a full decode (``partial`` itself, filled in, where possible)."""


# ---------------------------------------------------------------------------- the compiled reader
class _NativePrefix:
    __slots__ = ("partial", "_span", "_pos", "_nfields", "_native")

    def __init__(self, native: ModuleType, partial: dict[str, Any], span: Span, pos: int, nfields: int) -> None:
        self._native, self.partial, self._span, self._pos, self._nfields = native, partial, span, pos, nfields

    def complete(self) -> dict[str, Any]:
        if self._pos >= 0:
            span, pos = self._span, self._pos
            self._pos = -1
            try:
                end = span.schema.decode_rest(span.data, pos, self.partial, self._nfields, end=span.end, what=span.what)
            except self._native.DecodeError as exc:
                raise DecodeError(str(exc)) from None
            if span.count == 1 and end != span.end:  # a prefix of one record was read without its tail
                raise DecodeError(f"{span.what} has {span.end - end} bytes of trailing garbage after its record")
        return self.partial


class NativeReader:
    """The compiled decoder: schemas compiled once per distinct JSON text, records built in Rust."""

    name = "native"

    def __init__(self, native: ModuleType) -> None:
        self._native = native

    def compile(self, raw: bytes | str | dict[str, Any], where: str) -> Any:
        text = json.dumps(self_contained(raw)) if isinstance(raw, dict) else raw
        try:
            return self._native.Schema(text)
        except ValueError as exc:  # SchemaError, or invalid JSON
            raise DecodeError(f"invalid Avro schema in {where}: {exc}") from None

    def field_names(self, schema: Any) -> list[str]:
        return list(schema.field_names)

    def records(self, span: Span) -> list[Any]:
        try:
            return span.schema.decode(span.data, span.start, span.end, span.count, what=span.what)
        except self._native.DecodeError as exc:
            raise DecodeError(str(exc)) from None

    def prefixes(self, span: Span, nfields: int) -> list[Prefix]:
        schema = span.schema
        if nfields >= len(schema.field_names):
            return [Whole(r) for r in self.records(span)]
        try:
            if span.count == 1:  # one record: read its prefix only; its tail is read (and checked) if it passes
                partial, pos = schema.decode_fields(span.data, span.start, nfields, what=span.what)
                return [_NativePrefix(self._native, partial, span, pos, nfields)]
            found = schema.decode_prefix(span.data, span.start, span.end, span.count, nfields, what=span.what)
        except self._native.DecodeError as exc:
            raise DecodeError(str(exc)) from None
        return [_NativePrefix(self._native, partial, span, pos, nfields) for partial, pos in found]

    def container(self, buf: bytes) -> tuple[bytes, list[tuple[int, bytes, int, int]]]:
        """The writer schema JSON of an Avro container and its blocks ``(count, data, start, end)``."""
        try:
            return self._native.read_container(buf)
        except self._native.DecodeError as exc:
            raise DecodeError(str(exc)) from None


# ---------------------------------------------------------------------------- fastavro
class Whole:
    """A record decoded whole from the start."""

    __slots__ = ("partial",)

    def __init__(self, record: dict[str, Any]) -> None:
        self.partial = record

    def complete(self) -> dict[str, Any]:
        return self.partial


class _FastavroPrefix:
    __slots__ = ("partial", "_reader", "_span")

    def __init__(self, partial: dict[str, Any], reader: FastavroReader, span: Span) -> None:
        self.partial, self._reader, self._span = partial, reader, span

    def complete(self) -> dict[str, Any]:
        return self._reader.records(self._span)[0]


class FastavroReader:
    """fastavro's ``schemaless_reader``, each writer schema parsed once.

    The prefix of a one-record span is read with the writer schema cut after field ``n``
    (fastavro stops there); completing it decodes the record again, whole. Spans of several
    records are decoded whole (a record's end is only known by reading it).
    """

    name = "fastavro"

    def __init__(self) -> None:
        self._cut: LRU[tuple[int, int], tuple[Any, Any]] = LRU(256)

    def compile(self, raw: bytes | str | dict[str, Any], where: str) -> Any:
        return parse_schema(raw, where)

    def field_names(self, schema: Any) -> list[str]:
        if isinstance(schema, dict) and schema.get("type") in ("record", "error"):
            return [f["name"] for f in schema.get("fields", ())]
        return []

    def records(self, span: Span) -> list[Any]:
        return read_records(span.data, span.start, span.end, span.count, span.schema, span.what)

    def prefixes(self, span: Span, nfields: int) -> list[Prefix]:
        if span.count != 1 or nfields >= len(self.field_names(span.schema)):
            return [Whole(r) for r in self.records(span)]
        cut = self._cut_schema(span.schema, nfields)
        bio = BytesIO(span.data)
        bio.seek(span.start)
        try:
            partial = schemaless_reader(bio, cut)
        except EOFError as exc:
            raise DecodeError(f"truncated {span.what}: record 1 of 1 ends early ({exc or 'no more bytes'})") from exc
        except Exception as exc:  # fastavro's assorted errors, as read_records reports them
            raise DecodeError(f"{span.what} does not match its schema {schema_name(span.schema)}: {exc}") from exc
        return [_FastavroPrefix(partial, self, span)]  # type: ignore[arg-type]

    def _cut_schema(self, schema: Any, nfields: int) -> Any:
        key = (id(schema), nfields)
        found = self._cut.get(key)
        if found is None or found[0] is not schema:
            plain = plain_schema(schema)
            cut = fastavro.parse_schema({**plain, "fields": plain["fields"][:nfields]})
            found = self._cut.put(key, (schema, cut))  # the schema is kept alive: its id stays valid
        return found[1]


def choose_reader(compiled: bool | None = None) -> NativeReader | FastavroReader:
    """The compiled reader (``compiled=True``, or None when it is available), else fastavro."""
    if compiled is False:
        return FastavroReader()
    if _native is not None:
        return NativeReader(_native)
    if compiled:
        raise ConfigError(f"compiled=True, but the compiled decoder is {WHY_NOT_NATIVE}")
    log.debug("genesis decodes with fastavro: the compiled decoder is %s", WHY_NOT_NATIVE)
    return FastavroReader()


def native_available() -> tuple[bool, str]:
    """Whether the compiled decoder is used, and if not, why."""
    return _native is not None, WHY_NOT_NATIVE
