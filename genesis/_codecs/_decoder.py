"""The :class:`Decoder`: one Kafka message in, its alerts out as plain dicts, whatever the framing."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genesis.errors import DecodeError, SchemaNotFoundError

from ._avro import LRU, SchemaCache, encode_schemaless, plain_schema
from ._container import MAGIC, container_records, container_spans, encode_container, read_header, split_container
from ._json import JSON_START, decode_json
from ._readers import FastavroReader, NativeReader, Prefix, Span, Whole, choose_reader
from ._rubin import RubinSchemas, available, missing_extra
from ._schemas import SchemaDirectory, SchemaMap, SchemaRegistry
from ._wire import encode_wire, wire_schema_id

_NOT_A_SCHEMA = object()


class Decoder:
    """Decode alert messages, detecting the format of each one.

    * Avro container files (ZTF): the writer schema in the header is compiled once per
      distinct schema text (LRU of 256), not once per message as ``fastavro.reader`` does;
    * schemaless Avro whose schema JSON is the message key (Fink);
    * the Confluent wire format (Rubin/LSST): the schema id is looked up in ``schemas``
      (a directory, see :class:`~genesis._codecs._schemas.SchemaDirectory`, or ``{id: schema}``)
      first, then in ``schema_registry`` (a URL or :class:`~genesis._codecs._schemas.SchemaRegistry`);
      with neither, it is read as Rubin's (``major*100+minor``) and looked up in Rubin's own
      schemas when ``lsst-alert-packet`` is installed (``genesis-streaming[rubin]``,
      :class:`~genesis._codecs._rubin.RubinSchemas`);
    * JSON: an object or an array of objects.

    Every failure is a :class:`~genesis.errors.DecodeError` (an unknown schema id a
    :class:`~genesis.errors.SchemaNotFoundError`); a registry that cannot be reached is a
    :class:`~genesis.errors.ConfigError`. A decoder pickles as its configuration only,
    for multiprocessing workers; its caches are rebuilt there.

    Records are read by the compiled decoder (Rust, ``genesis._native``: ~10x fastavro) when it
    was built, else by fastavro; both give identical dicts. ``compiled=False`` forces fastavro,
    ``compiled=True`` requires the compiled one; ``GENESIS_NATIVE=0`` switches it off everywhere.
    """

    def __init__(
        self,
        schemas: str | os.PathLike[str] | SchemaDirectory | Mapping[int, Any] | None = None,
        schema_registry: str | SchemaRegistry | None = None,
        *,
        compiled: bool | None = None,
    ) -> None:
        self._config = (schemas, schema_registry, compiled)
        self._directory: SchemaDirectory | SchemaMap | None
        if schemas is None or isinstance(schemas, (SchemaDirectory, SchemaMap)):
            self._directory = schemas
        elif isinstance(schemas, Mapping):
            self._directory = SchemaMap(schemas)
        else:
            self._directory = SchemaDirectory(schemas)
        if isinstance(schema_registry, str):
            schema_registry = SchemaRegistry(schema_registry)
        self._registry = schema_registry
        self._builtin: RubinSchemas | None = None  # Rubin's schemas, made on the first wire-format message
        self._reader: NativeReader | FastavroReader = choose_reader(compiled)
        self._containers = SchemaCache("the Avro container header", compile=self._reader.compile)
        self._keys = SchemaCache("the message key", compile=self._reader.compile)
        self._not_schemas: LRU[bytes, object] = LRU(256)
        self._by_id: dict[int, Any] = {}
        self._compiled_by_id: dict[int, Any] = {}
        self._ends: dict[tuple[int, tuple[str, ...]], int] = {}
        self._writer_schemas: LRU[bytes | int, dict[str, Any]] = LRU(256)
        #: the last container decoded and its header's schema JSON: writer_schema() of the message
        #: just decoded (what a query asks next) then needs no second parse of the header, and the
        #: JSON's hash is already cached in the bytes object
        self._last_container: tuple[bytes, bytes] | None = None

    @property
    def compiled(self) -> bool:
        """True when the compiled decoder (Rust) reads the records; False: fastavro (see ``genesis doctor``)."""
        return isinstance(self._reader, NativeReader)

    def decode(self, value: bytes | None, key: bytes | None = None) -> list[dict]:
        """The records of one Kafka message (value and key), as a list of dicts."""
        if type(value) is not bytes:
            value = _as_bytes(value)
        spans = self._spans(value, key)
        if spans is None:
            return decode_json(value)
        if len(spans) == 1:
            return self._reader.records(spans[0])
        return [record for span in spans for record in self._reader.records(span)]

    def decode_prefixes(self, value: bytes | None, key: bytes | None, fields: tuple[str, ...]) -> list[Prefix]:
        """The records of one message, each decoded only as far as the last of ``fields`` (top-level
        names) that its writer schema has; :meth:`Prefix.complete` finishes one, equal to :meth:`decode`.

        Avro is read in order, so the fields before the last wanted one are decoded too; names a
        schema lacks are left out. JSON messages are decoded whole.
        """
        if type(value) is not bytes:
            value = _as_bytes(value)
        spans = self._spans(value, key)
        if spans is None:
            return [Whole(record) for record in decode_json(value)]
        return [prefix for span in spans for prefix in self._reader.prefixes(span, self._end_of(span.schema, fields))]

    def _end_of(self, schema: Any, fields: tuple[str, ...]) -> int:
        """How many leading fields of ``schema`` hold every one of ``fields`` it has."""
        key = (id(schema), fields)
        end = self._ends.get(key)
        if end is None:
            names = self._reader.field_names(schema)
            end = self._ends[key] = max((names.index(f) + 1 for f in fields if f in names), default=0)
        return end

    def _spans(self, value: bytes, key: bytes | None) -> list[Span] | None:
        """Where the Avro records of a message are, and with which schema (None: a JSON message)."""
        if value[:4] == MAGIC:
            if isinstance(self._reader, NativeReader):
                raw, blocks = self._reader.container(value)
                schema = self._containers.get(raw)
                self._last_container = (value, raw)
                return [
                    Span(schema, data, start, end, count, f"block {i} of the Avro container")
                    for i, (count, data, start, end) in enumerate(blocks, 1)
                ]
            return container_spans(value, self._containers)
        if key:
            schema = self._key_schema(key)
            if schema is not None:
                return [Span(schema, value, 0, len(value), 1, "message value (schema from the message key)")]
        if not value:
            raise DecodeError("empty message: it has no value")
        first = value[0]
        if first == 0:
            schema_id = wire_schema_id(value)
            compiled = self._compiled_by_id.get(schema_id)
            if compiled is None:
                where = f"the schema with id {schema_id}"
                compiled = self._compiled_by_id[schema_id] = self._reader.compile(self.schema_by_id(schema_id), where)
            how = f", {self._builtin.where(schema_id)}" if self._builtin is not None else ""
            return [
                Span(compiled, value, 5, len(value), 1, f"Confluent wire-format message (schema id {schema_id}{how})")
            ]
        if first in JSON_START:
            return None
        raise DecodeError(
            f"unknown message format (first bytes {value[:8].hex(' ')}): expected an "
            "Avro container (Obj\\x01...), the Confluent wire format (0x00 + schema "
            "id) or JSON"
        )

    def split(self, value: bytes) -> list[bytes]:
        """One message per alert, as ZTF sends them: ``value`` itself when it holds one alert, else one
        Avro container per record of the container ``value``, each with its writer schema."""
        if value[:4] == MAGIC:
            return split_container(value, self.decode(value))
        return [value]

    def writer_schema(self, value: bytes, key: bytes | None = None) -> dict[str, Any]:
        """The Avro schema a message was written with, as JSON-ready data (to re-encode its alerts).

        Messages of one schema get the same (cached, read-only) object, so a change of writer
        schema shows as a new object. Raises :class:`~genesis.errors.DecodeError` for JSON
        messages (they have none) and for anything :meth:`decode` would refuse.
        """
        if type(value) is not bytes:
            value = _as_bytes(value)
        source: bytes | int
        if value[:4] == MAGIC:
            last = self._last_container
            source = last[1] if last is not None and last[0] is value else read_header(value)[0]
        elif key and self._key_schema(key) is not None:
            source = key if type(key) is bytes else _as_bytes(key)
        elif value[:1] == b"\x00" and len(value) >= 5:
            source = int.from_bytes(value[1:5], "big")
        else:
            raise DecodeError("this message has no Avro writer schema (JSON, or an unknown format)")
        schema = self._writer_schemas.get(source)  # one object per distinct schema: treat it as read-only
        if schema is None:
            raw = self.schema_by_id(source) if isinstance(source, int) else source
            schema = self._writer_schemas.put(source, plain_schema(raw))
        return schema

    def encode_like(self, records: list[dict[str, Any]], value: bytes, key: bytes | None = None) -> bytes:
        """One message holding ``records``, framed as the message ``value``/``key`` was: an Avro
        container with its writer schema, its Confluent wire-format schema id, schemaless Avro
        under the key's schema (these two: one record), or JSON."""
        if type(value) is not bytes:
            value = _as_bytes(value)
        if value[:4] == MAGIC:
            return encode_container(records, read_header(value)[0])
        if not value or value[0] in JSON_START:
            return json.dumps(records[0] if len(records) == 1 else records).encode()
        if len(records) != 1:
            raise DecodeError(f"a message of this format holds one alert, not {len(records)}")
        if key and self._key_schema(key) is not None:
            return encode_schemaless(records[0], plain_schema(key))
        schema_id = wire_schema_id(value)
        return encode_wire(records[0], plain_schema(self.schema_by_id(schema_id)), schema_id)

    def as_container(self, alert: dict[str, Any], value: bytes, key: bytes | None = None) -> bytes:
        """One Avro container holding ``alert``, an alert decoded unchanged from the message ``value``/``key``:
        the message itself when it is a container of that one alert (byte for byte), else the alert
        encoded with the message's writer schema (:meth:`writer_schema`)."""
        if value[:4] == MAGIC and container_records(value) == 1:
            return value
        return encode_container(alert, self.writer_schema(value, key))

    def _key_schema(self, key: bytes) -> Any | None:
        """The Avro schema a Fink-style key carries, or ``None`` when the key is something else."""
        if type(key) is not bytes:
            key = _as_bytes(key)
        if key[:1] not in (b"{", b"[") or self._not_schemas.get(key) is not None:
            return None
        try:
            return self._keys.get(key)
        except DecodeError:
            self._not_schemas.put(key, _NOT_A_SCHEMA)
            return None

    def schema_by_id(self, schema_id: int) -> Any:
        """The parsed schema registered under ``schema_id`` (directory first, then registry; with
        neither, Rubin's schemas from ``lsst-alert-packet``), cached."""
        schema = self._by_id.get(schema_id)
        if schema is not None:
            return schema
        if self._directory is None and self._registry is None:
            return self._rubin_schema(schema_id)
        for source in (self._directory, self._registry):
            if source is not None and (schema := source.get(schema_id)) is not None:
                self._by_id[schema_id] = schema
                return schema
        places = " nor in ".join(_describe_source(s) for s in (self._registry, self._directory) if s is not None)
        raise SchemaNotFoundError(f"unknown schema id {schema_id}: not in {places}")

    def _rubin_schema(self, schema_id: int) -> Any:
        """Rubin's schema for ``schema_id`` (built in only when no schema source is given)."""
        if self._builtin is None:
            if not available():
                raise missing_extra(schema_id)
            self._builtin = RubinSchemas()
        schema = self._builtin.get(schema_id)
        if schema is None:
            raise SchemaNotFoundError(self._builtin.not_found(schema_id))
        self._by_id[schema_id] = schema
        return schema

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its configuration; caches are rebuilt in workers
        return _decoder, self._config

    def __repr__(self) -> str:
        return f"Decoder(schemas={self._directory!r}, schema_registry={self._registry!r})"


def _decoder(schemas: Any, schema_registry: Any, compiled: bool | None) -> Decoder:
    """Unpickle a :class:`Decoder` (``compiled`` is keyword-only)."""
    return Decoder(schemas, schema_registry, compiled=compiled)


def _describe_source(source: Any) -> str:
    if isinstance(source, SchemaRegistry):
        return f"the registry at {source.url}"
    if isinstance(source, SchemaDirectory):
        return str(source.path)
    return repr(source)


def _as_bytes(value: Any) -> bytes:
    if value is None:
        raise DecodeError("empty message: it has no value (a tombstone?)")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise DecodeError(f"a message must be bytes, not {type(value).__name__}")


def decode_file(path: str | os.PathLike[str], decoder: Decoder | None = None) -> list[dict]:
    """The alerts of one file (an ``.avro`` container as ZTF sends them, or ``.json``)."""
    return (decoder or Decoder()).decode(Path(path).read_bytes())
