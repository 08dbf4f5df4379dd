"""genesis._native against fastavro on generated schemas of every Avro type, with matching data.

Hypothesis draws a schema (nested records, arrays, maps, unions with null, enums, fixed, named
references in and across namespaces, recursive types, logical types), then values for it; fastavro
writes them (schemaless, and as containers with every codec) and both decoders must return the
same objects: values, types and key order. Values a logical type cannot represent must fail in
both (a DecodeError here).
"""

from __future__ import annotations

import decimal
import io
import json
import math

import fastavro
import pytest
from helpers import assert_same
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

native = pytest.importorskip("genesis._native")

GENERATED = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
LOGICAL = [
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "long", "logicalType": "local-timestamp-millis"},
    {"type": "long", "logicalType": "local-timestamp-micros"},
    {"type": "long", "logicalType": "timestamp-nanos"},  # not converted by fastavro: a long
    {"type": "int", "logicalType": "date"},
    {"type": "int", "logicalType": "time-millis"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "int", "logicalType": "no-such-logical-type"},
    {"type": "string", "logicalType": "timestamp-millis"},  # on the wrong base type: a string
]


class Names:
    def __init__(self) -> None:
        self.count = 0
        self.done: list[tuple[str, str]] = []  # (full name, namespace) of finished named types

    def new(self, draw, ns: str) -> tuple[dict, str, str]:
        """A name for a new named type: (name/namespace keys, full name, its namespace)."""
        self.count += 1
        short = f"T{self.count}"
        how = draw(st.sampled_from(["inherit", "own", "dotted"]))
        if how == "own":
            own = draw(st.sampled_from(["", "a", "a.b", "z"]))
            keys = {"name": short, "namespace": own}
            return keys, (f"{own}.{short}" if own else short), own
        if how == "dotted":
            full = f"q.r.{short}"
            return {"name": full}, full, "q.r"
        return {"name": short}, (f"{ns}.{short}" if ns else short), ns


@st.composite
def schemas(
    draw, names: Names, depth: int = 0, ns: str = "", parents: tuple = (), in_union: bool = False, record=False
):
    kinds = ["primitive"] * 4 + ["logical"] * 2 + ["enum", "fixed", "decimal"]
    if depth < 3:
        kinds += ["record"] * 3 + ["array", "map"]
        if not in_union:
            kinds += ["union"] * 2
    # a name without a namespace can only be referred to from outside every namespace
    reachable = [(full, where) for full, where in names.done if "." in full or not ns]
    parents = tuple(p for p in parents if "." in p or not ns)
    if reachable:
        kinds += ["ref"]
    if parents:
        kinds += ["recursive"]
    kind = "record" if record else draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES + [{"type": "int"}, {"type": "string", "extra": 1}]))
    if kind == "logical":
        return dict(draw(st.sampled_from(LOGICAL)))
    if kind == "ref":
        full, _ = draw(st.sampled_from(reachable))
        if "." in full and full.rsplit(".", 1)[0] == ns and draw(st.booleans()):
            return full.rsplit(".", 1)[1]  # a short name, resolved in the enclosing namespace
        return full
    if kind == "recursive":
        full = draw(st.sampled_from(parents))
        wrap = draw(st.sampled_from(["union", "array", "map"]))
        if wrap == "union":
            return ["null", full]
        return {"type": wrap, ("items" if wrap == "array" else "values"): full}
    if kind == "enum":
        keys, full, _ = names.new(draw, ns)
        symbols = draw(
            st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True), min_size=1, max_size=5, unique=True)
        )
        names.done.append((full, ns))
        return {"type": "enum", **keys, "symbols": symbols}
    if kind == "fixed":
        keys, full, _ = names.new(draw, ns)
        names.done.append((full, ns))
        out = {"type": "fixed", **keys, "size": draw(st.integers(0, 8))}
        if draw(st.booleans()):
            out["logicalType"] = "uuid"  # not converted by fastavro on fixed
        return out
    if kind == "decimal":
        if draw(st.booleans()):
            precision = draw(st.integers(1, 30))
            return {
                "type": "bytes",
                "logicalType": "decimal",
                "precision": precision,
                "scale": draw(st.integers(0, precision)),
            }
        keys, full, _ = names.new(draw, ns)
        names.done.append((full, ns))
        size = draw(st.integers(1, 10))
        precision = draw(st.integers(1, math.floor(math.log10(2) * (8 * size - 1))))
        return {
            "type": "fixed",
            **keys,
            "size": size,
            "logicalType": "decimal",
            "precision": precision,
            "scale": draw(st.integers(0, precision)),
        }
    if kind == "array":
        return {"type": "array", "items": draw(schemas(names, depth + 1, ns, parents))}
    if kind == "map":
        return {"type": "map", "values": draw(schemas(names, depth + 1, ns, parents))}
    if kind == "union":
        branches = [draw(schemas(names, depth + 1, ns, parents, in_union=True)) for _ in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):
            branches.insert(draw(st.integers(0, len(branches))), "null")
        assume(all(not isinstance(b, list) for b in branches))
        return branches
    keys, full, child_ns = names.new(draw, ns)
    field_names = draw(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,4}", fullmatch=True), max_size=5, unique=True))
    record = {"type": draw(st.sampled_from(["record", "record", "error"])), **keys, "fields": []}
    for name in field_names:
        field = {"name": name, "type": draw(schemas(names, depth + 1, child_ns, parents + (full,)))}
        if draw(st.integers(0, 5)) == 0:
            field["doc"] = "a field"
        record["fields"].append(field)
    if draw(st.integers(0, 4)) == 0:
        record["aliases"] = ["old_name"]
    names.done.append((full, ns))
    return record


