"""Avro Object Container Files, the framing of every ZTF Kafka message.

A ZTF message is a whole OCF: magic ``Obj\\x01``, a metadata map holding the ~20 KB
writer schema, a 16-byte sync marker, then blocks of records. ``fastavro.reader``
re-parses that schema for every message, which is a third to a half of the decode
time; here the header is read by hand and the schema parsed once per distinct text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from genesis.errors import ConfigError, DecodeError

from ._avro import SchemaCache, may_be_empty, read_long, read_records, write_long, write_record, writer_schema
from ._compression import COMPRESS, decompress
from ._readers import Span

MAGIC = b"Obj\x01"
_SYNC = 16


def _read_bytes(buf: bytes, pos: int, what: str) -> tuple[bytes, int]:
    size, pos = read_long(buf, pos, f"length of the {what}")
    if size < 0:
        raise DecodeError(f"corrupt Avro container: negative length {size} for the {what}")
    end = pos + size
    if end > len(buf):
        raise DecodeError(f"truncated Avro container: the {what} needs {size} bytes, got {len(buf) - pos}")
    return buf[pos:end], end


def read_header(buf: bytes) -> tuple[bytes, bytes, bytes, int]:
    """Parse the header of a container: ``(schema JSON, codec, sync marker, offset of block 1)``."""
    if buf[:4] != MAGIC:
        raise DecodeError("not an Avro container: it does not start with Obj\\x01")
    pos, schema, codec = 4, None, b"null"
    while True:
        count, pos = read_long(buf, pos, "header metadata count")
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the byte size of the block
            count = -count
            _, pos = read_long(buf, pos, "header metadata size")
        for _ in range(count):
            key, pos = _read_bytes(buf, pos, "header metadata key")
            value, pos = _read_bytes(buf, pos, "header metadata value")
            if key == b"avro.schema":
                schema = value
            elif key == b"avro.codec":
                codec = value
    sync = buf[pos : pos + _SYNC]
    if len(sync) < _SYNC:
        raise DecodeError(f"truncated Avro container: the header's sync marker needs {_SYNC} bytes, got {len(sync)}")
    if schema is None:
        raise DecodeError("corrupt Avro container: the header has no avro.schema entry")
    return schema, codec, sync, pos + _SYNC


def _blocks(buf: bytes, sync: bytes, pos: int) -> Iterator[tuple[int, int, int, int]]:
    """``(block number, record count, start, end)`` of every data block, with the framing checked."""
    size_buf = len(buf)
    block = 0
    while pos < size_buf:
        block += 1
        count, pos = read_long(buf, pos, f"record count of block {block}")
        size, pos = read_long(buf, pos, f"byte size of block {block}")
        if count < 0 or size < 0:
            raise DecodeError(f"corrupt Avro container: block {block} declares {count} records in {size} bytes")
        end = pos + size
        if end > size_buf:
            raise DecodeError(f"truncated Avro container: expected {size} bytes in block {block}, got {size_buf - pos}")
        if buf[end : end + _SYNC] != sync:
            if end + _SYNC > size_buf:
                raise DecodeError(f"truncated Avro container: the sync marker after block {block} is cut off")
            raise DecodeError(f"corrupt Avro container: the sync marker after block {block} differs from the header's")
        yield block, count, pos, end
        pos = end + _SYNC
    if not block:
        raise DecodeError("truncated Avro container: it has a header but no data block")


def container_records(buf: bytes) -> int:
    """How many records the container ``buf`` holds, from its block headers (nothing is decoded)."""
    _, _, sync, pos = read_header(buf)
    return sum(count for _, count, _, _ in _blocks(buf, sync, pos))


def container_spans(buf: bytes, schemas: SchemaCache) -> list[Span]:
    """The blocks of the container ``buf`` as spans of records (fastavro's reader: decompressed here)."""
    raw_schema, codec, sync, pos = read_header(buf)
    schema = schemas.get(raw_schema)
    spans = []
    for block, count, start, end in _blocks(buf, sync, pos):
        data: bytes = buf
        if codec != b"null":
            data = decompress(codec, buf[start:end])
            start, end = 0, len(data)
        if count > end - start and not may_be_empty(schema):
            raise DecodeError(
                f"corrupt Avro container: block {block} claims {count} records in only {end - start} bytes"
            )
        spans.append(Span(schema, data, start, end, count, f"block {block} of the Avro container"))
    return spans


def decode_container(buf: bytes, schemas: SchemaCache) -> list[dict]:
    """All records of the container ``buf``, decoded by fastavro with its writer schema (parsed via ``schemas``)."""
    return [
        r
        for span in container_spans(buf, schemas)
        for r in read_records(span.data, span.start, span.end, span.count, span.schema, span.what)
    ]


def _header(schema_json: bytes, codec: str, sync: bytes) -> bytes:
    meta = [(b"avro.schema", schema_json), (b"avro.codec", codec.encode())]
    parts = [MAGIC, write_long(len(meta))]
    for key, value in meta:
        parts += [write_long(len(key)), key, write_long(len(value)), value]
    parts += [write_long(0), sync]
    return b"".join(parts)


def encode_container(records: dict | list[dict], schema: Any, codec: str = "null") -> bytes:
    """One Avro container holding ``records`` (a dict or a list of dicts), as ZTF sends alerts.

    ``schema`` is JSON text, a schema dict or a fastavro-parsed schema; it is parsed
    once and its header reused. ``codec`` is one of null, deflate, bzip2, xz, snappy,
    zstandard. A record that does not fit the schema raises :class:`DeliveryError`,
    a bad schema or codec :class:`ConfigError`.
    """
    if codec not in COMPRESS:
        raise ConfigError(f"unknown Avro codec {codec!r}; choose one of {', '.join(COMPRESS)}")
    writer = writer_schema(schema)
    header = writer.headers.get(codec)
    if header is None:
        header = writer.headers[codec] = _header(writer.json, codec, os.urandom(_SYNC))
    if isinstance(records, dict):
        records = [records]
    bio = BytesIO()
    for record in records:
        write_record(bio, writer.parsed, record)
    data = COMPRESS[codec](bio.getvalue())
    return b"".join((header, write_long(len(records)), write_long(len(data)), data, header[-_SYNC:]))


def split_container(buf: bytes, records: list[dict]) -> list[bytes]:
    """One container per alert, as ZTF sends them: ``buf`` itself when it holds one alert, else one new
    container per record (``records``, its decoded alerts), each with the writer schema of ``buf``."""
    if len(records) == 1:
        return [buf]
    schema = read_header(buf)[0]
    return [encode_container(record, schema) for record in records]
