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
from pathlib import Path
from typing import Any, Callable, Mapping

from . import errors
from .errors import ConfigError
from ._consumer import Stream
from .dedup import dedup
from ._stream import Metadata, Stats
from ._parallel import Pool
from ._producer import Writer
from ._urls import StreamSpec, parse_url

__all__ = ["open", "Pool", "dedup", "Stream", "Writer", "Metadata", "Stats", "StreamSpec", "parse_url", "errors"]

log = logging.getLogger("genesis")

_READ_OPTIONS = {"start_at", "connect_timeout", "schemas", "schema_registry", "auth", "errors", "quarantine", "config"}
_WRITE_OPTIONS = {"schema", "schema_id", "schema_registry", "connect_timeout", "auth", "config"}


def open(url: str, mode: str = "r", **options: Any) -> Stream | Writer:  # noqa: A001 - the notebook's name
    """Open an alert stream for reading (``mode="r"``) or writing (``mode="w"``).

    url: ``kafka://[group@]host[:port][,host2...]/topic[,topic2...]``. Without a
        group, a fresh random one is used, so nothing is remembered between runs.
        ``file:///path`` reads an archive (``.avro`` files, directories, ``.tar.gz``)
        through the same API, so a filter developed on an archive runs unchanged live.

    Reading options:

    start_at: where a group without committed offsets starts: ``"latest"``
        (default: only new alerts) or ``"earliest"`` (everything kept). A
        ``datetime`` (naive means UTC) or ``-N`` (the last N alerts of every
        partition) always seeks, committed offsets or not.
    connect_timeout: seconds to reach the brokers and find the topics before
        raising (default 30).
    schemas: a directory of ``.avsc`` files for Confluent wire-format alerts (LSST);
        ``schema_registry``: the URL of a Confluent-compatible schema registry.
    auth: a :class:`genesis.auth.Auth` or a dict of librdkafka security settings.
    errors: what to do with a packet that cannot be decoded: ``"raise"``
        (default), ``"skip"`` (logged and counted in ``stream.stats.skipped``),
        ``"quarantine"`` (kept in ``quarantine=``, a directory or ``kafka://`` URL),
        or a function ``f(meta, raw_bytes, error)``.
    config: librdkafka properties, applied last.

    Writing options: ``schema`` (dict), ``schema_id`` / ``schema_registry`` for the
    Confluent wire format, ``auth``, ``config``, ``connect_timeout``.
    """
    spec = parse_url(url)
    if mode not in ("r", "w"):
        raise ConfigError(f"mode must be 'r' (read) or 'w' (write), not {mode!r}")
    allowed = _READ_OPTIONS if mode == "r" else _WRITE_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown option(s) for mode {mode!r}: {', '.join(unknown)}; valid options are {', '.join(sorted(allowed))}"
        )
    if mode == "w":
        if spec.scheme != "kafka":
            raise ConfigError("writing is supported to kafka:// URLs only")
        return Writer(spec, **options)
    return _open_reader(spec, **options)


def _open_reader(
    spec: StreamSpec,
    *,
    start_at: Any = "latest",
    connect_timeout: float = 30,
    schemas: str | Path | None = None,
    schema_registry: str | None = None,
    auth: Any = None,
    errors: str | Callable[..., Any] = "raise",
    quarantine: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> Stream:
    from ._codecs import Decoder
    from ._policies import decode_error_policy

    decoder = Decoder(schemas=schemas, schema_registry=schema_registry)
    policy = decode_error_policy(errors, quarantine)
    if spec.scheme == "file":
        from ._archive import ArchiveStream

        return ArchiveStream(spec, decoder=decoder, errors_policy=policy)
    return Stream(
        spec,
        start_at=start_at,
        connect_timeout=connect_timeout,
        decoder=decoder,
        errors_policy=policy,
        config=config,
        auth=auth,
    )
