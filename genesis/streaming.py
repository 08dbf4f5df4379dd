"""genesis.streaming: alert streams as Python generators of plain dicts.

::

    import genesis.streaming as gs

    with gs.open("kafka://localhost/small", start_at="earliest") as stream:
        for idx, alert in stream(timeout=10, progress=True):
            print(idx, alert["candid"])
        stream.commit()   # remember, in Kafka, that these alerts are processed

See :func:`open` for the options, ``Stream.__call__`` for the loop's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, overload

from . import errors
from ._fields import Filter
from ._models import Metadata, Processed, Stats
from ._parallel import Pool
from ._producer import Writer
from ._stream import Stream
from ._urls import StreamSpec, parse_url
from .dedup import dedup
from .errors import ConfigError

if TYPE_CHECKING:
    from ._reading import ReadOptions

from .pipe import Pipe, pipe

__all__ = [
    "open",
    "Pool",
    "Filter",
    "dedup",
    "Stream",
    "Writer",
    "Metadata",
    "Stats",
    "Processed",
    "pipe",
    "Pipe",
    "query",
    "persistent_query",
    "StreamSpec",
    "parse_url",
    "errors",
]

log = logging.getLogger("genesis")


@overload
def open(url: str, mode: Literal["r"] = "r", **options: Any) -> Stream: ...
@overload
def open(url: str, mode: Literal["w"], **options: Any) -> Writer: ...


def open(url: str, mode: str = "r", **options: Any) -> Stream | Writer:
    """Open an alert stream for reading (``mode="r"``) or writing (``mode="w"``).

    url: ``kafka://[group@]host[:port][,host2...]/topic[,topic2...]``. Without a
        group, a fresh random one is used, so nothing is remembered between runs.
        ``file:///path`` reads an archive (``.avro`` files, directories, ``.tar.gz``)
        through the same API, so a filter developed on an archive runs unchanged live.

    Reading options:

    start_at: where a group without committed offsets starts: ``"latest"``
        (default: only new alerts) or ``"earliest"`` (everything kept). A
        ``datetime`` (naive means UTC) or ``-N`` (the last N alerts of every
        partition) always seeks, committed offsets or not, as does a mapping
        ``{(topic, partition): offset}`` of positions kept elsewhere (with the data in a
        database; partitions it lacks start at their beginning).
    connect_timeout: seconds to reach the brokers and find the topics before
        raising (default 30; brokers that all refuse the connection, or a host that does
        not resolve, fail within a few seconds unless a timeout is given).
    schemas: a directory of ``.avsc`` files for Confluent wire-format alerts (LSST);
        ``schema_registry``: the URL of a Confluent-compatible schema registry. With
        neither, wire-format ids are read as Rubin's and decoded with Rubin's own schemas
        when ``genesis-streaming[rubin]`` (lsst-alert-packet) is installed.
    auth: a :class:`genesis.auth.Auth` or a dict of librdkafka security settings.
    on_decode_error: what to do with a packet that cannot be decoded: ``"raise"``
        (default), ``"skip"`` (logged and counted in ``stream.stats.skipped``),
        ``"quarantine"`` (kept in ``quarantine=``, a directory or ``kafka://`` URL),
        or a function ``f(meta, raw_bytes, error)``. ``errors=`` is its older spelling.
    config: librdkafka properties, applied last.
    max_hold: how long (seconds, default 1800) the loop may hold one alert — your code working on
        it, or a notebook between cells — while genesis keeps the consumer in its group (Kafka
        would drop it after ``max.poll.interval.ms``); after that the next step raises
        :class:`~genesis.errors.HeldTooLongError`.
    stall_timeout: seconds (default 30) of receiving nothing while the stream keeps asking and its
        partitions have messages waiting, before genesis calls the consumer stalled (librdkafka can
        stop fetching a partition without an error): it logs a warning naming the partitions and
        their positions, commits what ``commit()`` marked, and replaces the consumer with a new one
        that resumes after what the stream handed out. Time you hold an alert does not count.
        ``float("inf")`` turns this off.

    Writing options: ``schema`` (dict), ``schema_id`` / ``schema_registry`` for the
    Confluent wire format, ``auth``, ``config``, ``connect_timeout``.
    """
    from ._reading import WRITE_OPTIONS, ReadOptions, check

    spec = parse_url(url)
    if mode not in ("r", "w"):
        raise ConfigError(f"mode must be 'r' (read) or 'w' (write), not {mode!r}")
    if mode == "w":
        check(options, WRITE_OPTIONS, "mode 'w'")
        if spec.scheme != "kafka":
            raise ConfigError("writing is supported to kafka:// URLs only")
        return Writer(spec, **options)
    return _open_reader(spec, ReadOptions.of(options, "mode 'r'"))


def query(sql: str, tables: Any = None, **open_options: Any) -> Any:
    """A push query: the rows of ``sql`` (DuckDB's dialect) over the alert stream its FROM names.

    ``for idx, row in q(until_eos=True)``, with ``gs.open``'s commit semantics; see
    :func:`genesis.sql.query` (imported on first use: DuckDB starts in ~0.1 s).
    """
    return _sql().query(sql, tables, **open_options)


def persistent_query(sql: str, tables: Any = None, **pipe_options: Any) -> Pipe:
    """A persistent query, ``CREATE STREAM name AS SELECT ...``: an exactly-once pipe from the FROM
    topic into ``name``; ``with ... as p: p.run(until_eos=True)``. See :func:`genesis.sql.persistent_query`.
    """
    return _sql().persistent_query(sql, tables, **pipe_options)


def _sql() -> Any:
    """:mod:`genesis.sql`, imported when a query is first opened (DuckDB, sqlglot and pyarrow)."""
    try:
        from . import sql
    except ImportError as exc:
        raise ConfigError(
            f"queries need sqlglot, DuckDB and pyarrow, which genesis installs ({exc}): reinstall genesis-streaming"
        ) from None
    return sql


def _open_reader(spec: StreamSpec, options: ReadOptions) -> Stream:
    from ._sources import Source
    from ._sources.archive import ArchiveSource
    from ._sources.kafka import KafkaSource

    decoder, policy = options.decoder(), options.policy()
    source: Source
    if spec.scheme == "file":
        source = ArchiveSource(spec)
    else:
        source = KafkaSource(spec, **options.source_options())
    return Stream(spec, source, decoder, policy)
