"""The :class:`Decoder`: one Kafka message in, its alerts out as plain dicts, whatever the framing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from genesis._schemas import SchemaDirectory, SchemaMap, SchemaRegistry
from genesis.errors import DecodeError, SchemaNotFoundError

from ._avro import LRU, SchemaCache, read_records
from ._container import MAGIC, decode_container
from ._json import JSON_START, decode_json
from ._wire import decode_wire

_NOT_A_SCHEMA = object()


class Decoder:
    """Decode alert messages, detecting the format of each one.

    * Avro container files (ZTF): the writer schema in the header is parsed once per
      distinct schema text (LRU of 256), not once per message as ``fastavro.reader`` does;
    * schemaless Avro whose schema JSON is the message key (Fink);
    * the Confluent wire format (Rubin/LSST): the schema id is looked up in ``schemas``
      (a directory, see :class:`~genesis._schemas.SchemaDirectory`, or ``{id: schema}``)
      first, then in ``schema_registry`` (a URL or :class:`~genesis._schemas.SchemaRegistry`);
    * JSON: an object or an array of objects.

    Every failure is a :class:`~genesis.errors.DecodeError` (an unknown schema id a
    :class:`~genesis.errors.SchemaNotFoundError`); a registry that cannot be reached is a
    :class:`~genesis.errors.ConfigError`. A decoder pickles as its configuration only,
    for multiprocessing workers; its caches are rebuilt there.
    """

    def __init__(
        self,
        schemas: str | os.PathLike[str] | SchemaDirectory | Mapping[int, Any] | None = None,
        schema_registry: str | SchemaRegistry | None = None,
    ) -> None:
        self._config = (schemas, schema_registry)
        if schemas is None or isinstance(schemas, (SchemaDirectory, SchemaMap)):
            self._directory = schemas
        elif isinstance(schemas, Mapping):
            self._directory = SchemaMap(schemas)
        else:
            self._directory = SchemaDirectory(schemas)
        if isinstance(schema_registry, str):
            schema_registry = SchemaRegistry(schema_registry)
        self._registry = schema_registry
        self._containers = SchemaCache("the Avro container header")
        self._keys = SchemaCache("the message key")
        self._not_schemas: LRU[bytes, object] = LRU(256)
        self._by_id: dict[int, Any] = {}

    def decode(self, value: bytes, key: bytes | None = None) -> list[dict]:
        """The records of one Kafka message (value and key), as a list of dicts."""
        if type(value) is not bytes:
            value = _as_bytes(value)
        if value[:4] == MAGIC:
            return decode_container(value, self._containers)
        if key:
            schema = self._key_schema(key)
            if schema is not None:
                return read_records(value, 0, len(value), 1, schema, "message value (schema from the message key)")
        if not value:
            raise DecodeError("empty message: it has no value")
        first = value[0]
        if first == 0:
            return decode_wire(value, self.schema_by_id)
        if first in JSON_START:
            return decode_json(value)
        raise DecodeError(
            f"unknown message format (first bytes {value[:8].hex(' ')}): expected an "
            "Avro container (Obj\\x01...), the Confluent wire format (0x00 + schema "
            "id) or JSON"
        )

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
        """The parsed schema registered under ``schema_id`` (directory first, then registry), cached."""
        schema = self._by_id.get(schema_id)
        if schema is not None:
            return schema
        if self._directory is None and self._registry is None:
            raise DecodeError(
                f"the message is in the Confluent wire format (schema id {schema_id}) "
                "but no schema source is configured: pass schemas= (a directory of "
                ".avsc files) or schema_registry= (a registry URL)"
            )
        for source in (self._directory, self._registry):
            if source is not None and (schema := source.get(schema_id)) is not None:
                self._by_id[schema_id] = schema
                return schema
        places = " nor in ".join(_describe_source(s) for s in (self._registry, self._directory) if s is not None)
        raise SchemaNotFoundError(f"unknown schema id {schema_id}: not in {places}")

    def __getstate__(self) -> dict:
        schemas, registry = self._config
        return {"schemas": schemas, "schema_registry": registry}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["schemas"], state["schema_registry"])

    def __repr__(self) -> str:
        return f"Decoder(schemas={self._directory!r}, schema_registry={self._registry!r})"


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
