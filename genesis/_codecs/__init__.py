"""Decoding and encoding of alert packets, in pure Python (no Kafka needed).

:class:`Decoder` turns one Kafka message into its alerts, detecting per message an
Avro container (ZTF), the Confluent wire format (Rubin/LSST), a schema in the key
(Fink) or JSON; :meth:`Decoder.writer_schema` says which Avro schema a message was
written with. :func:`encode_container` and :func:`encode_wire` build such messages
for the producer and the demo loaders. :mod:`rubin` holds Rubin's schemas when their package
is installed (the extra ``genesis-streaming[rubin]``). One module per format; shared Avro helpers in
``_avro``; where schemas named by id come from in ``_schemas``. Nothing outside this
package knows what the formats look like.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import _rubin as rubin
from ._arrow import arrow_schema, require_pyarrow
from ._avro import fit, write_long
from ._container import encode_container
from ._decoder import Decoder, decode_file
from ._readers import Prefix, Whole, native_available
from ._schemas import SchemaDirectory, SchemaMap, SchemaRegistry
from ._wire import encode_wire


class MessageDecoder(Protocol):
    """What a stream decodes messages with (``stream.decoder``): :class:`Decoder`, or a user's own.

    It must be picklable: it runs in pool workers too.
    """

    def decode(self, value: bytes | None, key: bytes | None = None) -> list[Any]:
        """The alerts of one message (value and key)."""
        ...


__all__ = [
    "Decoder",
    "MessageDecoder",
    "Prefix",
    "rubin",
    "native_available",
    "Whole",
    "decode_file",
    "encode_container",
    "encode_wire",
    "write_long",
    "fit",
    "arrow_schema",
    "require_pyarrow",
    "SchemaDirectory",
    "SchemaMap",
    "SchemaRegistry",
]
