"""``genesis show FILE|URL``: one alert's summary and main fields, or its light curve and cutouts as a PNG.

FILE is an alert file (``.avro`` container, as ZTF sends them, or ``.json``); URL a stream
(``kafka://host/topic``), of which the first alert from the earliest offset is shown, or the
one at ``--offset`` of ``--partition``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError

EXAMPLES = """examples:
  genesis show ../shared/data/ztf/raw/fink-client/ZTF19acihgng.avro
  genesis show ../shared/data/ztf/raw/fink-client/ZTF19acihgng.avro --plot alert.png
  genesis show kafka://localhost/small                       # the first alert of the topic
  genesis show kafka://localhost/small --partition 2 --offset 7 --plot alert.png
  genesis show alert.avro --json                             # every field (cutouts as base64)
"""

_TIMEOUT = 15.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="print an alert's summary and main fields, or plot it to a PNG",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="FILE|URL", help="an alert file or kafka://host/topic")
    p.add_argument("--plot", metavar="PNG", type=Path, help="draw the light curve and cutouts into this PNG")
    p.add_argument("--index", type=int, default=0, help="which alert of a file holding several (default 0)")
    p.add_argument("--partition", type=int, default=0, help="URL: the partition of --offset (default 0)")
    p.add_argument("--offset", type=int, help="URL: show the alert at this offset (default: the first from earliest)")
    p.add_argument("--json", action="store_true", help="print the whole alert as JSON (cutouts base64)")
    p.add_argument("--schemas", metavar="DIR", help="directory of .avsc files for Confluent wire-format alerts")
    p.set_defaults(func=run)


def from_file(path: Path, index: int, schemas: str | None = None) -> tuple[dict, str]:
    """The ``index``-th alert of a file, and where it came from."""
    from .._codecs import Decoder, decode_file

    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    records = decode_file(path, Decoder(schemas=schemas))
    if not 0 <= index < len(records):
        raise ConfigError(f"{path} holds {len(records)} alert(s); --index {index} is out of range")
    where = f"{path}" + (f" (alert {index} of {len(records)})" if len(records) > 1 else "")
    return records[index], where


def from_stream(url: str, partition: int, offset: int | None, schemas: str | None = None) -> tuple[dict, str]:
    """The first alert of the stream from earliest, or the one at (``partition``, ``offset``)."""
    from ..streaming import open as gs_open

    if offset is None:
        with gs_open(url, start_at="earliest", schemas=schemas) as stream:
            for _, alert, meta in stream(limit=1, timeout=_TIMEOUT, metadata=True):
                return alert, f"{meta.topic}[{meta.partition}]@{meta.offset}"
        raise ConfigError(f"no alert arrived from {url} within {_TIMEOUT:g} s: is the topic empty?")
    return _at_offset(url, partition, offset, schemas)


def _at_offset(url: str, partition: int, offset: int, schemas: str | None) -> tuple[dict, str]:
    from .._codecs import Decoder
    from .._topics import read_one
    from .._urls import parse_url

    spec = parse_url(url)
    if len(spec.topics) != 1 or spec.topics[0].startswith("^"):
        raise ConfigError("--offset needs a URL with exactly one topic name")
    topic = spec.topics[0]
    msg = read_one(spec, topic, partition, offset, timeout=_TIMEOUT)
    records = Decoder(schemas=schemas).decode(msg.value(), msg.key())
    return records[0], f"{topic}[{partition}]@{offset}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e4 else f"{value:.6f}"  # times (jd, mjd) keep ~0.1 s
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def describe(alert: dict, where: str) -> str:
    """What ``genesis show`` prints: the summary line, then the main fields, one per line."""
    from .. import alerts

    fields = alerts.key_fields(alert)
    width = max(map(len, fields))
    lines = [alerts.summary(alert), f"from {where}", ""]
    lines += [f"  {name.ljust(width)}  {_value(value)}" for name, value in fields.items()]
    return "\n".join(lines)


def plot(alert: dict, path: Path) -> Path:
    """The light curve above the three cutouts, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    from .. import alerts

    fig = plt.figure(figsize=(10, 8), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])  # type: ignore[misc]  # two: an array
    alerts.plot_lightcurve(alert, ax=top.subplots())
    alerts.plot_cutouts(alert, fig=bottom)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    from .. import alerts

    if "://" in args.source:
        alert, where = from_stream(args.source, args.partition, args.offset, args.schemas)
    else:
        alert, where = from_file(Path(args.source), args.index, args.schemas)
    if args.json:
        print(json.dumps(alerts.jsonable(alert), indent=1, allow_nan=False))
    else:
        print(describe(alert, where))
    if args.plot is not None:
        print(f"wrote {plot(alert, args.plot)}")
    return 0
