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

Offsets are committed (``--commit``) only after the alerts were written out, so a crash
never loses an alert (it may repeat some). The progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError

EXAMPLES = """examples:
  genesis consume kafka://localhost/small --start-at earliest --limit 5
  genesis consume kafka://localhost/medium --start-at earliest --until-eos \\
      --filter genesis.filters:filter_asteroids --format json > asteroids.jsonl
  genesis consume kafka://me@localhost/small --start-at earliest --until-eos --commit \\
      --format avro --output alerts/
  genesis consume kafka://localhost/ztf --start-at 2024-05-01T06:00 --timeout 30
  genesis consume kafka://localhost/ztf --start-at -10          # the last 10 of every partition
  genesis consume kafka://mygroup@localhost/medium --processes 2 --until-eos --commit
"""

#: commit every this many alerts with --commit (and at the end)
COMMIT_EVERY = 1000
_CONTAINER_MAGIC = b"Obj\x01"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "consume",
        help="read alerts from a stream; print them or save them as JSON or Avro",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="kafka://[group@]host[:port]/topic[,topic2]")
    p.add_argument(
        "--start-at",
        default="latest",
        type=parse_start_at,
        metavar="WHEN",
        help="earliest | latest (default; where the group has no committed offset) | "
        "an ISO time (UTC unless it says) | -N (the last N of every partition)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="stop after N alerts (per process with --processes)")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="stop after S seconds without a new alert (default: wait forever, or 10 s with --until-eos)",
    )
    p.add_argument("--until-eos", action="store_true", help="stop once caught up with the end of every partition")
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
    p.add_argument("--format", choices=("summary", "json", "avro"), default="summary", help="output format")
    p.add_argument(
        "--output", metavar="DIR", type=Path, help="write one file per alert into DIR (json, avro; required for avro)"
    )
    p.add_argument("--no-cutouts", action="store_true", help="json: leave bytes fields (cutouts) out")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="N consumer processes in one group (the group of the URL, or a new shared one)",
    )
    p.add_argument("--schemas", metavar="DIR", help="directory of .avsc files for Confluent wire-format (LSST) alerts")
    p.add_argument("--schema-registry", metavar="URL", help="Confluent schema registry for wire-format alerts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------ argument parsing
def parse_start_at(text: str) -> str | int | datetime:
    """``earliest``/``latest``, ``-N``, or an ISO 8601 time (a trailing ``Z`` allowed)."""
    if text in ("earliest", "latest"):
        return text
    if re.fullmatch(r"-\d+", text):
        return int(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not earliest, latest, -N or an ISO time like 2024-05-01T06:00:00"
        ) from None


def load_filter(spec: str) -> Callable[[dict], Any]:
    """The function named ``module:function`` (the module must be importable)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ConfigError(
            f"--filter {spec!r}: write the filter as module:function, e.g. genesis.filters:filter_asteroids"
        )
    try:
        func = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the filter {spec!r}: {exc}") from None
    if not callable(func):
        raise ConfigError(f"--filter {spec!r} is not a function")
    return func


# ------------------------------------------------------------------------------ raw messages
@dataclass(slots=True)
class Received:
    """A decoded alert with the message it came in (for writing it out as Avro unchanged)."""

    alert: Any
    value: bytes | None
    key: bytes | None
    count: int  #: records in the message


class KeepRaw:
    """A decoder that keeps each record's message beside it.

    Installed as the stream's decoder, so it also runs in pool workers; the user's filter
    sees the plain alert through :class:`OnAlert`.
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder

    def decode(self, value: bytes, key: bytes | None = None) -> list[Received]:
        records = self.decoder.decode(value, key)
        return [Received(r, value, key, len(records)) for r in records]

    def schema_by_id(self, schema_id: int) -> Any:
        return self.decoder.schema_by_id(schema_id)


class OnAlert:
    """Applies a user filter to ``Received.alert``, keeping the message beside what it returns."""

    def __init__(self, flt: Callable[[dict], Any] | None) -> None:
        self.flt = flt

    def __call__(self, item: Received) -> Received | None:
        if self.flt is None:
            return item
        verdict = self.flt(item.alert)
        if verdict is None or verdict is False:
            return None
        if verdict is True or verdict is item.alert:
            return item
        return replace(item, alert=verdict, value=None)  # a new value: no message holds it


# ------------------------------------------------------------------------------ writers
def _alert_name(alert: dict) -> str:
    for key in ("candid", "diaSourceId"):
        if alert.get(key) is not None:
            return str(alert[key])
    raise ConfigError("cannot name the file: the alert has no candid or diaSourceId")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def avro_bytes(item: Received, decoder: KeepRaw) -> bytes:
    """One Avro container holding the alert: the message itself when it is one, else re-encoded
    with the writer schema of its message (container header, key schema or wire-format id)."""
    from .._codecs import encode_container
    from .._codecs._container import read_header

    value = item.value
    if value is None:
        raise ConfigError(
            "--format avro cannot write what the filter returned instead of an alert; "
            "make the filter return the alert (or True), or use --format json"
        )
    if value[:4] == _CONTAINER_MAGIC:
        if item.count == 1:
            return value
        schema: Any = read_header(value)[0].decode()
    elif item.key and item.key[:1] in (b"{", b"["):
        schema = item.key.decode()
    elif value[:1] == b"\x00":
        schema = decoder.schema_by_id(int.from_bytes(value[1:5], "big"))
    else:  # JSON messages have no schema
        raise ConfigError("--format avro needs Avro alerts; these are JSON: use --format json")
    return encode_container(item.alert, schema)


def _line_writer(progress: bool) -> Callable[[str], None]:
    """How to print a line: around the progress bar when both share a terminal, else plainly."""
    if progress and sys.stdout.isatty() and sys.stderr.isatty():
        from tqdm import tqdm

        return lambda line: tqdm.write(line, file=sys.stdout)  # clears the bar, prints, redraws it
    return lambda line: sys.stdout.write(line + "\n")


class Output:
    """Where alerts go: stdout lines or files in a directory, in the chosen format."""

    def __init__(
        self, fmt: str, directory: Path | None, drop_bytes: bool, decoder: Any, progress: bool = False
    ) -> None:
        self.fmt, self.directory, self.drop_bytes, self.decoder = fmt, directory, drop_bytes, decoder
        self._line = _line_writer(progress)
        if fmt == "avro" and directory is None:
            raise ConfigError("--format avro writes one file per alert: give --output DIR")
        if fmt == "summary" and directory is not None:
            raise ConfigError("--output is for --format json or avro; summaries go to stdout")
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def write(self, item: Any) -> None:
        from .. import alerts

        alert = item.alert if isinstance(item, Received) else item
        if self.fmt == "summary":
            self._line(alerts.summary(alert))
        elif self.fmt == "json":
            text = json.dumps(alerts.jsonable(alert, drop_bytes=self.drop_bytes), allow_nan=False)
            if self.directory is None:
                self._line(text)
            else:
                _write_atomic(self.directory / f"{_alert_name(alert)}.json", text.encode() + b"\n")
        else:
            _write_atomic(self.directory / f"{_alert_name(alert)}.avro", avro_bytes(item, self.decoder))

    def flush(self) -> None:
        sys.stdout.flush()


# ------------------------------------------------------------------------------ running
def run(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise ConfigError("--processes must be at least 1")
    if args.processes > 1:
        return run_processes(args)
    return consume(args)


def consume(args: argparse.Namespace) -> int:
    """One consumer: read, write out, commit what was written."""
    from ..streaming import open as gs_open

    timeout = args.timeout if args.timeout is not None else (10.0 if args.until_eos else None)
    flt = load_filter(args.filter) if args.filter else None
    with gs_open(
        args.url, start_at=args.start_at, schemas=args.schemas, schema_registry=args.schema_registry
    ) as stream:
        if args.format == "avro":
            stream.decoder = KeepRaw(stream.decoder)
            flt = OnAlert(flt)
        out = Output(args.format, args.output, args.no_cutouts, stream.decoder, progress=not args.no_progress)
        n = 0
        try:
            for _, item in stream(
                timeout=timeout, limit=args.limit, until_eos=args.until_eos, filter=flt, progress=not args.no_progress
            ):
                out.write(item)
                n += 1
                if args.commit and n % COMMIT_EVERY == 0:
                    out.flush()
                    stream.commit()
        except BrokenPipeError:  # `genesis consume ... | head`: the reader is gone; stop quietly
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is silent
            return 0
        out.flush()
        if args.commit:
            stream.commit()
    if args.output is not None:
        print(f"wrote {n} alerts to {args.output}", file=sys.stderr)
    return 0


def _child_argv(args: argparse.Namespace, url: str) -> list[str]:
    """The ``genesis consume`` command line of one of the ``--processes`` children."""
    argv = ["consume", url, "--format", args.format, "--no-progress"]
    start = args.start_at.isoformat() if isinstance(args.start_at, datetime) else str(args.start_at)
    argv.append(f"--start-at={start}")  # '=': a value such as -10 must not look like an option
    for flag, value in (
        ("--limit", args.limit),
        ("--timeout", args.timeout),
        ("--filter", args.filter),
        ("--output", args.output),
        ("--schemas", args.schemas),
        ("--schema-registry", args.schema_registry),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for flag, on in (("--until-eos", args.until_eos), ("--commit", args.commit), ("--no-cutouts", args.no_cutouts)):
        if on:
            argv.append(flag)
    return argv


def run_processes(args: argparse.Namespace) -> int:
    """``--processes N``: N ``genesis consume`` processes sharing one consumer group.

    Kafka splits the partitions between them. Stop-gap until the scale-out helper
    (``genesis.scaleout``) exists. Without ``--commit``, partitions that move between the
    processes are read again from the last commit (duplicates, never loss).
    """
    from .._kafka import random_group_id
    from .._urls import parse_url

    spec = parse_url(args.url)
    url = args.url
    if spec.group is None:
        group = random_group_id()
        url = url.replace("kafka://", f"kafka://{group}@", 1)
        print(f"genesis consume: {args.processes} processes in the new group {group}", file=sys.stderr)
    argv = [sys.executable, "-m", "genesis", *_child_argv(args, url)]
    procs = [subprocess.Popen(argv) for _ in range(args.processes)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:  # the children got the Ctrl-C too; give them time to commit and leave
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return 130
    return max(codes)
