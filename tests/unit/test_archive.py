"""file:// archives through the streaming API, on the real alert files (no Kafka)."""

import tarfile

import fastavro
import pytest

import genesis.streaming as gs
from genesis import errors
from genesis.filters import filter_asteroids


def records_of(paths):
    out = []
    for p in paths:
        with p.open("rb") as f:
            out += list(fastavro.reader(f))
    return out


def test_directory_of_avro_files(data_dir):
    raw = data_dir / "ztf" / "raw"
    expected = records_of(sorted(raw.rglob("*.avro")))
    with gs.open(f"file://{raw}") as stream:
        got = [a for _, a in stream(progress=True)]
    assert [a["candid"] for a in got] == [a["candid"] for a in expected]
    assert len(got) == len(expected) > 0  # 58 raw ZTF records (data README)


def test_tarball_filter_limit_and_metadata(data_dir, tmp_path):
    files = sorted((data_dir / "ztf" / "raw" / "kowalski").rglob("*.avro"))
    tar = tmp_path / "ztf_public_20231012.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for f in files:
            t.add(f, arcname=f.name)
    expected = [r for r in records_of(files) if filter_asteroids(r)]
    assert expected  # the 20231012 night has asteroids (data README: ssnamenr set)
    with gs.open(f"file://{tar}") as stream:
        got = [(a["candid"], m) for _, a, m in stream(filter=filter_asteroids, metadata=True)]
    assert [c for c, _ in got] == [r["candid"] for r in expected]
    assert all(m.key.decode().startswith("ztf_public_20231012.tar.gz:") for _, m in got)
    with gs.open(f"file://{tar}") as stream:
        first = [a["candid"] for _, a in stream(limit=3)]
        rest = [a["candid"] for _, a in stream()]
        stream.commit()
    # one record per kowalski file: the two calls together yield every alert once
    assert len(first) == 3 and sorted(first + rest) == sorted(r["candid"] for r in records_of(files))


def test_pool_on_an_archive(data_dir):
    raw = data_dir / "ztf" / "raw" / "fink-broker"
    with gs.Pool(2) as workers, gs.open(f"file://{raw}") as stream:
        pooled = [a["candid"] for _, a in stream(pool=workers)]
    with gs.open(f"file://{raw}") as stream:
        inline = [a["candid"] for _, a in stream()]
    assert pooled == inline == [r["candid"] for r in records_of(sorted(raw.rglob("*.avro")))] and inline


def test_missing_path_and_corrupt_file(tmp_path, data_dir):
    with pytest.raises(errors.ConfigError, match="no such file"):
        gs.open(f"file://{tmp_path}/nope")
    good = next((data_dir / "ztf" / "raw" / "fink-client").glob("ZTF*.avro")).read_bytes()
    (tmp_path / "bad.avro").write_bytes(good[: len(good) // 2])
    with gs.open(f"file://{tmp_path}") as stream:
        with pytest.raises(errors.DecodeError, match="truncated"):
            list(stream())
    with gs.open(f"file://{tmp_path}", errors="skip") as stream:
        assert list(stream()) == [] and stream.stats.skipped == 1