def values(draw, schema, named: dict, depth: int = 0):
    """A value for the *parsed* schema (fastavro.parse_schema: references are full names)."""
    if isinstance(schema, str) and schema in named:
        return values(draw, named[schema], named, depth)
    if isinstance(schema, list):
        if depth > 3 and "null" in schema:
            return None
        return values(draw, draw(st.sampled_from(schema)), named, depth)
    if isinstance(schema, dict):
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical == "decimal":
            precision, scale = schema["precision"], schema.get("scale", 0)
            if kind == "fixed":
                bound = 2 ** (8 * schema["size"] - 1)
                unscaled = draw(st.integers(-bound, bound - 1))
            else:
                unscaled = draw(st.integers(-(10 ** (precision + 2)), 10 ** (precision + 2)))
            return decimal.Decimal(unscaled).scaleb(-scale)
        if kind in ("long", "int") and logical:
            ranges = {
                "timestamp-millis": (-62135596800000 - 10, 253402300799999 + 10),
                "local-timestamp-millis": (-62135596800000 - 10, 253402300799999 + 10),
                "timestamp-micros": (-62135596800000000 - 10, 253402300799999999 + 10),
                "local-timestamp-micros": (-62135596800000000 - 10, 253402300799999999 + 10),
                "date": (-719162 - 3, 2932896 + 3),
                "time-millis": (-3600000 * 2, 86400000 + 5),
                "time-micros": (-3600000000 * 2, 86400000000 + 5),
            }
            low, high = ranges.get(logical, (-(2**31), 2**31 - 1))
            return draw(st.integers(low, high) | st.sampled_from([low, high, 0, -1]))
        if kind == "string" and logical == "uuid":
            return str(draw(st.uuids()))
        if kind in ("record", "error"):
            return {f["name"]: values(draw, f["type"], named, depth + 1) for f in schema["fields"]}
        if kind == "enum":
            return draw(st.sampled_from(schema["symbols"]))
        if kind == "fixed":
            return draw(st.binary(min_size=schema["size"], max_size=schema["size"]))
        if kind == "array":
            if depth > 3:
                return []
            return [values(draw, schema["items"], named, depth + 1) for _ in range(draw(st.integers(0, 3)))]
        if kind == "map":
            if depth > 3:
                return {}
            keys = draw(st.lists(st.text(max_size=4), max_size=3, unique=True))
            return {k: values(draw, schema["values"], named, depth + 1) for k in keys}
        return values(draw, kind, named, depth)
    return {
        "null": lambda: None,
        "boolean": lambda: draw(st.booleans()),
        "int": lambda: draw(st.integers(-(2**31), 2**31 - 1)),
        "long": lambda: draw(st.integers(-(2**63), 2**63 - 1)),
        "float": lambda: draw(st.floats(width=32)),
        "double": lambda: draw(st.floats()),
        "bytes": lambda: draw(st.binary(max_size=12)),
        "string": lambda: draw(st.text(max_size=8)),
    }[schema]()


