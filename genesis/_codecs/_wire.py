"""The Confluent wire format of Rubin/LSST: magic byte 0, 4-byte big-endian schema id, schemaless Avro."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from genesis.errors import DecodeError

from ._avro import write_record, writer_schema

_HEADER = 5


def wire_schema_id(buf: bytes) -> int:
    """The schema id of a Confluent wire-format message (its first byte is the magic 0)."""
    if len(buf) < _HEADER:
        raise DecodeError(f"truncated Confluent wire-format message: the header needs {_HEADER} bytes, got {len(buf)}")
    return int.from_bytes(buf[1:_HEADER], "big")


def encode_wire(record: dict, schema: Any, schema_id: int) -> bytes:
    """``record`` in the Confluent wire format with ``schema_id``, as Rubin/LSST sends alerts.

    Fields of ``record`` that ``schema`` does not declare are left out (Fink adds its
    own); a record that does not fit raises :class:`~genesis.errors.DeliveryError`.
    """
    bio = BytesIO()
    bio.write(b"\x00" + schema_id.to_bytes(4, "big"))
    write_record(bio, writer_schema(schema).parsed, record)
    return bio.getvalue()
