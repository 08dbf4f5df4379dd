"""Alert files on disk: finding them, and splitting them into one-alert messages."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import fastavro

from .errors import ConfigError

ALERT_SUFFIXES = (".avro",)


def alert_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every ``.avro`` file named, or found (recursively, sorted) under a named directory."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in ALERT_SUFFIXES and f.is_file())
        elif p.is_file():
            yield p
        else:
            raise ConfigError(f"no such file or directory: {p}")


def one_alert_messages(path: Path) -> Iterator[bytes]:
    """The file as ZTF would send it: one Avro container per alert, each with its writer schema.

    A one-alert file is sent byte for byte; a file of several alerts is split.
    """
    from ._codecs import encode_container

    data = path.read_bytes()
    with path.open("rb") as f:
        reader = fastavro.reader(f)
        schema = reader.writer_schema
        records = list(reader)
    if len(records) == 1:
        yield data
    else:
        for record in records:
            yield encode_container(record, schema)
