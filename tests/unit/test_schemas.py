"""Schema sources: the lsst/alert_packet directory layout, ZTF's split files, a real HTTP registry."""

from __future__ import annotations

import json
import pickle
import socket
import time
from pathlib import Path

import fastavro
import pytest
from fastavro.validation import validate

from genesis._codecs import Decoder, SchemaDirectory, SchemaRegistry, encode_wire
from genesis.errors import ConfigError, SchemaNotFoundError


def real_lsst_record(data_dir: Path) -> dict:
    path = sorted((data_dir / "lsst/real_fink/rubin_v9_0").glob("*.avro"))[0]
    with path.open("rb") as fh:
        return next(fastavro.reader(fh))


# --- SchemaDirectory --------------------------------------------------------------------------


def test_lsst_layout_ids(data_dir: Path) -> None:
    directory = SchemaDirectory(data_dir / "lsst/schema")
    assert directory.ids() == [900, 1000, 1100]
    assert 1100 in directory and 1101 not in directory
    assert directory.get(900)["name"] == "lsst.v9_0.alert"
    assert directory.get(1100)["name"] == "lsst.v11_0.alert"
    assert directory.get(1101) is None
    assert SchemaDirectory(data_dir / "lsst/schema/9.0").ids() == [900]


def test_named_types_from_sibling_files_are_inlined(data_dir: Path) -> None:
    schema = SchemaDirectory(data_dir / "lsst/schema").schema(900)
    text = json.dumps(schema)  # JSON-ready, self-contained
    assert "__fastavro" not in text and '"name": "lsst.v9_0.diaSource"' in text
    record = real_lsst_record(data_dir)
    assert validate({f["name"]: record[f["name"]] for f in schema["fields"]}, fastavro.parse_schema(schema))


def test_files_named_by_id(data_dir: Path, tmp_path: Path) -> None:
    source = SchemaDirectory(data_dir / "lsst/schema")
    (tmp_path / "4242.avsc").write_text(json.dumps(source.schema(900)))
    directory = SchemaDirectory(tmp_path)
    assert directory.ids() == [4242]
    record = real_lsst_record(data_dir)
    value = encode_wire(record, source.schema(900), 4242)
    assert Decoder(schemas=tmp_path).decode(value)[0]["diaSourceId"] == record["diaSourceId"]


def test_directory_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SchemaDirectory(tmp_path / "nope")
    (tmp_path / "7.avsc").write_text(
        '{"type": "record", "name": "x", "fields": [{"name": "a", "type": "lsst.v9_0.nope"}]}'
    )
    with pytest.raises(ConfigError, match="7.avsc is not a valid Avro schema"):
        SchemaDirectory(tmp_path).get(7)


def test_directory_pickles_as_its_path(data_dir: Path) -> None:
    directory = SchemaDirectory(data_dir / "lsst/schema")
    directory.get(900)
    clone = pickle.loads(pickle.dumps(directory))
    assert clone.ids() == directory.ids() and clone._parsed == {}


@pytest.mark.parametrize("version", ["3.0", "3.1", "3.2", "3.3", "3.5", "4.01", "4.02"])
def test_official_ztf_schemas_parse(ztf_schema, version: str) -> None:
    schema = ztf_schema(version)
    assert schema["name"] == "ztf.alert" and json.dumps(schema)
    fastavro.parse_schema(schema)


def test_ztf_records_validate_against_their_official_schema(data_dir: Path, ztf_schema) -> None:
    for folder, version in (("kowalski/20231012", "4.01"), ("ztf-avro-alert", None)):
        paths = sorted((data_dir / "ztf/raw" / folder).glob("*.avro"))
        assert paths, folder  # 16 and 8 files (data README)
        for path in paths:
            with path.open("rb") as fh:
                reader = fastavro.reader(fh)
                records = list(reader)
            schema = ztf_schema(version or reader.writer_schema["version"])
            assert all(validate(r, fastavro.parse_schema(schema)) for r in records), path.name


# --- SchemaRegistry against a real HTTP server ------------------------------------------------


@pytest.fixture()
def registry_url(registry_server) -> str:
    """The URL of this test's registry (``registry_server``, a real HTTP server from tests/conftest.py)."""
    return registry_server.url