@st.composite
def cases(draw, records: int = 1, record: bool = False):
    schema = draw(schemas(Names(), record=record))
    named: dict = {}
    parsed = fastavro.parse_schema(json.loads(json.dumps(schema)), named_schemas=named)
    return schema, parsed, [values(draw, parsed, named) for _ in range(records)]


def outcome(fn):
    """The result of ``fn()``, or the exception class it raised."""
    try:
        return fn()
    except Exception as exc:
        return exc


def compare(native_fn, fastavro_fn) -> None:
    want = outcome(fastavro_fn)
    if isinstance(want, Exception):
        assert isinstance(want, (ValueError, OverflowError)), repr(want)  # a logical value out of range
        with pytest.raises(native.DecodeError):
            native_fn()
    else:
        assert_same(native_fn(), want)


def encode(parsed, value) -> bytes:
    body = io.BytesIO()
    try:
        fastavro.schemaless_writer(body, parsed, value)
    except (ValueError, TypeError, OverflowError, decimal.InvalidOperation):
        assume(False)  # a value fastavro's writer does not take (e.g. a decimal that does not fit)
    return body.getvalue()


@GENERATED
@given(cases())
def test_schemaless_values_equal_fastavro(case) -> None:
    schema, parsed, [value] = case
    body = encode(parsed, value)
    compiled = native.Schema(json.dumps(schema))
    compare(lambda: compiled.decode(body), lambda: [fastavro.schemaless_reader(io.BytesIO(body), parsed)])
    compare(
        lambda: compiled.decode(b"xy" + body + b"z", 2, 2 + len(body)),
        lambda: [fastavro.schemaless_reader(io.BytesIO(body), parsed)],
    )


@GENERATED
@given(cases(records=3, record=True), st.data())
def test_prefix_and_rest_equal_the_full_decode(case, data) -> None:
    schema, parsed, records = case
    body = b"".join(encode(parsed, r) for r in records)
    compiled = native.Schema(json.dumps(schema))
    full = outcome(lambda: compiled.decode(body, 0, None, 3))
    if isinstance(full, Exception):
        return
    n = data.draw(st.integers(0, len(compiled.field_names)))
    prefixes = compiled.decode_prefix(body, 0, None, 3, n)
    for (record, pos), want in zip(prefixes, full):
        compiled.decode_rest(body, pos, record, n)
        assert_same(record, want)


@settings(GENERATED, max_examples=100)
@given(cases(records=4), st.sampled_from(["null", "deflate", "snappy", "zstandard", "bzip2", "xz"]))
def test_containers_equal_fastavro_with_every_codec(case, codec) -> None:
    schema, parsed, records = case
    for r in records:
        encode(parsed, r)  # rejects what fastavro cannot write
    out = io.BytesIO()
    # fastavro writes zstandard only with backports.zstd; genesis compresses it with zstandard
    fastavro.writer(out, parsed, records, codec="null" if codec == "zstandard" else codec, sync_interval=30)
    buf = out.getvalue()
    want = outcome(lambda: list(fastavro.reader(io.BytesIO(buf))))

    def native_read():
        schema_json, blocks = native.read_container(buf if codec != "zstandard" else _zstd(buf))
        compiled = native.Schema(schema_json)
        got = []
        for count, data, start, end in blocks:
            got += compiled.decode(data, start, end, count)
        return got

    if isinstance(want, Exception):
        assert isinstance(want, (ValueError, OverflowError)), repr(want)
        with pytest.raises(native.DecodeError):
            native_read()
    else:
        assert_same(native_read(), want)


def _zstd(buf: bytes) -> bytes:
    """The null-codec container ``buf`` with its blocks compressed by zstandard."""
    import zstandard

    from genesis._codecs._avro import write_long
    from genesis._codecs._container import read_header

    schema_json, _, sync, _ = read_header(buf)
    meta = [(b"avro.schema", schema_json), (b"avro.codec", b"zstandard")]
    out = [b"Obj\x01", write_long(len(meta))]
    for key, value in meta:
        out += [write_long(len(key)), key, write_long(len(value)), value]
    out += [b"\x00", sync]
    for count, data, start, end in native.read_container(buf)[1]:
        block = zstandard.ZstdCompressor().compress(data[start:end])
        out += [write_long(count), write_long(len(block)), block, sync]
    return b"".join(out)
