"""Rubin's schemas from lsst-alert-packet, without Kafka: ids, the built-in source, conversion, and
what a user without the extra is told."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fastavro
import pytest
from helpers import assert_same
from lsst.alert.packet import Schema, get_schema_path

from genesis import errors
from genesis._codecs import Decoder, encode_wire, rubin
from genesis.samples import real_lsst_alerts


def test_ids_are_major_times_100_plus_minor() -> None:
    assert rubin.schema_id("11.1") == 1101 and rubin.schema_id("7.4") == 704 and rubin.version_of(1000) == "10.0"
    with pytest.raises(errors.ConfigError, match="not a Rubin schema version"):
        rubin.schema_id("eleven")
    with pytest.raises(errors.ConfigError, match=r"12\.0 is not among the schemas of lsst-alert-packet .*11\.1"):
        rubin.check_version("12.0")
    assert rubin.check_version(None) == rubin.latest() == "11.1"


@pytest.mark.parametrize("version", ["3.0", "6.1", "9.0", "10.0", "11.0", "11.1"])
def test_a_sample_packet_decodes_with_no_option_as_the_package_deserializes_it(version: str) -> None:
    major, minor = version.split(".")
    schema = Schema.from_file(str(Path(get_schema_path(int(major), int(minor))) / f"lsst.v{major}_{minor}.alert.avsc"))
    payload = schema.serialize(rubin.sample(version))
    message = b"\x00" + schema.get_schema_id().to_bytes(4, "big") + payload
    assert_same(Decoder().decode(message)[0], schema.deserialize(payload))
    assert_same(Decoder(compiled=False).decode(message)[0], schema.deserialize(payload))


def test_convert_keeps_common_fields_and_takes_new_ones_from_the_sample(data_dir: Path) -> None:
    v9 = next(a.record for a in real_lsst_alerts(data_dir) if "rubin_v9_0" in a.path.parts and a.record["ssSource"])
    converted = rubin.convert(v9, "11.1")
    fastavro.validation.validate(converted, fastavro.parse_schema(rubin.load("11.1")), raise_errors=True)
    assert converted["diaSourceId"] == v9["diaSourceId"] and converted["cutoutScience"] == v9["cutoutScience"]
    source = v9["diaSource"]
    assert {k: converted["diaSource"][k] for k in ("ra", "dec", "psfFlux", "band")} == {
        k: source[k] for k in ("ra", "dec", "psfFlux", "band")
    }
    new = set(converted["diaSource"]) - set(source)  # fields 9.0 did not have
    assert new and all(converted["diaSource"][k] == rubin.sample("11.1")["diaSource"][k] for k in new)
    assert "MPCORB" in v9 and "MPCORB" not in converted  # 9.0 -> 10.0 dropped it


def test_a_message_decoded_with_the_built_in_schemas_pickles_to_pool_workers() -> None:
    import pickle

    message = encode_wire(rubin.sample("11.0"), rubin.load("11.0"), 1100)
    decoder = pickle.loads(pickle.dumps(Decoder()))
    assert decoder.decode(message)[0]["diaSourceId"] == rubin.sample("11.0")["diaSourceId"]


WITHOUT_THE_EXTRA = """
import sys
sys.modules["lsst.alert.packet"] = None  # as on a machine without genesis-streaming[rubin]
from genesis import Decoder
try:
    Decoder().decode(bytes.fromhex("000000044d") + b"x")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_without_the_extra_a_rubin_id_is_a_decode_error_naming_it() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_THE_EXTRA], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DecodeError ")
    assert "schema id 1101 (read as Rubin's: schema 11.1)" in done.stdout
    assert "pip install 'genesis-streaming[rubin]'" in done.stdout and "schema_registry=" in done.stdout
