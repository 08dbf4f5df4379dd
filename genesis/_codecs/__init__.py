"""Decoding and encoding of alert packets, in pure Python (no Kafka needed).

:class:`Decoder` turns one Kafka message into its alerts, detecting per message an
Avro container (ZTF), the Confluent wire format (Rubin/LSST), a schema in the key
(Fink) or JSON. :func:`encode_container` and :func:`encode_wire` build such messages
for the producer and the demo loaders. One module per format; shared Avro helpers in
``_avro``.
"""

from genesis._schemas import SchemaDirectory, SchemaMap, SchemaRegistry, load_ztf_schema

from ._container import encode_container
from ._decoder import Decoder, decode_file
from ._wire import encode_wire

__all__ = [
    "Decoder",
    "decode_file",
    "encode_container",
    "encode_wire",
    "load_ztf_schema",
    "SchemaDirectory",
    "SchemaMap",
    "SchemaRegistry",
]
