"""Alerts into Parquet files, for pandas, polars and Spark: ``genesis consume URL --format parquet``.

::

    from genesis.parquet import ParquetSink

    sink = ParquetSink("alerts/", alerts_per_file=10_000)
    for idx, alert, meta in stream(metadata=True):
        if sink.write(alert, stream.decoder.writer_schema(meta.value, meta.key)):
            stream.commit()          # every alert handed over so far is in a closed, fsynced file
    sink.close()
    stream.commit()

**Columns.** One row per alert; the columns are the alert's top-level fields with their nesting
kept (``candidate`` a struct, ``prv_candidates`` a list of structs), typed from the Avro writer
schema (see :func:`genesis._codecs.arrow_schema`); ``fields=`` keeps some top-level fields only,
``cutouts=False`` leaves every bytes field (the cutout images) out. A file holds alerts of one
writer schema only.

**Files.** Alerts are written in *batches*: a batch has one file per writer schema it meets (a
stream whose schema changes, Rubin 10.0 -> 11.0 or ZTF 3.3 -> 4.02, starts a new file at the
switch) and ends after ``alerts_per_file`` alerts or ``seconds_per_file`` seconds (checked as alerts
arrive), when all its files are closed together. A file being written is ``_<name>.part`` (pyarrow,
pandas and polars skip names starting with ``_`` when reading a directory); closing it writes the
Parquet footer, fsyncs the file, renames it to ``<name>.parquet`` and fsyncs the directory. Names
are ``<prefix>-<UTC start of the batch>-p<pid>-<batch>-<schema>.parquet``, so processes writing
into one directory (``--processes N``) and restarts never collide.

**Offsets.** :meth:`ParquetSink.write` returns True when it has just closed a batch: then
everything written so far is on disk, and committing the stream's offsets is safe. After a crash
the open ``.part`` files are incomplete (no footer) and stay behind, ignored by readers; their
alerts were not committed, so they are read again.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._codecs import arrow_schema, require_pyarrow
from .errors import ConfigError

__all__ = ["ParquetSink", "require_pyarrow"]

#: alerts per file (per batch) and seconds per batch, unless told otherwise
ALERTS_PER_FILE = 10_000
SECONDS_PER_FILE = 300.0
#: alerts buffered per file before they are written as a row group
ROW_GROUP = 500
#: a batch meeting more writer schemas than this is closed early (bounded open files)
MAX_OPEN = 32


@dataclass
class _OpenFile:
    """A file being written: its ``.part`` path, final path, Arrow schema, writer and buffered rows."""

    part: Path
    final: Path
    schema: Any
    writer: Any
    rows: list[dict[str, Any]] = field(default_factory=list)
    alerts: int = 0


class ParquetSink:
    """Writes alerts into Parquet files in ``directory`` (see the module docstring).

    ``prefix`` starts every file name (e.g. the topic). Not thread-safe; one per process.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        alerts_per_file: int = ALERTS_PER_FILE,
        seconds_per_file: float = SECONDS_PER_FILE,
        fields: tuple[str, ...] | None = None,
        cutouts: bool = True,
        prefix: str = "alerts",
        row_group: int = ROW_GROUP,
    ) -> None:
        require_pyarrow()
        if not isinstance(alerts_per_file, int) or isinstance(alerts_per_file, bool) or alerts_per_file < 1:
            raise ConfigError(f"alerts per file must be a positive integer, not {alerts_per_file!r}")
        if not isinstance(seconds_per_file, (int, float)) or seconds_per_file <= 0:
            raise ConfigError(f"seconds per file must be positive, not {seconds_per_file!r}")
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.alerts_per_file, self.seconds_per_file = alerts_per_file, float(seconds_per_file)
        self.fields, self.cutouts = fields, cutouts
        self.prefix = re.sub(r"[^A-Za-z0-9._-]+", "_", prefix) or "alerts"
        self.row_group = row_group
        #: the finished files, in the order they were closed
        self.files: list[Path] = []
        #: alerts written into finished files
        self.written = 0
        self._open: dict[int, tuple[Any, _OpenFile]] = {}  # id(writer schema) -> (the schema, its file)
        self._arrow: dict[int, tuple[Any, Any]] = {}  # id(writer schema) -> (the schema, its Arrow schema)
        self._batch = 0
        self._batch_alerts = 0
        self._batch_started = 0.0
        self._stamp = ""

    def write(self, alert: dict[str, Any], writer_schema: dict[str, Any]) -> bool:
        """Add one alert written with ``writer_schema`` (the Avro schema of its message, e.g.
        ``Decoder.writer_schema``; one object per distinct schema). True when this closed a batch:
        everything written so far is then on disk and may be committed."""
        if not self._open:
            self._start_batch()
        entry = self._open.get(id(writer_schema))
        if entry is None:
            if len(self._open) >= MAX_OPEN:
                self._close_batch()
                self._start_batch()
            entry = self._open[id(writer_schema)] = (writer_schema, self._new_file(writer_schema))
        file = entry[1]
        file.rows.append(alert)
        file.alerts += 1
        if len(file.rows) >= self.row_group:
            self._flush(file)
        self._batch_alerts += 1
        if (
            self._batch_alerts >= self.alerts_per_file
            or time.monotonic() - self._batch_started >= self.seconds_per_file
        ):
            self._close_batch()
            return True
        return False

    def close(self) -> list[Path]:
        """Close the open files (the current batch); return every finished file."""
        if self._open:
            self._close_batch()
        return self.files

    def abort(self) -> None:
        """Drop the open files without finishing them (their alerts were not committed: they are read again)."""
        for _, file in self._open.values():
            try:
                file.writer.close()
            finally:
                file.part.unlink(missing_ok=True)
        self._open.clear()

    @property
    def open_files(self) -> list[Path]:
        """The ``.part`` files being written."""
        return [file.part for _, file in self._open.values()]

    # ------------------------------------------------------------------------- the files
    def _start_batch(self) -> None:
        self._batch += 1
        self._batch_alerts = 0
        self._batch_started = time.monotonic()
        self._stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def _arrow_schema(self, writer_schema: dict[str, Any]) -> Any:
        found = self._arrow.get(id(writer_schema))
        if found is None or found[0] is not writer_schema:
            found = (writer_schema, arrow_schema(writer_schema, fields=self.fields, drop_bytes=not self.cutouts))
            if len(self._arrow) > 256:
                self._arrow.clear()
            self._arrow[id(writer_schema)] = found
        return found[1]

    def _new_file(self, writer_schema: dict[str, Any]) -> _OpenFile:
        import pyarrow.parquet as pq

        schema = self._arrow_schema(writer_schema)
        label = _label(writer_schema)
        name = f"{self.prefix}-{self._stamp}-p{os.getpid()}-{self._batch:04d}-{len(self._open):02d}-{label}"
        part, final = self.directory / f"_{name}.part", self.directory / f"{name}.parquet"
        return _OpenFile(part, final, schema, pq.ParquetWriter(part, schema, compression="zstd"))

    def _flush(self, file: _OpenFile) -> None:
        import pyarrow as pa

        if file.rows:
            file.writer.write_table(pa.Table.from_pylist(file.rows, schema=file.schema))
            file.rows.clear()

    def _close_batch(self) -> None:
        for _, file in self._open.values():
            self._flush(file)
            file.writer.close()
            _fsync(file.part)
            os.replace(file.part, file.final)
            self.files.append(file.final)
            self.written += file.alerts
        _fsync(self.directory)  # the renames are durable too
        self._open.clear()


def _label(schema: dict[str, Any]) -> str:
    """A file-name label for a writer schema: its name and version (``ztf.alert-3.3``, ``lsst.v11_1.alert``)."""
    name = str(schema.get("name", "record"))
    if schema.get("namespace") and "." not in name:
        name = f"{schema['namespace']}.{name}"
    version = schema.get("version")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-{version}" if version else name)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
