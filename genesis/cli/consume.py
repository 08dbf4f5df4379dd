"""``genesis consume URL``: read alerts from a stream and print or save them.

Output formats:

* ``summary`` (default): one line per alert (``genesis.alerts.summary``) on stdout.
* ``json``: one JSON object per line on stdout, or one ``<id>.json`` file per alert with
  ``--output``. Bytes fields (the cutouts) are base64 text, so nothing is lost (decode
  with ``base64.b64decode``); ``--no-cutouts`` leaves them out. NaN and infinities are null.
* ``avro``: one Avro container file per alert in ``--output DIR``, named ``<candid>.avro``
  (ZTF) or ``<diaSourceId>.avro`` (LSST), readable by ``fastavro.reader``. A one-alert
  container message is written as received, byte for byte; other alerts are written with
  the schema they were sent with.
* ``parquet``: Parquet files in ``--output DIR`` (pyarrow, installed with genesis),
  one row per alert, nested fields kept nested; a new file every ``--alerts-per-file`` alerts or
  ``--seconds-per-file`` seconds and for every writer schema; a file being written is
  ``_*.part`` (readers skip it). See :mod:`genesis.parquet`.

Offsets are committed (``--commit``) only after the alerts were written out (for Parquet: only
after the file holding them was closed and fsynced), so a crash never loses an alert (it may
repeat some). The progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._loader import load_callable
from .._models import Metadata
from ..errors import ConfigError
from . import _notes as notes
from . import _reading as reading

EXAMPLES = """examples:
  genesis consume kafka://localhost/small --start-at earliest --limit 5
  genesis consume kafka://localhost/medium --start-at earliest --until-eos \\
      --filter genesis.filters:filter_asteroids --format json > asteroids.jsonl
  genesis consume kafka://me@localhost/small --start-at earliest --until-eos --commit \\
      --format avro --output alerts/
  genesis consume kafka://localhost/ztf --start-at 2024-05-01T06:00 --timeout 30
  genesis consume kafka://localhost/ztf --start-at -10          # the last 10 of every partition
  genesis consume kafka://mygroup@localhost/medium --processes 2 --until-eos --commit
  genesis consume kafka://localhost/medium --start-at earliest --until-eos --fields objectId,candidate \
      --format json                                      # decodes each alert only that far
  genesis consume kafka://me@localhost/medium --start-at earliest --until-eos --commit \
      --format parquet --output alerts/ --no-cutouts     # pandas.read_parquet("alerts/")
"""

#: commit every this many alerts with --commit (and at the end)
COMMIT_EVERY = 1000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "consume",
        help="read alerts from a stream; print them or save them as JSON or Avro",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="kafka://[group@]host[:port]/topic[,topic2]")
    reading.add_start_at(p)
    p.add_argument("--limit", type=int, metavar="N", help="stop after N alerts (per process with --processes)")
    reading.add_end(p)
    p.add_argument(
        "--filter",
        metavar="MODULE:FUNCTION",
        help="keep only alerts for which FUNCTION(alert) is true, e.g. genesis.filters:filter_asteroids",
    )
    p.add_argument(
        "--commit",
        action="store_true",
        help="commit offsets after the alerts were written (needs a group in the URL to matter)",
    )
    p.add_argument("--format", choices=("summary", "json", "avro", "parquet"), default="summary", help="output format")
    p.add_argument(
        "--output",
        metavar="DIR",
        type=Path,
        help="write files into DIR: one per alert (json, avro) or Parquet files (required for avro and parquet)",
    )
    p.add_argument("--no-cutouts", action="store_true", help="json, parquet: leave bytes fields (cutouts) out")
    p.add_argument(
        "--alerts-per-file",
        type=int,
        default=None,
        metavar="N",
        help="parquet: start new files after N alerts (default 10,000)",
    )
    p.add_argument(
        "--seconds-per-file",
        type=float,
        default=None,
        metavar="S",
        help="parquet: start new files after S seconds, at the next alert (default 300)",
    )
    p.add_argument(
        "--fields",
        type=parse_fields,
        metavar="F1,F2",
        help="only these top-level fields of each alert, e.g. objectId,candidate (decoded only that far; "
        "--format avro still writes the whole alert)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="N consumer processes in one group (the group of the URL, or a new shared one)",
    )
    reading.add_schemas(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------ argument parsing
def parse_fields(text: str) -> tuple[str, ...]:
    """``objectId,candidate`` -> ``("objectId", "candidate")``."""
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    if not names:
        raise argparse.ArgumentTypeError("--fields takes top-level field names separated by commas")
    return names


class Transformed:
    """What the filter returned instead of the alert (it has no message of its own)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class MarkTransformed:
    """Wraps the user's filter so that what it returns instead of an alert is told apart from the alert
    (which ``--format avro`` then writes as its message came, byte for byte). Picklable: it runs in
    the consumer processes of ``--processes`` too."""

    def __init__(self, flt: Callable[[dict], Any]) -> None:
        self.flt = flt

    def __call__(self, alert: dict) -> Any:
        verdict = self.flt(alert)
        if verdict is None or verdict is False:
            return None
        if verdict is True or verdict is alert:
            return True
        return Transformed(verdict)


