"""The undecodable-packet policies, without Kafka: choice, configuration errors, what each keeps."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from genesis import Metadata
from genesis._codecs import Decoder
from genesis._policies import DirectoryQuarantine, decode_error_policy, skip
from genesis.errors import ConfigError, DecodeError


@pytest.fixture(scope="module")
def truncated(data_dir) -> bytes:
    """A real ZTF alert cut in half."""
    raw = next(iter(sorted((data_dir / "ztf" / "raw").rglob("*.avro")))).read_bytes()
    return raw[: len(raw) // 2]


def failure(
    raw: bytes, topic: str = "ztf.alerts", partition: int = 2, offset: int = 41
) -> tuple[Metadata, DecodeError]:
    """The metadata and located error the stream hands a policy for ``raw``."""
    with pytest.raises(DecodeError) as info:
        Decoder().decode(raw)
    meta = Metadata(
        topic,
        partition,
        offset,
        datetime(2024, 5, 1, tzinfo=timezone.utc),
        b"k1",
        (("source", b"ztf"), ("empty", None)),
        raw,
    )
    return meta, info.value.located(topic, partition, offset)


def test_default_raises():
    assert decode_error_policy("raise", None) is None


def test_skip_logs_where_and_why(truncated, caplog):
    meta, err = failure(truncated)
    assert decode_error_policy("skip", None) is skip
    with caplog.at_level(logging.WARNING, logger="genesis"):
        skip(meta, truncated, err)
    assert "ztf.alerts[2]@41" in caplog.text and "truncated" in caplog.text


def test_callable_is_used_as_is():
    def mine(meta, raw, error):
        pass

    assert decode_error_policy(mine, None) is mine


def test_directory_quarantine_keeps_bytes_headers_and_error(truncated, tmp_path):
    policy = decode_error_policy("quarantine", tmp_path / "bad")
    assert isinstance(policy, DirectoryQuarantine)
    meta, err = failure(truncated)
    policy(meta, truncated, err)
    # the topic name has a dot: the files must still be named after the whole position
    assert (tmp_path / "bad" / "ztf.alerts-2-41.bin").read_bytes() == truncated
    info = json.loads((tmp_path / "bad" / "ztf.alerts-2-41.json").read_text())
    assert (info["topic"], info["partition"], info["offset"]) == ("ztf.alerts", 2, 41)
    assert info["key"] == b"k1".hex() and info["headers"] == [["source", b"ztf".hex()], ["empty", None]]
    assert "truncated" in info["error"] and info["error_type"] == "DecodeError"
    assert info["timestamp"].startswith("2024-05-01")


def test_directory_quarantine_of_an_empty_message(tmp_path):
    meta, err = failure(b"")
    DirectoryQuarantine(tmp_path)(meta, None, err)
    assert (tmp_path / "ztf.alerts-2-41.bin").read_bytes() == b""
    assert "empty" in json.loads((tmp_path / "ztf.alerts-2-41.json").read_text())["error"]


@pytest.mark.parametrize(
    "errors, quarantine, match",
    [
        ("quarantine", None, "needs quarantine="),
        ("quarantine", "", "needs quarantine="),
        ("ignore", None, "not understood.*'raise', 'skip'"),
        (3, None, "not understood"),
        ("skip", "/tmp/q", "only with on_decode_error='quarantine'"),
        ("raise", "/tmp/q", "only with on_decode_error='quarantine'"),
    ],
)
def test_configuration_errors(errors, quarantine, match):
    with pytest.raises(ConfigError, match=match):
        decode_error_policy(errors, quarantine)


def test_unusable_quarantine_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="quarantine directory"):
        decode_error_policy("quarantine", blocker / "sub")
