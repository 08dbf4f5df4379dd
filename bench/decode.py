"""Decode only, in process: the compiled decoder vs fastavro with a cached schema vs ``fastavro.reader``.

CPU time per alert (``time.process_time``), best of 15 passes; the paths take turns pass by
pass, so a stray interruption of the machine hits them alike. A pass decodes every message of
a kind held in memory, repeated to fill ~50 ms. One alert per message, as on Kafka. The kinds,
all from the real packets of ``../shared/data`` (``genesis.demo.alert_data_dir()``):

* **ZTF 3.x / ZTF 4.x**: the raw ZTF Avro containers of ``ztf/raw`` as they are (one file =
  one message), split by the ``version`` of their writer schema;
* **Fink**: the Fink-enriched ZTF alerts of ``ztf/fink_enriched``, as Fink sends them: the
  record without framing (``schemaless_writer``) as the value, its writer schema's JSON as the key;
* **Rubin 9 / 10 / 11**: LSST records in the Confluent wire format (``0x00`` + 4-byte schema id +
  the record), encoded with the official ``lsst/schema/<ver>/lsst.v<ver>.alert.avsc``. 9: Fink's
  real v9.0 alerts (``lsst/real_fink/rubin_v9_0``); 10 and 11: Fink's real v10.0 alerts
  (``lsst/real_fink/part-2-918301.avro``, which validate against both schemas) plus that version's
  official sample (``sample_data/<ver>/fakeAlert.avro``). Fink's files were written by Spark,
  which stores an absent record as a record of nulls: such a value is written as ``null``, which
  the official schema requires; nothing else is changed.

Paths: **compiled** = ``genesis.Decoder()`` (the Rust decoder); **fastavro cached** =
``genesis.Decoder(compiled=False)`` (fastavro ``schemaless_reader`` with the writer schema parsed
once: the path genesis took before the compiled decoder, and still takes without cargo);
**fastavro.reader** = ``list(fastavro.reader(BytesIO(value)))`` as the peers call it (it parses the
container's schema on every message; for the wire-format and Fink kinds it reads the same record
written as a one-record container). Then prefix decoding for ZTF
(``Decoder.decode_prefixes(value, None, fields)``: only up to ``candidate``) and what crossing a
process boundary costs: a pickle round trip of a decoded alert against decoding it again.

    python bench/decode.py            (no cluster needed)
"""

from __future__ import annotations

import io
import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from _common import Context, Section, machine_busy
from fastavro.schema import load_schema

import genesis
from genesis.demo import require_data_dir

REPEATS = 15
TARGET = 8.0  # compiled / fastavro cached, on every kind


# --------------------------------------------------------------------------- the messages


def _container(records: list[dict], schema: dict) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec="null")
    return out.getvalue()