def _alert_name(alert: dict) -> str:
    for key in ("candid", "diaSourceId"):
        if alert.get(key) is not None:
            return str(alert[key])
    raise ConfigError("cannot name the file: the alert has no candid or diaSourceId")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Output:
    """Where alerts go: stdout lines or files in a directory, in the chosen format.

    Picklable, so that each consumer process of ``--processes`` writes its own alerts.
    """

    def __init__(
        self,
        fmt: str,
        directory: Path | None,
        drop_bytes: bool,
        schemas: str | None = None,
        schema_registry: str | None = None,
        progress: bool = False,
        flush_each: bool = False,
        fields: tuple[str, ...] | None = None,
        parquet: dict[str, Any] | None = None,
    ) -> None:
        from .._codecs import Decoder

        self.fmt, self.directory, self.drop_bytes, self.flush_each = fmt, directory, drop_bytes, flush_each
        self.fields = fields
        self.decoder = Decoder(schemas=schemas, schema_registry=schema_registry)  # for the messages' writer schemas
        self.progress = progress
        if fmt in ("avro", "parquet") and directory is None:
            raise ConfigError(f"--format {fmt} writes files: give --output DIR")
        if fmt == "summary" and directory is not None:
            raise ConfigError("--output is for --format json, avro or parquet; summaries go to stdout")
        self.parquet = dict(parquet or {})  # ParquetSink options; the sink is made in the process that writes
        self._sink: Any = None
        if fmt == "parquet":
            from ..parquet import require_pyarrow

            require_pyarrow()
        elif any(v is not None for v in self.parquet.values()):
            raise ConfigError("--alerts-per-file and --seconds-per-file are for --format parquet")
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def commits_on_close(self) -> bool:
        """True when offsets may be committed only as files close (Parquet): :meth:`__call__` says when."""
        return self.fmt == "parquet"

    def __getstate__(self) -> dict[str, Any]:  # to the consumer processes of --processes: without a sink
        return {**self.__dict__, "_sink": None}

    def _line(self, text: str) -> None:
        if self.progress and sys.stdout.isatty() and sys.stderr.isatty():
            from tqdm import tqdm

            tqdm.write(text, file=sys.stdout)  # clears the bar, prints, redraws it
        else:
            sys.stdout.write(text + "\n")
        if self.flush_each:
            sys.stdout.flush()

    def __call__(self, item: Any, meta: Metadata) -> bool:
        """Write one alert (or what the filter returned instead), with the metadata of its message.

        True when everything written so far is on disk (Parquet: a batch of files was just closed),
        so the offsets handed over may be committed; the other formats write each alert at once.
        """
        from .. import alerts

        if self.fmt == "parquet":
            return self._parquet(item, meta)
        alert = item.value if isinstance(item, Transformed) else item
        if self.fmt == "summary":
            self._line(alerts.summary(alert))
        elif self.fmt == "json":
            text = alerts.to_json(alert, drop_bytes=self.drop_bytes)
            if self.directory is None:
                self._line(text)
            else:
                _write_atomic(self.directory / f"{_alert_name(alert)}.json", text.encode() + b"\n")
        else:
            assert self.directory is not None
            if isinstance(item, Transformed) or meta.value is None:
                raise ConfigError(
                    "--format avro cannot write what the filter returned instead of an alert; "
                    "make the filter return the alert (or True), or use --format json"
                )
            if self.fields is not None:  # the stream decoded part of it: the file holds the whole alert
                alert = self.decoder.decode(meta.value, meta.key)[meta.index]
            data = self.decoder.as_container(alert, meta.value, meta.key)
            _write_atomic(self.directory / f"{_alert_name(alert)}.avro", data)
        return True

    def _parquet(self, item: Any, meta: Metadata) -> bool:
        if isinstance(item, Transformed) or meta.value is None:
            raise ConfigError(
                "--format parquet cannot write what the filter returned instead of an alert; "
                "make the filter return the alert (or True), or use --format json"
            )
        if self._sink is None:
            from ..parquet import ParquetSink

            assert self.directory is not None
            options = {k: v for k, v in self.parquet.items() if v is not None}
            self._sink = ParquetSink(self.directory, fields=self.fields, cutouts=not self.drop_bytes, **options)
        return self._sink.write(item, self.decoder.writer_schema(meta.value, meta.key))

    def flush(self) -> None:
        sys.stdout.flush()

    def close(self) -> None:
        """Finish what is being written (Parquet: close the open files); then commit."""
        if self._sink is not None:
            self._sink.close()
        self.flush()

    def abort(self) -> None:
        """Drop unfinished files (Parquet's ``.part``): their alerts are not committed, so they come again."""
        if self._sink is not None:
            self._sink.abort()