def test_register_and_decode_via_registry(registry_server, data_dir: Path, registry_url: str) -> None:
    schema = SchemaDirectory(data_dir / "lsst/schema").schema(900)
    registry = SchemaRegistry(registry_url + "/")
    schema_id = registry.register("lsst-alerts-value", schema)
    assert registry.register("lsst-alerts-value", schema) == schema_id == 1
    assert registry_server.seen_content_types[0] == "application/vnd.schemaregistry.v1+json"
    record = real_lsst_record(data_dir)
    value = encode_wire(record, schema, schema_id)
    decoder = Decoder(schema_registry=registry_url)
    assert decoder.decode(value)[0]["diaSourceId"] == record["diaSourceId"]
    registry_server.schemas.clear()  # cached by id: no second request
    assert decoder.decode(value)[0]["diaSourceId"] == record["diaSourceId"]
    with pytest.raises(SchemaNotFoundError, match=f"unknown schema id 7: not in the registry at {registry_url}"):
        decoder.decode(b"\x00\x00\x00\x00\x07" + value[5:])


def test_directory_and_registry(data_dir: Path, registry_url: str) -> None:
    lsst = data_dir / "lsst/schema"
    record = real_lsst_record(data_dir)
    value = encode_wire(record, SchemaDirectory(lsst).schema(900), 900)
    decoder = Decoder(schemas=lsst, schema_registry=registry_url)
    assert decoder.decode(value)[0]["diaSourceId"] == record["diaSourceId"]
    with pytest.raises(
        SchemaNotFoundError, match=f"unknown schema id 1101: not in the registry at {registry_url} nor in {lsst}"
    ):
        decoder.decode(b"\x00" + (1101).to_bytes(4, "big") + value[5:])


def test_registry_references(registry_server, data_dir: Path, registry_url: str) -> None:
    """An alert schema whose named types are registered as separate subjects, as Rubin could."""
    folder = data_dir / "lsst/schema/9.0"
    registry = SchemaRegistry(registry_url)
    refs = []
    for part in ("diaSource", "diaForcedSource", "diaObject", "ssSource", "MPCORB"):
        name = f"lsst.v9_0.{part}"
        registry.register(name, (folder / f"{name}.avsc").read_text())
        refs.append({"name": name, "subject": name, "version": 1})
    registry_server.schemas.append(
        {"schema": (folder / "lsst.v9_0.alert.avsc").read_text(), "subject": "alert", "references": refs}
    )
    record = real_lsst_record(data_dir)
    value = encode_wire(record, SchemaDirectory(folder).schema(900), len(registry_server.schemas))
    assert Decoder(schema_registry=registry).decode(value)[0]["diaSourceId"] == record["diaSourceId"]


def test_registry_errors(registry_server, registry_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    start = time.monotonic()
    # "refused", not "timed out": nothing listens there, so the first attempt fails at once
    with pytest.raises(ConfigError, match=f"schema registry at {dead} is unreachable .*refused"):
        SchemaRegistry(dead, timeout=2).get(1)
    # a hang guard, not a speed check: waiting out the 2 s timeout several times (retries against
    # a dead registry) would pass 10 s; a single refused connection takes milliseconds
    assert time.monotonic() - start < 10
    with pytest.raises(ConfigError, match="HTTP 500: internal"):
        SchemaRegistry(registry_url)._request("GET", "/boom")
    with pytest.raises(ConfigError, match="must look like"):
        SchemaRegistry("localhost:8081")
    registry_server.auth = "Basic dXNlcjpwYXNz"  # user:pass
    with pytest.raises(ConfigError, match="refused the request \\(401\\)"):
        SchemaRegistry(registry_url).get(1)
    authed = SchemaRegistry(registry_url.replace("http://", "http://user:pass@"))
    assert authed.get(1) is None and "pass" not in repr(authed)


def test_registry_pickles_as_its_url(registry_url: str) -> None:
    registry = SchemaRegistry(registry_url, timeout=3)
    clone = pickle.loads(pickle.dumps(registry))
    assert (clone.url, clone.timeout, clone._parsed) == (registry_url, 3, {})