def _schemaless(record: dict, schema: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def _read(path: Path) -> tuple[list[dict], dict]:
    reader = fastavro.reader(io.BytesIO(path.read_bytes()))
    records = list(reader)
    return records, reader.writer_schema


def _official(data: Path, version: str) -> dict:
    major, minor = version.split(".")
    return load_schema(str(data / f"lsst/schema/{version}/lsst.v{major}_{minor}.alert.avsc"), _write_hint=False)


def _unspark(value: Any) -> Any:
    """Spark writes an absent record as a record of nulls; Rubin's schema has ``null`` there."""
    return None if isinstance(value, dict) and value and all(v is None for v in value.values()) else value


class Kind:
    """The messages of one kind: ``(value, key)`` pairs, the decoders' configuration, the peers' containers."""

    def __init__(self, name: str, how: str) -> None:
        self.name, self.how = name, how
        self.messages: list[tuple[bytes, bytes | None]] = []
        self.containers: list[bytes] = []  # what fastavro.reader reads (the peers' path)
        self.schemas: dict[int, dict] | None = None

    @property
    def alerts(self) -> int:
        return len(self.messages)

    def decoder(self, compiled: bool) -> genesis.Decoder:
        return genesis.Decoder(schemas=self.schemas, compiled=compiled)


def kinds(data: Path) -> list[Kind]:
    ztf3 = Kind("ZTF 3.x", "raw ZTF containers (ztf/raw), as they are")
    ztf4 = Kind("ZTF 4.x", "raw ZTF containers (ztf/raw), as they are")
    for path in sorted((data / "ztf/raw").rglob("*.avro")):
        value = path.read_bytes()
        records, schema = _read(path)
        if len(records) != 1:
            continue  # one alert per message, as ZTF sends them (every raw file holds one)
        kind = ztf4 if str(schema.get("version", "")).startswith("4") else ztf3
        kind.messages.append((value, None))
        kind.containers.append(value)

    fink = Kind("Fink", "Fink-enriched ZTF (ztf/fink_enriched): schemaless value, schema JSON as the key")
    for path in sorted((data / "ztf/fink_enriched").glob("*.avro")):
        records, schema = _read(path)
        key = json.dumps(schema).encode()
        for record in records:
            fink.messages.append((_schemaless(record, schema), key))
            fink.containers.append(_container([record], schema))

    v9 = [r for p in sorted((data / "lsst/real_fink/rubin_v9_0").glob("*.avro")) for r in _read(p)[0]]
    v10 = _read(data / "lsst/real_fink/part-2-918301.avro")[0]
    rubin = []
    for version, real, sample in [("9.0", v9, None), ("10.0", v10, "10.0"), ("11.0", v10, "11.0")]:
        schema = _official(data, version)
        names = [f["name"] for f in schema["fields"]]
        records = [{k: _unspark(r.get(k)) for k in names} for r in real]
        source = "rubin_v9_0" if version == "9.0" else "part-2-918301 (v10.0)"
        if sample:
            records += _read(data / f"lsst/sample_data/{sample}/fakeAlert.avro")[0]
            source += " + fakeAlert"
        schema_id = int(float(version) * 100)
        kind = Kind(f"Rubin {version.split('.')[0]}", f"wire format, official {version} .avsc: Fink {source}")
        kind.schemas = {schema_id: schema}
        header = b"\x00" + schema_id.to_bytes(4, "big")
        kind.messages = [(header + _schemaless(r, schema), None) for r in records]
        kind.containers = [_container([r], schema) for r in records]
        rubin.append(kind)
    return [ztf3, ztf4, fink, *rubin]


# --------------------------------------------------------------------------- timing


def _pass_seconds(fn: Callable[[Any], Any], items: list, rounds: int) -> float:
    started = time.process_time()
    for _ in range(rounds):
        for item in items:
            fn(item)
    return (time.process_time() - started) / rounds


def best_of(paths: dict[str, tuple[Callable[[Any], Any], list]], alerts: int) -> dict[str, float]:
    """µs of CPU per alert of each path, best of REPEATS passes, the paths taking turns."""
    rounds = {}
    for name, (fn, items) in paths.items():
        once = max(_pass_seconds(fn, items, 1), 1e-6)  # also warms the schema caches
        rounds[name] = max(1, int(0.05 / once))
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(REPEATS):
        for name, (fn, items) in paths.items():
            times[name].append(_pass_seconds(fn, items, rounds[name]))
    return {name: min(t) / alerts * 1e6 for name, t in times.items()}


def _reader(value: bytes) -> list:
    return list(fastavro.reader(io.BytesIO(value)))


def measure_kind(kind: Kind) -> dict[str, Any]:
    compiled, cached = kind.decoder(True), kind.decoder(False)
    for value, key in kind.messages:  # both paths must agree before they are timed
        if repr(compiled.decode(value, key)) != repr(cached.decode(value, key)):
            raise AssertionError(f"{kind.name}: the compiled and fastavro decoders disagree")
    us = best_of(
        {
            "compiled": (lambda m: compiled.decode(m[0], m[1]), kind.messages),
            "cached": (lambda m: cached.decode(m[0], m[1]), kind.messages),
            "reader": (_reader, kind.containers),
        },
        kind.alerts,
    )
    return {"bytes": sum(len(v) for v, _ in kind.messages) / kind.alerts, **us}


def copy_floor(kind: Kind) -> tuple[float, float]:
    """(KB, µs) per alert of copying its top-level ``bytes`` fields (the cutouts) out of the message: a floor
    no decoder that returns them as ``bytes`` goes below."""
    decoder = kind.decoder(True)
    sizes = [[len(v) for v in decoder.decode(m, k)[0].values() if isinstance(v, bytes)] for m, k in kind.messages]
    jobs = list(zip((m for m, _ in kind.messages), sizes))

    def copy(job: tuple[bytes, list[int]]) -> None:
        value, lengths = job
        for n in lengths:
            value[5 : 5 + n]

    us = best_of({"copy": (copy, jobs)}, kind.alerts)["copy"]
    return sum(map(sum, sizes)) / len(sizes) / 1024, us


def measure_prefix(ztf: list[tuple[bytes, bytes | None]]) -> list[list[Any]]:
    """ZTF, all versions: decoding only up to ``candidate`` (as a declared-fields filter reads it)."""
    rows = []
    compiled, cached = genesis.Decoder(compiled=True), genesis.Decoder(compiled=False)
    for fields in [("candidate",), ("objectId", "candidate")]:
        us = best_of(
            {
                "compiled": (lambda m, f=fields: compiled.decode_prefixes(m[0], m[1], f), ztf),
                "cached": (lambda m, f=fields: cached.decode_prefixes(m[0], m[1], f), ztf),
                "compiled, then completed": (
                    lambda m, f=fields: [p.complete() for p in compiled.decode_prefixes(m[0], m[1], f)],
                    ztf,
                ),
            },
            len(ztf),
        )
        rows.append(
            [
                f"fields={fields!r}",
                us["compiled"],
                us["cached"],
                us["cached"] / us["compiled"],
                us["compiled, then completed"],
            ]
        )
    full = best_of({"compiled": (lambda m: compiled.decode(m[0], m[1]), ztf)}, len(ztf))["compiled"]
    rows.append(["whole alert (decode)", full, "", "", ""])
    return rows


def measure_boundary(ztf: list[tuple[bytes, bytes | None]]) -> dict[str, float]:
    """What a kept alert costs to cross from a pool worker to the parent: pickled there and back, or
    only its verdict sent and the alert decoded again in the parent."""
    decoder, cached = genesis.Decoder(compiled=True), genesis.Decoder(compiled=False)
    alerts = [decoder.decode(v, k)[0] for v, k in ztf]
    blobs = [pickle.dumps(a, pickle.HIGHEST_PROTOCOL) for a in alerts]
    us = best_of(
        {
            "pickle": (lambda a: pickle.loads(pickle.dumps(a, pickle.HIGHEST_PROTOCOL)), alerts),
            "dumps": (lambda a: pickle.dumps(a, pickle.HIGHEST_PROTOCOL), alerts),
            "loads": (pickle.loads, blobs),
            "compiled": (lambda m: decoder.decode(m[0], m[1]), ztf),
            "cached": (lambda m: cached.decode(m[0], m[1]), ztf),
        },
        len(ztf),
    )
    us["pickled_bytes"] = sum(map(len, blobs)) / len(blobs)
    us["message_bytes"] = sum(len(v) for v, _ in ztf) / len(ztf)
    return us


# --------------------------------------------------------------------------- the section


def run(ctx: Context | None = None) -> Section:
    data = require_data_dir()
    load_before = machine_busy()
    if not genesis.Decoder().compiled:
        raise SystemExit("the compiled decoder is not built: reinstall genesis with cargo on PATH (make setup)")
    found = kinds(data)
    rows, ratios = [], {}
    for kind in found:
        m = measure_kind(kind)
        ratios[kind.name] = m["cached"] / m["compiled"]
        rows.append(
            [
                kind.name,
                kind.alerts,
                m["bytes"],
                m["compiled"],
                m["cached"],
                m["reader"],
                f"{ratios[kind.name]:.1f}x",
                f"{m['reader'] / m['compiled']:.1f}x",
            ]
        )
        print(f"  {kind.name}: compiled {m['compiled']:.1f} µs, fastavro {m['cached']:.1f} µs", flush=True)
    ztf = [m for k in found if k.name.startswith("ZTF") for m in k.messages]
    floor_kind = min(found, key=lambda k: ratios[k.name])
    kb, floor = copy_floor(floor_kind)
    prefix = measure_prefix(ztf)
    cross = measure_boundary(ztf)
    worst = min(ratios, key=ratios.get)  # type: ignore[arg-type]
    notes = [
        f"compiled / fastavro cached: {ratios[worst]:.1f}x at worst ({worst}); target >= {TARGET:.0f}x on every "
        f"kind: {'met' if ratios[worst] >= TARGET else 'NOT met'}; {floor_kind.name}'s alerts are mostly cutouts "
        f"({kb:,.0f} KB of bytes fields per alert, little else: no history): copying those bytes alone costs "
        f"{floor:.1f} µs of its compiled {rows[[k.name for k in found].index(floor_kind.name)][3]:.1f} µs",
        "how each kind's messages are made: " + "; ".join(f"**{k.name}** ({k.alerts}): {k.how}" for k in found),
        f"prefix decoding, ZTF (all {len(ztf)} alerts), µs per alert: "
        + "; ".join(
            f"{r[0]}: compiled {r[1]:.1f}, fastavro cached {r[2]:.1f} ({r[3]:.1f}x), compiled then completed {r[4]:.1f}"
            for r in prefix[:-1]
        )
        + f"; whole alert, compiled: {prefix[-1][1]:.1f}",
        f"crossing the process boundary (ZTF, µs per alert, {cross['message_bytes']:,.0f} B message, "
        f"{cross['pickled_bytes']:,.0f} B pickled): pickle round trip {cross['pickle']:.0f} "
        f"(dumps {cross['dumps']:.0f} in the worker + loads {cross['loads']:.0f} in the parent) against "
        f"decoding again in the parent {cross['compiled']:.0f} (compiled) / {cross['cached']:.0f} (fastavro): "
        + (
            "with the compiled decoder, sending the verdict and decoding again is cheaper"
            if cross["compiled"] < cross["pickle"]
            else "pickling is cheaper"
        ),
        f"CPU µs per alert, best of {REPEATS}; load average (1 min) before {load_before:.1f}, after "
        f"{machine_busy():.1f} on {__import__('os').cpu_count()} cores",
    ]
    return Section(
        "Decode only, in process (CPU µs per alert)",
        [
            "kind",
            "alerts",
            "B/msg",
            "compiled µs",
            "fastavro cached µs",
            "fastavro.reader µs",
            "vs cached",
            "vs reader",
        ],
        rows,
        notes,
        ["python bench/decode.py"],
    )


def main() -> int:
    print(run().text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