# ------------------------------------------------------------------------------ running
def run(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if args.processes > 1:
        return run_processes(args)
    return consume(args)


def _filter(args: argparse.Namespace) -> MarkTransformed | None:
    return MarkTransformed(load_callable(args.filter, "--filter")) if args.filter else None


def _output(args: argparse.Namespace, **options: Any) -> Output:
    """The Output the arguments ask for."""
    from .._urls import parse_url

    topics = parse_url(args.url).topics
    parquet = {"alerts_per_file": args.alerts_per_file, "seconds_per_file": args.seconds_per_file}
    if args.format == "parquet" and len(topics) == 1 and not topics[0].startswith("^"):
        parquet["prefix"] = topics[0]  # file names start with the topic
    return Output(
        args.format,
        args.output,
        args.no_cutouts,
        args.schemas,
        args.schema_registry,
        fields=args.fields,
        parquet=parquet,
        **options,
    )


def consume(args: argparse.Namespace) -> int:
    """One consumer: read, write out, commit what was written (Parquet: what is in closed files)."""
    from ..streaming import open as gs_open

    out = _output(args, progress=not args.no_progress)
    with gs_open(
        args.url, start_at=args.start_at, schemas=args.schemas, schema_registry=args.schema_registry
    ) as stream:
        n = 0
        try:
            for _, item, meta in stream(
                timeout=reading.timeout(args),
                limit=args.limit,
                until_eos=args.until_eos,
                filter=_filter(args),
                progress=not args.no_progress,
                metadata=True,
                fields=args.fields,
            ):
                on_disk = out(item, meta)
                n += 1
                if not args.commit:
                    continue
                if out.commits_on_close:
                    if on_disk:  # a file holding the alerts handed over was just closed and fsynced
                        stream.commit()
                elif n % COMMIT_EVERY == 0:
                    out.flush()
                    stream.commit()
        except BrokenPipeError:  # `genesis consume ... | head`: the reader is gone; stop quietly
            sys.stdout = open(os.devnull, "w")
            return 0
        except BaseException:
            out.abort()  # unfinished files go; their alerts were not committed
            raise
        out.close()
        if args.commit:
            stream.commit()
        if args.until_eos:
            notes.started_at_end("consume", stream.group, stream.stats.started_at_end)
    if args.output is not None:
        print(f"wrote {n} alerts to {args.output}", file=sys.stderr)
    return 0


def run_processes(args: argparse.Namespace) -> int:
    """``--processes N``: N consumer processes of one group (:func:`genesis.scaleout.run_group`).

    Kafka splits the partitions between them; each writes its own alerts (Parquet: its own files,
    named with its pid). With ``--commit``, each commits what it wrote (whenever the output says
    it is on disk: after every alert, or as Parquet files close; and at the end); without it,
    nothing is committed.
    """
    from .._kafka import random_group_id
    from .._urls import parse_url
    from ..scaleout import run_group

    spec = parse_url(args.url)
    if spec.group is None:
        spec = replace(spec, group=random_group_id())
        print(f"genesis consume: {args.processes} processes in the new group {spec.group}", file=sys.stderr)
    out = _output(args, flush_each=args.commit)
    report = run_group(
        spec.url(),
        processes=args.processes,
        handler=out,
        metadata=True,
        start_at=args.start_at,
        filter=_filter(args),
        timeout=reading.timeout(args),
        until_eos=args.until_eos,
        limit=args.limit,
        commit=args.commit,
        commit_every=COMMIT_EVERY,
        sink=out.commits_on_close,
        fields=args.fields,
        options={"schemas": args.schemas, "schema_registry": args.schema_registry},
    )
    if args.output is not None:
        print(f"wrote {report.handled} alerts to {args.output}", file=sys.stderr)
    for p in report.processes:
        if p.error:
            print(f"genesis consume: process {p.index} failed: {p.error}", file=sys.stderr)
    if report.interrupted:
        return 130
    return 0 if report.ok else 1
